/* route_config -> cfg_route_config (envoy.config.route.v3.RouteConfiguration,
 * VirtualHost, Route, RouteMatch, RouteAction, DirectResponseAction). */
#include "config/config_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const rc_handled[] = {"name", "virtual_hosts", NULL};
static const char *const rc_unsupported[] = {
    "vhds", "internal_only_headers", "response_headers_to_add",
    "response_headers_to_remove", "request_headers_to_add", "request_headers_to_remove",
    "most_specific_header_mutations_wins", "validate_clusters",
    "max_direct_response_body_size_bytes", "cluster_specifier_plugins",
    "request_mirror_policies", "ignore_port_in_host_matching",
    "ignore_path_parameters_in_path_matching", "typed_per_filter_config", "metadata",
    NULL};

static const char *const vh_handled[] = {"name", "domains", "routes", NULL};
static const char *const vh_unsupported[] = {
    "matcher", "require_tls", "virtual_clusters", "rate_limits",
    "request_headers_to_add", "request_headers_to_remove", "response_headers_to_add",
    "response_headers_to_remove", "cors", "typed_per_filter_config",
    "include_request_attempt_count", "include_attempt_count_in_response",
    "retry_policy", "retry_policy_typed_config", "hedge_policy",
    "include_is_timeout_retry_header", "per_request_buffer_limit_bytes",
    "request_mirror_policies", "metadata", NULL};

static const char *const route_handled[] = {"name", "match", "route", "direct_response",
                                            NULL};
static const char *const route_ignored[] = {"metadata", NULL};
static const char *const route_unsupported[] = {
    "redirect", "filter_action", "non_forwarding_action", "decorator",
    "typed_per_filter_config", "request_headers_to_add", "request_headers_to_remove",
    "response_headers_to_add", "response_headers_to_remove", "tracing",
    "per_request_buffer_limit_bytes", "stat_prefix", NULL};

static const char *const match_handled[] = {"prefix", "path", "case_sensitive", NULL};
static const char *const match_unsupported[] = {
    "safe_regex", "connect_matcher", "path_separated_prefix", "path_match_policy",
    "runtime_fraction", "headers", "query_parameters", "grpc", "tls_context",
    "dynamic_metadata", "filter_state", "cel_expr", NULL};

static const char *const action_handled[] = {"cluster", "weighted_clusters", "timeout",
                                             "prefix_rewrite", "host_rewrite_literal",
                                             NULL};
static const char *const action_unsupported[] = {
    "cluster_header", "cluster_specifier_plugin", "inline_cluster_specifier_plugin",
    "cluster_not_found_response_code", "metadata_match", "regex_rewrite",
    "path_rewrite_policy", "path_rewrite", "auto_host_rewrite", "host_rewrite_header",
    "host_rewrite_path_regex", "append_x_forwarded_host", "idle_timeout",
    "early_data_policy", "retry_policy", "retry_policy_typed_config",
    "request_mirror_policies", "priority", "rate_limits", "include_vh_rate_limits",
    "hash_policy", "cors", "max_grpc_timeout", "grpc_timeout_offset", "upgrade_configs",
    "internal_redirect_policy", "internal_redirect_action", "max_internal_redirects",
    "hedge_policy", "max_stream_duration", NULL};

static const char *const wc_handled[] = {"clusters", "total_weight", NULL};
static const char *const wc_unsupported[] = {"runtime_key_prefix", "header_name",
                                             "random_value_specifier", NULL};
static const char *const cw_handled[] = {"name", "weight", NULL};
static const char *const cw_unsupported[] = {
    "cluster_header", "metadata_match", "request_headers_to_add",
    "request_headers_to_remove", "response_headers_to_add", "response_headers_to_remove",
    "typed_per_filter_config", "host_rewrite_literal", NULL};

static const char *const dr_handled[] = {"status", "body", NULL};
static const char *const ds_handled[] = {"inline_string", NULL};
static const char *const ds_unsupported[] = {"filename", "inline_bytes",
                                             "environment_variable", "watched_directory",
                                             NULL};

static void free_route(cfg_route *r)
{
    free(r->name);
    free(r->match_value);
    free(r->cluster);
    for (size_t i = 0; i < r->n_weighted; i++)
        free(r->weighted[i].name);
    free(r->weighted);
    free(r->prefix_rewrite);
    free(r->host_rewrite_literal);
    free(r->direct_body);
}

void cfg_free_route_config(cfg_route_config *rc)
{
    free(rc->name);
    for (size_t i = 0; i < rc->n_vhosts; i++) {
        cfg_virtual_host *vh = &rc->vhosts[i];
        free(vh->name);
        for (size_t j = 0; j < vh->n_domains; j++)
            free(vh->domains[j]);
        free(vh->domains);
        for (size_t j = 0; j < vh->n_routes; j++)
            free_route(&vh->routes[j]);
        free(vh->routes);
    }
    free(rc->vhosts);
    memset(rc, 0, sizeof(*rc));
}

/* Resolve a cluster name (node n, path pushed) to an index. */
static int find_cluster(cfg_ctx *c, const yn_node *n, const char *name, size_t *idx)
{
    for (size_t i = 0; i < c->b->n_clusters; i++) {
        if (strcmp(c->b->clusters[i].name, name) == 0) {
            *idx = i;
            return 0;
        }
    }
    return cfg_err(c, n, "unknown cluster '%s' (not defined in static_resources.clusters)",
                   name);
}

static int parse_match(cfg_ctx *c, const yn_node *m, cfg_route *r)
{
    static const cfg_fields f = {match_handled, NULL, match_unsupported};
    int rc;
    if ((rc = cfg_check_map(c, m, &f)) != 0)
        return rc;
    bool cs = true;
    if ((rc = cfg_get_bool(c, m, "case_sensitive", &cs)) != 0)
        return rc;
    if (!cs) {
        size_t mk = cfg_push(c, "case_sensitive");
        rc = cfg_err(c, cfg_get(m, "case_sensitive"), "not supported yet: false");
        cfg_pop(c, mk);
        return rc;
    }
    const yn_node *prefix = cfg_get(m, "prefix"), *path = cfg_get(m, "path");
    if (prefix && path)
        return cfg_err(c, cfg_key_node(m, "path"),
                       "only one of 'prefix' and 'path' may be set");
    if (!prefix && !path)
        return cfg_err(c, m, "missing required field: one of 'prefix', 'path'");
    r->match_kind = prefix ? CFG_MATCH_PREFIX : CFG_MATCH_PATH;
    return cfg_get_str(c, m, prefix ? "prefix" : "path", false, &r->match_value);
}

static int parse_weighted(cfg_ctx *c, const yn_node *wc, cfg_route *r)
{
    static const cfg_fields f = {wc_handled, NULL, wc_unsupported};
    static const cfg_fields cwf = {cw_handled, NULL, cw_unsupported};
    int rc;
    if ((rc = cfg_check_map(c, wc, &f)) != 0)
        return rc;
    const yn_node *cl = cfg_get(wc, "clusters");
    if (!cl)
        return cfg_err(c, wc, "missing required field 'clusters'");
    size_t n, m = cfg_push(c, "clusters");
    if ((rc = cfg_expect_seq(c, cl, &n)) != 0)
        goto out;
    if (n == 0) {
        rc = cfg_err(c, cl, "must contain at least one cluster");
        goto out;
    }
    r->weighted = calloc(n, sizeof(*r->weighted));
    if (!r->weighted) {
        rc = cfg_err(c, cl, "out of memory");
        goto out;
    }
    r->n_weighted = n;
    uint64_t sum = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const yn_node *cw = cl->items[i];
        cfg_weighted_cluster *w = &r->weighted[i];
        size_t mi = cfg_push_idx(c, i);
        if ((rc = cfg_check_map(c, cw, &cwf)) == 0 &&
            (rc = cfg_get_str(c, cw, "name", true, &w->name)) == 0 &&
            (rc = cfg_get_u32(c, cw, "weight", false, 0, UINT32_MAX, &w->weight)) == 0) {
            size_t mn = cfg_push(c, "name");
            rc = find_cluster(c, cfg_get(cw, "name"), w->name, &w->cluster_index);
            cfg_pop(c, mn);
            sum += w->weight;
        }
        cfg_pop(c, mi);
    }
    cfg_pop(c, m);
    if (rc)
        return rc;
    if (sum == 0 || sum > UINT32_MAX)
        return cfg_err(c, cl, "sum of weights must be in [1, %u], got %llu", UINT32_MAX,
                       (unsigned long long)sum);
    uint32_t total = 0;
    if ((rc = cfg_get_u32(c, wc, "total_weight", false, 1, UINT32_MAX, &total)) != 0)
        return rc;
    if (total && total != sum) {
        m = cfg_push(c, "total_weight");
        rc = cfg_err(c, cfg_get(wc, "total_weight"),
                     "sum of weights (%llu) must equal total_weight (%u)",
                     (unsigned long long)sum, total);
        cfg_pop(c, m);
        return rc;
    }
    r->total_weight = (uint32_t)sum;
    return 0;
out:
    cfg_pop(c, m);
    return rc;
}

static int parse_action(cfg_ctx *c, const yn_node *a, cfg_route *r)
{
    static const cfg_fields f = {action_handled, NULL, action_unsupported};
    int rc;
    if ((rc = cfg_check_map(c, a, &f)) != 0)
        return rc;
    const yn_node *cl = cfg_get(a, "cluster"), *wc = cfg_get(a, "weighted_clusters");
    if (cl && wc)
        return cfg_err(c, cfg_key_node(a, "weighted_clusters"),
                       "only one of 'cluster' and 'weighted_clusters' may be set");
    if (!cl && !wc)
        return cfg_err(c, a, "missing required field: one of 'cluster', 'weighted_clusters'");
    if (cl) {
        if ((rc = cfg_get_str(c, a, "cluster", true, &r->cluster)) != 0)
            return rc;
        size_t m = cfg_push(c, "cluster");
        rc = find_cluster(c, cl, r->cluster, &r->cluster_index);
        cfg_pop(c, m);
        if (rc)
            return rc;
    } else {
        size_t m = cfg_push(c, "weighted_clusters");
        rc = parse_weighted(c, wc, r);
        cfg_pop(c, m);
        if (rc)
            return rc;
    }
    r->timeout_ms = 15000;
    if ((rc = cfg_get_duration(c, a, "timeout", &r->timeout_ms)) != 0 ||
        (rc = cfg_get_str(c, a, "prefix_rewrite", false, &r->prefix_rewrite)) != 0 ||
        (rc = cfg_get_str(c, a, "host_rewrite_literal", false, &r->host_rewrite_literal)) != 0)
        return rc;
    return 0;
}

static int parse_direct(cfg_ctx *c, const yn_node *d, cfg_route *r)
{
    static const cfg_fields f = {dr_handled, NULL, NULL};
    static const cfg_fields dsf = {ds_handled, NULL, ds_unsupported};
    int rc;
    uint32_t status = 0;
    if ((rc = cfg_check_map(c, d, &f)) != 0 ||
        (rc = cfg_get_u32(c, d, "status", true, 100, 599, &status)) != 0)
        return rc;
    r->direct_status = (uint16_t)status;
    const yn_node *body = cfg_get(d, "body");
    if (!body)
        return 0;
    size_t m = cfg_push(c, "body");
    if ((rc = cfg_check_map(c, body, &dsf)) == 0) {
        const yn_node *s = cfg_get(body, "inline_string");
        if (s) {
            size_t m2 = cfg_push(c, "inline_string");
            if (s->kind != YN_SCALAR) {
                rc = cfg_err(c, s, "expected a string");
            } else if (!(r->direct_body = malloc(s->len + 1))) {
                rc = cfg_err(c, s, "out of memory");
            } else {
                memcpy(r->direct_body, s->str, s->len + 1);
                r->direct_body_len = s->len;
            }
            cfg_pop(c, m2);
        }
    }
    cfg_pop(c, m);
    return rc;
}

static int parse_route(cfg_ctx *c, const yn_node *n, cfg_route *r)
{
    static const cfg_fields f = {route_handled, route_ignored, route_unsupported};
    int rc;
    if ((rc = cfg_check_map(c, n, &f)) != 0 ||
        (rc = cfg_get_str(c, n, "name", false, &r->name)) != 0)
        return rc;
    const yn_node *m = cfg_get(n, "match");
    if (!m)
        return cfg_err(c, n, "missing required field 'match'");
    size_t mk = cfg_push(c, "match");
    rc = parse_match(c, m, r);
    cfg_pop(c, mk);
    if (rc)
        return rc;
    const yn_node *a = cfg_get(n, "route"), *d = cfg_get(n, "direct_response");
    if (a && d)
        return cfg_err(c, cfg_key_node(n, "direct_response"),
                       "only one of 'route' and 'direct_response' may be set");
    if (!a && !d)
        return cfg_err(c, n, "missing required field: one of 'route', 'direct_response'");
    mk = cfg_push(c, a ? "route" : "direct_response");
    if (a) {
        r->action = CFG_ACTION_ROUTE;
        rc = parse_action(c, a, r);
    } else {
        r->action = CFG_ACTION_DIRECT;
        rc = parse_direct(c, d, r);
    }
    cfg_pop(c, mk);
    return rc;
}

static int parse_vhost(cfg_ctx *c, const yn_node *n, cfg_virtual_host *vh)
{
    static const cfg_fields f = {vh_handled, NULL, vh_unsupported};
    int rc;
    if ((rc = cfg_check_map(c, n, &f)) != 0 ||
        (rc = cfg_get_str(c, n, "name", true, &vh->name)) != 0)
        return rc;
    const yn_node *doms = cfg_get(n, "domains");
    if (!doms)
        return cfg_err(c, n, "missing required field 'domains'");
    size_t nd, m = cfg_push(c, "domains");
    if ((rc = cfg_expect_seq(c, doms, &nd)) == 0 && nd == 0)
        rc = cfg_err(c, doms, "must contain at least one domain");
    if (!rc && !(vh->domains = calloc(nd, sizeof(*vh->domains))))
        rc = cfg_err(c, doms, "out of memory");
    if (!rc)
        vh->n_domains = nd;
    for (size_t i = 0; i < nd && !rc; i++) {
        size_t mi = cfg_push_idx(c, i);
        rc = cfg_node_str(c, doms->items[i], &vh->domains[i]);
        if (!rc && !vh->domains[i][0])
            rc = cfg_err(c, doms->items[i], "must not be empty");
        cfg_pop(c, mi);
    }
    cfg_pop(c, m);
    if (rc)
        return rc;
    const yn_node *routes = cfg_get(n, "routes");
    size_t nr;
    m = cfg_push(c, "routes");
    if ((rc = cfg_expect_seq(c, routes, &nr)) == 0 && nr) {
        if (!(vh->routes = calloc(nr, sizeof(*vh->routes))))
            rc = cfg_err(c, routes, "out of memory");
        else
            vh->n_routes = nr;
    }
    for (size_t i = 0; i < nr && !rc; i++) {
        size_t mi = cfg_push_idx(c, i);
        rc = parse_route(c, routes->items[i], &vh->routes[i]);
        cfg_pop(c, mi);
    }
    cfg_pop(c, m);
    return rc;
}

int cfg_parse_route_config(cfg_ctx *c, const yn_node *n, cfg_route_config *out)
{
    static const cfg_fields f = {rc_handled, NULL, rc_unsupported};
    int rc;
    if ((rc = cfg_check_map(c, n, &f)) != 0 ||
        (rc = cfg_get_str(c, n, "name", false, &out->name)) != 0)
        return rc;
    const yn_node *vhs = cfg_get(n, "virtual_hosts");
    size_t nv, m = cfg_push(c, "virtual_hosts");
    if ((rc = cfg_expect_seq(c, vhs, &nv)) == 0 && nv) {
        if (!(out->vhosts = calloc(nv, sizeof(*out->vhosts))))
            rc = cfg_err(c, vhs, "out of memory");
        else
            out->n_vhosts = nv;
    }
    for (size_t i = 0; i < nv && !rc; i++) {
        size_t mi = cfg_push_idx(c, i);
        rc = parse_vhost(c, vhs->items[i], &out->vhosts[i]);
        /* Envoy rejects the same domain in two virtual hosts (or twice in one). */
        const cfg_virtual_host *vh = &out->vhosts[i];
        for (size_t d = 0; !rc && d < vh->n_domains; d++) {
            for (size_t j = 0; !rc && j <= i; j++) {
                const cfg_virtual_host *o = &out->vhosts[j];
                size_t lim = j == i ? d : o->n_domains;
                for (size_t e = 0; !rc && e < lim; e++) {
                    if (strcasecmp(o->domains[e], vh->domains[d]) == 0) {
                        size_t md = cfg_push(c, "domains");
                        size_t md2 = cfg_push_idx(c, d);
                        rc = cfg_err(c, cfg_get(vhs->items[i], "domains")->items[d],
                                     "duplicate domain '%s' (also in virtual host '%s')",
                                     vh->domains[d], o->name);
                        cfg_pop(c, md2);
                        cfg_pop(c, md);
                    }
                }
            }
        }
        cfg_pop(c, mi);
    }
    cfg_pop(c, m);
    return rc;
}
