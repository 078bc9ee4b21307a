/* Bootstrap, admin, listeners and the HTTP connection manager; cfg_load*(),
 * cfg_free(). */
#include "config/config_internal.h"
#include "config/access_log_config.h"
#include "config/dynamic_config.h"
#include "config/filter_config.h"
#include "config/runtime_config.h"
#include "config/tls_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HCM_TYPE "type.googleapis.com/envoy.extensions.filters.network." \
                 "http_connection_manager.v3.HttpConnectionManager"
#define HCM_NAME "envoy.filters.network.http_connection_manager"

static const char *const boot_handled[] = {"admin", "static_resources", "layered_runtime",
                                            "stats_config", "stats_flush_interval", "node",
                                            "dynamic_resources", NULL};
static const char *const boot_unsupported[] = {
    "node_context_params", "cluster_manager", "hds_config",
    "flags_path", "stats_sinks", "deferred_stat_options",
    "stats_flush_on_admin", "watchdog", "watchdogs", "tracing",
    "overload_manager", "enable_dispatcher_stats", "header_prefix",
    "stats_server_version_override", "use_tcp_for_dns_lookups", "dns_resolution_config",
    "typed_dns_resolver_config", "bootstrap_extensions", "fatal_actions",
    "config_sources", "default_config_source", "default_socket_interface",
    "certificate_provider_instances", "inline_headers", "perf_tracing_file_path",
    "default_regex_engine", "xds_delegate_extension", "xds_config_tracker_extension",
    "listener_manager", "application_log_config", "grpc_async_client_manager_config",
    "memory_allocator_manager", "runtime", NULL};

static const char *const admin_handled[] = {"address", "access_log", "access_log_path", NULL};
static const char *const admin_ignored[] = {"profile_path", NULL};
static const char *const admin_unsupported[] = {"socket_options",
                                                "ignore_global_conn_limit", NULL};

static const char *const sr_handled[] = {"listeners", "clusters", NULL};
static const char *const sr_unsupported[] = {"secrets", NULL};

static const char *const lst_handled[] = {"name", "address", "filter_chains",
                                          "default_filter_chain", "listener_filters", NULL};
static const char *const lst_ignored[] = {"stat_prefix", "metadata", "traffic_direction",
                                          NULL};
static const char *const lst_unsupported[] = {
    "additional_addresses", "filter_chain_matcher", "use_original_dst",
    "per_connection_buffer_limit_bytes", "deprecated_v1",
    "drain_type", "listener_filters_timeout",
    "continue_on_listener_filters_timeout", "transparent", "freebind", "socket_options",
    "tcp_fast_open_queue_length", "udp_listener_config", "api_listener",
    "connection_balance_config", "reuse_port", "enable_reuse_port", "access_log",
    "tcp_backlog_size", "max_connections_to_accept_per_socket_event", "bind_to_port",
    "internal_listener", "enable_mptcp", "ignore_global_conn_limit",
    "bypass_overload_manager", NULL};

static const char *const fc_handled[] = {"filters", "name", "filter_chain_match",
                                         "transport_socket", NULL};
static const char *const fc_ignored[] = {"metadata", NULL};
static const char *const fc_unsupported[] = {"use_proxy_proto",
                                             "transport_socket_connect_timeout", NULL};

static const char *const filter_handled[] = {"name", "typed_config", NULL};
static const char *const filter_unsupported[] = {"config_discovery", NULL};

static const char *const hcm_handled[] = {"@type", "stat_prefix", "codec_type",
                                          "max_request_headers_kb", "route_config",
                                          "http_filters", "access_log",
                                          "http2_protocol_options", "stream_idle_timeout",
                                          "stream_error_on_invalid_http_message",
                                          /* config/config_hcm_options.c */
                                          "common_http_protocol_options", "request_timeout",
                                          "request_headers_timeout", "drain_timeout",
                                          "delayed_close_timeout", "add_user_agent",
                                          "server_name", "server_header_transformation",
                                          "use_remote_address", "xff_num_trusted_hops", NULL};
static const char *const hcm_unsupported[] = {
    "rds", "scoped_routes", "tracing",
    "http_protocol_options", "http3_protocol_options", "scheme_header_transformation",
    "access_log_flush_interval",
    "flush_access_log_on_new_request", "access_log_options",
    "original_ip_detection_extensions",
    "early_header_mutation_extensions", "internal_address_config", "skip_xff_append",
    "via", "generate_request_id", "preserve_external_request_id",
    "always_set_request_id_in_response", "forward_client_cert_details",
    "set_current_client_cert_details", "proxy_100_continue",
    "represent_ipv4_remote_address_as_ipv4_mapped_ipv6", "upgrade_configs",
    "normalize_path", "merge_slashes", "path_with_escaped_slashes_action",
    "request_id_extension", "local_reply_config", "strip_matching_host_port",
    "strip_any_host_port",
    "path_normalization_options", "strip_trailing_host_dot", "proxy_status_config",
    "typed_header_validation_config", "append_x_forwarded_port", "append_local_overload",
    "add_proxy_protocol_connection_state", "http1_safe_max_connection_duration",
    "max_request_headers_count", NULL};

static const char *const codec_known[] = {"AUTO", "HTTP1", "HTTP2", "HTTP3", NULL};
static const char *const codec_sup[] = {"AUTO", "HTTP1", "HTTP2", NULL};

/* http_filters: the filter list and the per-route filter configs are
 * parsed by config/config_http_filters.c. */
static int parse_http_filters(cfg_ctx *c, const yn_node *hcm, cfg_hcm *h)
{
    return cfg_parse_http_filters(c, hcm, h);
}

static int parse_hcm(cfg_ctx *c, const yn_node *tc, cfg_hcm *h)
{
    static const cfg_fields f = {hcm_handled, NULL, hcm_unsupported};
    int rc, codec = 0;
    h->max_request_headers_kb = 60;
    if ((rc = cfg_check_map(c, tc, &f)) != 0 ||
        (rc = cfg_get_str(c, tc, "stat_prefix", true, &h->stat_prefix)) != 0 ||
        (rc = cfg_get_enum(c, tc, "codec_type", codec_known, codec_sup, &codec)) != 0 ||
        (rc = cfg_get_u32(c, tc, "max_request_headers_kb", false, 1, 8192,
                          &h->max_request_headers_kb)) != 0)
        return rc;
    h->codec_type = (cfg_codec_type)codec;
    const yn_node *rcfg = cfg_get(tc, "route_config");
    if (!rcfg)
        return cfg_err(c, tc, "missing required field 'route_config'");
    size_t m = cfg_push(c, "route_config");
    rc = cfg_parse_route_config(c, rcfg, &h->route_config);
    cfg_pop(c, m);
    if (rc || (rc = cfg_parse_access_logs(c, tc, h)) != 0 ||
        (rc = cfg_parse_hcm_http2(c, tc, &h->http2)) != 0 ||
        (rc = cfg_parse_hcm_options(c, tc, &h->opts)) != 0)
        return rc;
    return parse_http_filters(c, tc, h);
}

static int parse_filter_chain(cfg_ctx *c, const yn_node *fc, cfg_filter_chain *ch,
                              bool is_default)
{
    static const cfg_fields f = {fc_handled, fc_ignored, fc_unsupported};
    static const cfg_fields ff = {filter_handled, NULL, filter_unsupported};
    cfg_hcm *h = &ch->hcm;
    int rc;
    h->index = c->b->n_hcms++;
    if (!(ch->match = calloc(1, sizeof *ch->match)))
        return cfg_err(c, fc, "out of memory");
    if ((rc = cfg_check_map(c, fc, &f)) != 0 ||
        (rc = cfg_get_str(c, fc, "name", false, &ch->name)) != 0)
        return rc;
    const yn_node *fcm = cfg_get(fc, "filter_chain_match");
    if (fcm) {
        size_t m = cfg_push(c, "filter_chain_match");
        if (is_default)
            rc = cfg_err(c, fcm, "default_filter_chain must not have a filter_chain_match");
        else
            rc = cfg_parse_filter_chain_match(c, fcm, ch->match);
        cfg_pop(c, m);
        if (rc)
            return rc;
    }
    const yn_node *ts = cfg_get(fc, "transport_socket");
    if (ts) {
        size_t m = cfg_push(c, "transport_socket");
        rc = cfg_parse_downstream_tls(c, ts, &ch->tls);
        cfg_pop(c, m);
        if (rc)
            return rc;
    }
    const yn_node *filters = cfg_get(fc, "filters");
    if (!filters)
        return cfg_err(c, fc, "missing required field 'filters'");
    /* Envoy's JSON-to-proto conversion takes one map where a repeated
     * message is expected; the dynamic-config-fs example writes `filters:`
     * that way.  Accepted here, the one list of messages users write so. */
    bool single = filters->kind == YN_MAP;
    size_t n = 1, m = cfg_push(c, "filters");
    if (!single && (rc = cfg_expect_seq(c, filters, &n)) != 0)
        goto out;
    if (n == 0) {
        rc = cfg_err(c, filters, "must contain the %s filter", HCM_NAME);
        goto out;
    }
    if (n > 1) {
        size_t mi = cfg_push_idx(c, 1);
        rc = cfg_err(c, filters->items[1], "not supported yet: more than one network "
                                           "filter (supported: %s alone)", HCM_NAME);
        cfg_pop(c, mi);
        goto out;
    }
    const yn_node *flt = single ? filters : filters->items[0];
    size_t mi = single ? c->plen : cfg_push_idx(c, 0);
    char *name = NULL;
    if ((rc = cfg_check_map(c, flt, &ff)) == 0 &&
        (rc = cfg_get_str(c, flt, "name", true, &name)) == 0) {
        const yn_node *tc = cfg_get(flt, "typed_config");
        if (!tc) {
            rc = cfg_err(c, flt, "missing required field 'typed_config' (expected @type %s)",
                         HCM_TYPE);
        } else {
            size_t mt = cfg_push(c, "typed_config");
            if (tc->kind != YN_MAP)
                rc = cfg_err(c, tc, "expected a map");
            else if ((rc = cfg_check_type_url(c, tc, HCM_TYPE)) == 0)
                rc = parse_hcm(c, tc, h);
            cfg_pop(c, mt);
        }
    }
    free(name);
    cfg_pop(c, mi);
out:
    cfg_pop(c, m);
    return rc;
}

static bool same_strv(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        size_t j = 0;
        while (j < nb && strcmp(a[i], b[j]) != 0)
            j++;
        if (j == nb)
            return false;
    }
    return true;
}

/* Envoy refuses two filter chains with the same match; names must be unique. */
static int check_chains(cfg_ctx *c, const yn_node *n, const cfg_listener *l)
{
    size_t nfc = l->n_chains - (l->has_default ? 1 : 0);
    const yn_node *fcs = cfg_get(n, "filter_chains");
    for (size_t i = 0; i < nfc; i++) {
        const cfg_filter_chain_match *a = l->chains[i].match;
        for (size_t j = 0; j < i; j++) {
            const cfg_filter_chain_match *b = l->chains[j].match;
            int rc = 0;
            if (a->transport_protocol == b->transport_protocol &&
                same_strv(a->server_names, a->n_server_names, b->server_names,
                          b->n_server_names) &&
                same_strv(a->application_protocols, a->n_application_protocols,
                          b->application_protocols, b->n_application_protocols)) {
                size_t m = cfg_push(c, "filter_chains"), mi = cfg_push_idx(c, i);
                rc = cfg_err(c, fcs->items[i], "multiple filter chains with the same matching "
                                               "rules are defined (same as filter_chains[%zu])",
                             j);
                cfg_pop(c, mi);
                cfg_pop(c, m);
            } else if (l->chains[i].name && l->chains[j].name &&
                       !strcmp(l->chains[i].name, l->chains[j].name)) {
                size_t m = cfg_push(c, "filter_chains"), mi = cfg_push_idx(c, i);
                rc = cfg_err(c, fcs->items[i], "duplicate filter chain name '%s'",
                             l->chains[i].name);
                cfg_pop(c, mi);
                cfg_pop(c, m);
            }
            if (rc)
                return rc;
        }
    }
    return 0;
}

int cfg_parse_listener(cfg_ctx *c, const yn_node *n, size_t idx, cfg_listener *l)
{
    static const cfg_fields f = {lst_handled, lst_ignored, lst_unsupported};
    int rc;
    if ((rc = cfg_check_map(c, n, &f)) != 0 ||
        (rc = cfg_get_str(c, n, "name", false, &l->name)) != 0)
        return rc;
    if (!l->name || !l->name[0]) {
        /* Envoy generates a UUID for unnamed listeners; we use the index. */
        char buf[32];
        snprintf(buf, sizeof(buf), "listener_%zu", idx);
        free(l->name);
        if (!(l->name = strdup(buf)))
            return cfg_err(c, n, "out of memory");
    }
    const yn_node *addr = cfg_get(n, "address");
    if (!addr)
        return cfg_err(c, n, "missing required field 'address'");
    size_t m = cfg_push(c, "address");
    rc = cfg_parse_address(c, addr, true, &l->address);
    cfg_pop(c, m);
    if (rc)
        return rc;
    const yn_node *lf = cfg_get(n, "listener_filters");
    if (lf) {
        m = cfg_push(c, "listener_filters");
        rc = cfg_parse_listener_filters(c, lf, &l->tls_inspector);
        cfg_pop(c, m);
        if (rc)
            return rc;
    }
    const yn_node *fcs = cfg_get(n, "filter_chains");
    const yn_node *dfc = cfg_get(n, "default_filter_chain");
    size_t nfc = 0;
    m = cfg_push(c, "filter_chains");
    if (fcs)
        rc = cfg_expect_seq(c, fcs, &nfc);
    if (!rc && nfc == 0 && !dfc)
        rc = cfg_err(c, fcs ? fcs : n, fcs ? "must contain at least one filter chain (or "
                                             "set default_filter_chain)"
                                           : "missing required field 'filter_chains'");
    if (!rc && !(l->chains = calloc(nfc + 1, sizeof *l->chains)))
        rc = cfg_err(c, n, "out of memory");
    for (size_t i = 0; i < nfc && !rc; i++) {
        size_t mi = cfg_push_idx(c, i);
        l->n_chains++;
        rc = parse_filter_chain(c, fcs->items[i], &l->chains[i], false);
        cfg_pop(c, mi);
    }
    cfg_pop(c, m);
    if (!rc && dfc) {
        m = cfg_push(c, "default_filter_chain");
        l->n_chains++;
        l->has_default = true;
        rc = parse_filter_chain(c, dfc, &l->chains[nfc], true);
        cfg_pop(c, m);
    }
    if (!rc)
        rc = check_chains(c, n, l);
    return rc;
}

static int parse_listeners(cfg_ctx *c, const yn_node *seq)
{
    size_t n;
    int rc;
    if ((rc = cfg_expect_seq(c, seq, &n)) != 0 || n == 0)
        return rc;
    cfg_bootstrap *b = c->b;
    if (!(b->listeners = calloc(n, sizeof(*b->listeners))))
        return cfg_err(c, seq, "out of memory");
    b->n_listeners = n;
    for (size_t i = 0; i < n; i++) {
        size_t m = cfg_push_idx(c, i);
        rc = cfg_parse_listener(c, seq->items[i], i, &b->listeners[i]);
        for (size_t j = 0; !rc && j < i; j++) {
            if (strcmp(b->listeners[j].name, b->listeners[i].name) == 0) {
                const yn_node *nm = cfg_get(seq->items[i], "name");
                size_t m2 = cfg_push(c, "name");
                rc = cfg_err(c, nm ? nm : seq->items[i],
                             "duplicate listener name '%s' (first defined at "
                             "static_resources.listeners[%zu])", b->listeners[i].name, j);
                cfg_pop(c, m2);
            }
        }
        cfg_pop(c, m);
        if (rc)
            return rc;
    }
    return 0;
}

/* admin.access_log (loggers as on the HTTP connection manager) and the
 * deprecated admin.access_log_path (a file in Envoy's default format). */
static int parse_admin_logs(cfg_ctx *c, const yn_node *admin)
{
    cfg_hcm logs = {0};
    int rc = cfg_parse_access_logs(c, admin, &logs);
    c->b->admin_access_logs = logs.access_logs;
    c->b->n_admin_access_logs = logs.n_access_logs;
    char *path = NULL;
    if (rc || (rc = cfg_get_str(c, admin, "access_log_path", false, &path)) != 0 || !path)
        return rc;
    if (strcmp(path, "/dev/null") == 0) {
        free(path);
        return 0;
    }
    size_t n = c->b->n_admin_access_logs;
    struct cfg_access_log *v = realloc(c->b->admin_access_logs, (n + 1) * sizeof *v);
    if (!v) {
        free(path);
        return cfg_err(c, admin, "out of memory");
    }
    c->b->admin_access_logs = v;
    memset(&v[n], 0, sizeof v[n]);
    v[n].sink = CFG_ALOG_SINK_FILE;
    v[n].path = path;
    c->b->n_admin_access_logs = n + 1;
    char err[256];
    if (cfg_alog_compile(CFG_ALOG_DEFAULT_FORMAT, strlen(CFG_ALOG_DEFAULT_FORMAT), &v[n].text, err,
                         sizeof err) != 0)
        return cfg_err(c, admin, "access_log_path: %s", err);
    return 0;
}

static int parse_bootstrap(cfg_ctx *c, const yn_node *root)
{
    static const cfg_fields f = {boot_handled, NULL, boot_unsupported};
    static const cfg_fields af = {admin_handled, admin_ignored, admin_unsupported};
    static const cfg_fields sf = {sr_handled, NULL, sr_unsupported};
    int rc;
    if (!root)
        return cfg_parse_stats(c, root); /* empty document: defaults only */
    if ((rc = cfg_check_map(c, root, &f)) != 0 || (rc = cfg_parse_stats(c, root)) != 0 ||
        (rc = cfg_parse_runtime(c, root)) != 0)
        return rc;
    const yn_node *admin = cfg_get(root, "admin");
    if (admin) {
        size_t m = cfg_push(c, "admin");
        if ((rc = cfg_check_map(c, admin, &af)) == 0) {
            const yn_node *addr = cfg_get(admin, "address");
            if (addr) {
                size_t m2 = cfg_push(c, "address");
                rc = cfg_parse_address(c, addr, true, &c->b->admin);
                c->b->has_admin = rc == 0;
                cfg_pop(c, m2);
            }
        }
        if (!rc)
            rc = parse_admin_logs(c, admin);
        cfg_pop(c, m);
        if (rc)
            return rc;
    }
    if ((rc = cfg_parse_dynamic(c, root)) != 0)
        return rc;
    /* Clusters (static, then CDS) first so routes can be resolved to cluster
     * indices; then listeners (static, then LDS). */
    const yn_node *sr = cfg_get(root, "static_resources");
    size_t m = cfg_push(c, "static_resources");
    if (sr && (rc = cfg_check_map(c, sr, &sf)) == 0) {
        size_t m2 = cfg_push(c, "clusters");
        rc = cfg_parse_clusters(c, cfg_get(sr, "clusters"));
        cfg_pop(c, m2);
    }
    cfg_pop(c, m);
    if (rc || (rc = cfg_load_cds(c, root)) != 0)
        return rc;
    if (sr) {
        m = cfg_push(c, "static_resources");
        size_t m2 = cfg_push(c, "listeners");
        rc = parse_listeners(c, cfg_get(sr, "listeners"));
        cfg_pop(c, m2);
        cfg_pop(c, m);
    }
    return rc ? rc : cfg_load_lds(c, root);
}

void cfg_free_listener(cfg_listener *l)
{
    free(l->name);
    free(l->address.address);
    for (size_t j = 0; j < l->n_chains; j++) {
        cfg_filter_chain *ch = &l->chains[j];
        free(ch->name);
        cfg_fcm_free(ch->match);
        cfg_tls_server_free(ch->tls);
        free(ch->hcm.stat_prefix);
        cfg_free_route_config(&ch->hcm.route_config);
        cfg_access_logs_free(ch->hcm.access_logs, ch->hcm.n_access_logs);
        cfg_http_filters_free(ch->hcm.filters, ch->hcm.n_filters);
        cfg_hcm_options_free(&ch->hcm.opts);
    }
    free(l->chains);
}

void cfg_free(cfg_bootstrap *b)
{
    if (!b)
        return;
    free(b->admin.address);
    cfg_access_logs_free(b->admin_access_logs, b->n_admin_access_logs);
    for (size_t i = 0; i < b->n_listeners; i++)
        cfg_free_listener(&b->listeners[i]);
    free(b->listeners);
    for (size_t i = 0; i < b->n_clusters; i++)
        cfg_free_cluster(&b->clusters[i]);
    free(b->clusters);
    cfg_free_stats(&b->stats);
    cfg_runtime_free(b->runtime);
    cfg_dynamic_free(b->dynamic);
    free(b);
}

static int build(yn_node *root, cfg_bootstrap **out, char *err, size_t errlen)
{
    cfg_ctx c;
    memset(&c, 0, sizeof(c));
    c.err = err;
    c.errlen = errlen;
    c.b = calloc(1, sizeof(*c.b));
    if (!c.b) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = parse_bootstrap(&c, root);
    if (rc) {
        cfg_free(c.b);
        return rc;
    }
    *out = c.b;
    return 0;
}

int cfg_load_string(const char *name, const char *text, size_t len, cfg_bootstrap **out,
                    char *err, size_t errlen)
{
    yn_node *root = NULL;
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    int rc = yn_parse(name ? name : "<string>", text ? text : "", text ? len : 0, &root,
                      err, errlen);
    if (rc)
        return rc;
    rc = build(root, out, err, errlen);
    yn_free(root);
    return rc;
}

int cfg_read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        if (err && errlen)
            snprintf(err, errlen, "%s:0:0: (file): cannot open: %s", path, strerror(e));
        return e ? -e : -EIO;
    }
    size_t cap = 8192, n = 0;
    char *b = malloc(cap);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n < cap) {
            if (ferror(f)) {
                free(b);
                fclose(f);
                if (err && errlen)
                    snprintf(err, errlen, "%s:0:0: (file): read error", path);
                return -EIO;
            }
            break;
        }
        if (cap >= (64u << 20)) {
            free(b);
            fclose(f);
            if (err && errlen)
                snprintf(err, errlen, "%s:0:0: (file): file too large", path);
            return -EFBIG;
        }
        char *nb = realloc(b, cap * 2);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    fclose(f);
    if (!b) {
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    *buf = b;
    *len = n;
    return 0;
}

int cfg_load(const char *path, const char *overlay_yaml, cfg_bootstrap **out, char *err,
             size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!path && !overlay_yaml)
        return cfg_load_string("<default config>", cfg_default_yaml,
                               strlen(cfg_default_yaml), out, err, errlen);
    yn_node *root = NULL, *over = NULL;
    int rc;
    if (path) {
        char *text = NULL;
        size_t len = 0;
        if ((rc = cfg_read_file(path, &text, &len, err, errlen)) != 0)
            return rc;
        rc = yn_parse(path, text, len, &root, err, errlen);
        free(text);
        if (rc)
            return rc;
    }
    if (overlay_yaml) {
        rc = yn_parse("--config-yaml", overlay_yaml, strlen(overlay_yaml), &over, err,
                      errlen);
        if (rc) {
            yn_free(root);
            return rc;
        }
        if ((rc = yn_merge(&root, over)) != 0) {
            yn_free(root);
            if (err && errlen)
                snprintf(err, errlen, "--config-yaml: out of memory");
            return rc;
        }
    }
    rc = build(root, out, err, errlen);
    yn_free(root);
    return rc;
}
