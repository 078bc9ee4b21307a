/* route.route -> cfg_route (envoy.config.route.v3.RouteAction: cluster
 * specifiers, weighted clusters, hash policies, rewrites, timeouts) and
 * route.redirect (RedirectAction). */
#include "config/config_route_internal.h"
#include "config/cluster_specifier_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cfg_route_find_cluster(cfg_ctx *c, const yn_node *n, const char *name, size_t *idx)
{
    ptrdiff_t i = cfg_cluster_index(c->b, name, strlen(name));
    if (i >= 0) {
        *idx = (size_t)i;
        return 0;
    }
    return cfg_err(c, n, "unknown cluster '%s' (not defined in static_resources.clusters)",
                   name);
}

static const char *const rr_handled[] = {"pattern", "substitution", NULL};

int cfg_route_parse_regex_rewrite(cfg_ctx *c, const yn_node *n, cfg_regex_rewrite *out)
{
    static const cfg_fields f = {rr_handled, NULL, NULL};
    int rc;
    if ((rc = cfg_check_map(c, n, &f)) != 0)
        return rc;
    const yn_node *p = cfg_get(n, "pattern");
    if (!p)
        return cfg_err(c, n, "missing required field 'pattern'");
    size_t m = cfg_push(c, "pattern");
    rc = cfg_route_parse_regex(c, p, false, &out->re);
    cfg_pop(c, m);
    if (rc || (rc = cfg_get_str(c, n, "substitution", false, &out->subst)) != 0)
        return rc;
    if (!out->subst && !(out->subst = strdup("")))
        return cfg_err(c, n, "out of memory");
    out->subst_len = strlen(out->subst);
    return 0;
}

static void free_regex_rewrite(cfg_regex_rewrite *rr)
{
    cfg_regex_free(&rr->re);
    free(rr->subst);
}

/* ---- weighted_clusters ---- */

static const char *const wc_handled[] = {"clusters", "total_weight", "runtime_key_prefix",
                                         "header_name", NULL};
static const char *const wc_unsupported[] = {"random_value_specifier", NULL};
static const char *const cw_handled[] = {
    "name", "weight", "request_headers_to_add", "request_headers_to_remove",
    "response_headers_to_add", "response_headers_to_remove", "host_rewrite_literal", NULL};
static const char *const cw_unsupported[] = {"cluster_header", "metadata_match",
                                             "typed_per_filter_config", NULL};

static int parse_cluster_weight(cfg_ctx *c, const yn_node *cw, const char *rt_prefix,
                                cfg_weighted_cluster *w)
{
    static const cfg_fields f = {cw_handled, NULL, cw_unsupported};
    int rc;
    if ((rc = cfg_check_map(c, cw, &f)) != 0 ||
        (rc = cfg_get_str(c, cw, "name", true, &w->name)) != 0 ||
        (rc = cfg_get_u32(c, cw, "weight", false, 0, UINT32_MAX, &w->weight)) != 0 ||
        (rc = cfg_get_str(c, cw, "host_rewrite_literal", false, &w->host_rewrite_literal)) != 0)
        return rc;
    if (w->host_rewrite_literal)
        w->host_rewrite_literal_len = strlen(w->host_rewrite_literal);
    size_t m = cfg_push(c, "name");
    rc = cfg_route_find_cluster(c, cfg_get(cw, "name"), w->name, &w->cluster_index);
    cfg_pop(c, m);
    if (rc)
        return rc;
    if (rt_prefix) {
        size_t n = strlen(rt_prefix) + strlen(w->name) + 2;
        if (!(w->runtime_key = malloc(n)))
            return cfg_err(c, cw, "out of memory");
        snprintf(w->runtime_key, n, "%s.%s", rt_prefix, w->name);
    }
    if ((rc = cfg_route_parse_mutations(c, cw, "request_headers_to_add",
                                        "request_headers_to_remove", false, &w->req_mut)) != 0)
        return rc;
    return cfg_route_parse_mutations(c, cw, "response_headers_to_add",
                                     "response_headers_to_remove", true, &w->resp_mut);
}

static int parse_weighted(cfg_ctx *c, const yn_node *wc, cfg_route *r)
{
    static const cfg_fields f = {wc_handled, NULL, wc_unsupported};
    int rc;
    char *rt_prefix = NULL;
    if ((rc = cfg_check_map(c, wc, &f)) != 0 ||
        (rc = cfg_get_str(c, wc, "runtime_key_prefix", false, &rt_prefix)) != 0)
        goto done;
    if ((rc = cfg_get_str(c, wc, "header_name", false, &r->wc_header_name)) != 0)
        goto done;
    if (r->wc_header_name) {
        for (char *p = r->wc_header_name; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        r->wc_header_name_len = strlen(r->wc_header_name);
    }
    const yn_node *cl = cfg_get(wc, "clusters");
    if (!cl) {
        rc = cfg_err(c, wc, "missing required field 'clusters'");
        goto done;
    }
    size_t n, m = cfg_push(c, "clusters");
    if ((rc = cfg_expect_seq(c, cl, &n)) == 0 && n == 0)
        rc = cfg_err(c, cl, "must contain at least one cluster");
    if (!rc && !(r->weighted = calloc(n, sizeof(*r->weighted))))
        rc = cfg_err(c, cl, "out of memory");
    if (!rc)
        r->n_weighted = n;
    uint64_t sum = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        size_t mi = cfg_push_idx(c, i);
        rc = parse_cluster_weight(c, cl->items[i], rt_prefix && *rt_prefix ? rt_prefix : NULL,
                                  &r->weighted[i]);
        sum += r->weighted[i].weight;
        r->weighted[i].weight_end = sum;
        cfg_pop(c, mi);
    }
    cfg_pop(c, m);
    if (rc)
        goto done;
    r->wc_runtime = rt_prefix && *rt_prefix;
    if (sum == 0 || sum > UINT32_MAX) {
        rc = cfg_err(c, cl, "sum of weights must be in [1, %u], got %llu", UINT32_MAX,
                     (unsigned long long)sum);
        goto done;
    }
    uint32_t total = 0;
    if ((rc = cfg_get_u32(c, wc, "total_weight", false, 1, UINT32_MAX, &total)) != 0)
        goto done;
    if (total && total != sum) {
        m = cfg_push(c, "total_weight");
        rc = cfg_err(c, cfg_get(wc, "total_weight"),
                     "sum of weights (%llu) must equal total_weight (%u)",
                     (unsigned long long)sum, total);
        cfg_pop(c, m);
        goto done;
    }
    r->total_weight = (uint32_t)sum;
done:
    free(rt_prefix);
    return rc;
}

/* ---- hash_policy ---- */

static const char *const hp_handled[] = {"header", "cookie", "connection_properties",
                                         "query_parameter", "terminal", NULL};
static const char *const hp_unsupported[] = {"filter_state", NULL};
static const char *const hph_handled[] = {"header_name", NULL};
static const char *const hph_unsupported[] = {"regex_rewrite", NULL};
static const char *const hpc_handled[] = {"name", "ttl", "path", NULL};
static const char *const hpc_unsupported[] = {"attributes", NULL};
static const char *const hpcp_handled[] = {"source_ip", NULL};
static const char *const hpq_handled[] = {"name", NULL};

static int parse_hash_policy(cfg_ctx *c, const yn_node *n, cfg_hash_policy *h)
{
    static const cfg_fields f = {hp_handled, NULL, hp_unsupported};
    static const char *const kinds[] = {"header", "cookie", "connection_properties",
                                        "query_parameter"};
    int rc;
    if ((rc = cfg_check_map(c, n, &f)) != 0 ||
        (rc = cfg_get_bool(c, n, "terminal", &h->terminal)) != 0)
        return rc;
    int found;
    if ((rc = cfg_one_of(c, n, kinds, 4, true, &found)) != 0)
        return rc;
    const yn_node *v = cfg_get(n, kinds[found]);
    size_t m = cfg_push(c, kinds[found]);
    h->kind = (cfg_hash_kind)found;
    switch (h->kind) {
    case CFG_HASH_HEADER: {
        static const cfg_fields hf = {hph_handled, NULL, hph_unsupported};
        const yn_node *hn = cfg_get(v, "header_name");
        if ((rc = cfg_check_map(c, v, &hf)) != 0)
            break;
        if (!hn) {
            rc = cfg_err(c, v, "missing required field 'header_name'");
            break;
        }
        size_t m2 = cfg_push(c, "header_name");
        rc = cfg_route_lower_str(c, hn, &h->name, &h->name_len);
        if (!rc && !h->name_len)
            rc = cfg_err(c, hn, "must not be empty");
        cfg_pop(c, m2);
        break;
    }
    case CFG_HASH_COOKIE: {
        static const cfg_fields cf = {hpc_handled, NULL, hpc_unsupported};
        if ((rc = cfg_check_map(c, v, &cf)) != 0 ||
            (rc = cfg_get_str(c, v, "name", true, &h->name)) != 0 ||
            (rc = cfg_get_str(c, v, "path", false, &h->path)) != 0)
            break;
        h->name_len = strlen(h->name);
        if (cfg_get(v, "ttl")) {
            uint64_t ms = 0;
            if ((rc = cfg_get_duration(c, v, "ttl", &ms)) != 0)
                break;
            h->has_ttl = true;
            h->ttl_s = ms / 1000;
        }
        break;
    }
    case CFG_HASH_SOURCE_IP: {
        static const cfg_fields pf = {hpcp_handled, NULL, NULL};
        bool on = false;
        if ((rc = cfg_check_map(c, v, &pf)) == 0 &&
            (rc = cfg_get_bool(c, v, "source_ip", &on)) == 0)
            h->disabled = !on;
        break;
    }
    case CFG_HASH_QUERY: {
        static const cfg_fields qf = {hpq_handled, NULL, NULL};
        if ((rc = cfg_check_map(c, v, &qf)) == 0 &&
            (rc = cfg_get_str(c, v, "name", true, &h->name)) == 0)
            h->name_len = strlen(h->name);
        break;
    }
    }
    cfg_pop(c, m);
    return rc;
}

/* ---- route ---- */

static const char *const action_handled[] = {
    "cluster", "cluster_header", "weighted_clusters", "cluster_not_found_response_code",
    "timeout", "idle_timeout", "prefix_rewrite", "regex_rewrite", "host_rewrite_literal",
    "auto_host_rewrite", "host_rewrite_header", "append_x_forwarded_host", "hash_policy",
    "retry_policy", "request_mirror_policies", "cluster_specifier_plugin",
    "inline_cluster_specifier_plugin", NULL};
static const char *const action_unsupported[] = {
    "metadata_match",
    "path_rewrite_policy", "path_rewrite", "host_rewrite_path_regex", "early_data_policy",
    "retry_policy_typed_config", "priority",
    "rate_limits", "include_vh_rate_limits", "cors", "max_grpc_timeout",
    "grpc_timeout_offset", "upgrade_configs", "internal_redirect_policy",
    "internal_redirect_action", "max_internal_redirects", "hedge_policy",
    "max_stream_duration", NULL};


int cfg_route_parse_action(cfg_ctx *c, const yn_node *a, cfg_route *r)
{
    static const cfg_fields f = {action_handled, NULL, action_unsupported};
    static const char *const specs[] = {"cluster", "cluster_header", "weighted_clusters",
                                        "cluster_specifier_plugin",
                                        "inline_cluster_specifier_plugin"};
    static const char *const rewrites[] = {"prefix_rewrite", "regex_rewrite"};
    static const char *const hosts[] = {"host_rewrite_literal", "auto_host_rewrite",
                                        "host_rewrite_header"};
    static const char *const nf_codes[] = {"SERVICE_UNAVAILABLE", "NOT_FOUND",
                                           "INTERNAL_SERVER_ERROR", NULL};
    static const uint16_t nf_values[] = {503, 404, 500};
    int rc;
    if ((rc = cfg_check_map(c, a, &f)) != 0)
        return rc;
    int spec;
    if ((rc = cfg_one_of(c, a, specs, 5, false, &spec)) != 0)
        return rc;
    if (spec < 0)
        return cfg_err(c, a, "missing required field: one of 'cluster', 'cluster_header', "
                             "'weighted_clusters', 'cluster_specifier_plugin', "
                             "'inline_cluster_specifier_plugin'");
    size_t m = cfg_push(c, specs[spec]);
    const yn_node *v = cfg_get(a, specs[spec]);
    if (spec == 0) {
        if ((rc = cfg_node_str(c, v, &r->cluster)) == 0)
            rc = cfg_route_find_cluster(c, v, r->cluster, &r->cluster_index);
    } else if (spec == 1) {
        rc = cfg_route_lower_str(c, v, &r->cluster_header, &r->cluster_header_len);
        if (!rc && !r->cluster_header_len)
            rc = cfg_err(c, v, "must not be empty");
    } else if (spec == 2) {
        rc = parse_weighted(c, v, r);
    } else {
        rc = cfg_parse_route_cluster_specifier(c, v, spec == 4, r);
    }
    cfg_pop(c, m);
    if (rc)
        return rc;
    int nf = 0;
    if ((rc = cfg_get_enum(c, a, "cluster_not_found_response_code", nf_codes, nf_codes,
                           &nf)) != 0)
        return rc;
    r->cluster_not_found_code = nf_values[nf];

    r->timeout_ms = 15000;
    if ((rc = cfg_get_duration(c, a, "timeout", &r->timeout_ms)) != 0)
        return rc;
    if (cfg_get(a, "retry_policy")) {
        size_t mr = cfg_push(c, "retry_policy");
        rc = cfg_parse_retry_policy(c, cfg_get(a, "retry_policy"), &r->retry);
        cfg_pop(c, mr);
        if (rc)
            return rc;
    }
    if ((rc = cfg_route_parse_mirrors(c, a, &r->mirrors)) != 0)
        return rc;
    if (cfg_get(a, "idle_timeout")) {
        if ((rc = cfg_get_duration(c, a, "idle_timeout", &r->idle_timeout_ms)) != 0)
            return rc;
        r->has_idle_timeout = true;
    }

    int rw;
    if ((rc = cfg_one_of(c, a, rewrites, 2, false, &rw)) != 0)
        return rc;
    if (rw == 0) {
        if ((rc = cfg_get_str(c, a, "prefix_rewrite", false, &r->prefix_rewrite)) != 0)
            return rc;
        r->prefix_rewrite_len = strlen(r->prefix_rewrite);
    } else if (rw == 1) {
        m = cfg_push(c, "regex_rewrite");
        rc = cfg_route_parse_regex_rewrite(c, cfg_get(a, "regex_rewrite"), &r->regex_rewrite);
        cfg_pop(c, m);
        if (rc)
            return rc;
    }

    int hr;
    if ((rc = cfg_one_of(c, a, hosts, 3, false, &hr)) != 0)
        return rc;
    if (hr == 0) {
        if ((rc = cfg_get_str(c, a, "host_rewrite_literal", false,
                              &r->host_rewrite_literal)) != 0)
            return rc;
        r->host_rewrite_literal_len = strlen(r->host_rewrite_literal);
    } else if (hr == 1) {
        if ((rc = cfg_get_bool(c, a, "auto_host_rewrite", &r->auto_host_rewrite)) != 0)
            return rc;
    } else if (hr == 2) {
        m = cfg_push(c, "host_rewrite_header");
        rc = cfg_route_lower_str(c, cfg_get(a, "host_rewrite_header"), &r->host_rewrite_header,
                                 &r->host_rewrite_header_len);
        cfg_pop(c, m);
        if (rc)
            return rc;
    }
    if ((rc = cfg_get_bool(c, a, "append_x_forwarded_host", &r->append_x_forwarded_host)) != 0)
        return rc;

    const yn_node *hp = cfg_get(a, "hash_policy");
    if (hp) {
        size_t n;
        m = cfg_push(c, "hash_policy");
        if ((rc = cfg_expect_seq(c, hp, &n)) == 0 && n) {
            if (!(r->hash = calloc(n, sizeof *r->hash)))
                rc = cfg_err(c, hp, "out of memory");
            else
                r->n_hash = n;
        }
        for (size_t i = 0; !rc && i < n; i++) {
            size_t mi = cfg_push_idx(c, i);
            rc = parse_hash_policy(c, hp->items[i], &r->hash[i]);
            cfg_pop(c, mi);
        }
        cfg_pop(c, m);
    }
    return rc;
}

/* ---- redirect ---- */

static const char *const redir_handled[] = {
    "https_redirect", "scheme_redirect", "host_redirect", "port_redirect", "path_redirect",
    "prefix_rewrite", "regex_rewrite", "response_code", "strip_query", NULL};

int cfg_route_parse_redirect(cfg_ctx *c, const yn_node *d, cfg_route *r)
{
    static const cfg_fields f = {redir_handled, NULL, NULL};
    static const char *const schemes[] = {"https_redirect", "scheme_redirect"};
    static const char *const paths[] = {"path_redirect", "prefix_rewrite", "regex_rewrite"};
    static const char *const codes[] = {"MOVED_PERMANENTLY", "FOUND", "SEE_OTHER",
                                        "TEMPORARY_REDIRECT", "PERMANENT_REDIRECT", NULL};
    static const uint16_t code_v[] = {301, 302, 303, 307, 308};
    cfg_redirect *rd = &r->redirect;
    int rc;
    if ((rc = cfg_check_map(c, d, &f)) != 0)
        return rc;
    int sc;
    if ((rc = cfg_one_of(c, d, schemes, 2, false, &sc)) != 0)
        return rc;
    if (sc == 0) {
        bool on = false;
        if ((rc = cfg_get_bool(c, d, "https_redirect", &on)) != 0)
            return rc;
        if (on && !(rd->scheme = strdup("https")))
            return cfg_err(c, d, "out of memory");
    } else if (sc == 1) {
        if ((rc = cfg_get_str(c, d, "scheme_redirect", false, &rd->scheme)) != 0)
            return rc;
        for (char *p = rd->scheme; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        if (!*rd->scheme) {
            free(rd->scheme);
            rd->scheme = NULL;
        }
    }
    if ((rc = cfg_get_str(c, d, "host_redirect", false, &rd->host)) != 0)
        return rc;
    uint32_t port = 0;
    if ((rc = cfg_get_u32(c, d, "port_redirect", false, 0, 65535, &port)) != 0)
        return rc;
    if (port) {
        if (!(rd->port = malloc(16)))
            return cfg_err(c, d, "out of memory");
        snprintf(rd->port, 16, ":%u", port);
    }
    int ps;
    if ((rc = cfg_one_of(c, d, paths, 3, false, &ps)) != 0)
        return rc;
    if (ps == 0) {
        if ((rc = cfg_get_str(c, d, "path_redirect", false, &rd->path)) != 0)
            return rc;
        rd->path_has_query = strchr(rd->path, '?') != NULL;
    } else if (ps == 1) {
        if ((rc = cfg_get_str(c, d, "prefix_rewrite", false, &rd->prefix_rewrite)) != 0)
            return rc;
        rd->prefix_rewrite_len = strlen(rd->prefix_rewrite);
    } else if (ps == 2) {
        size_t m = cfg_push(c, "regex_rewrite");
        rc = cfg_route_parse_regex_rewrite(c, cfg_get(d, "regex_rewrite"), &rd->regex_rewrite);
        cfg_pop(c, m);
        if (rc)
            return rc;
    }
    int code = 0;
    if ((rc = cfg_get_enum(c, d, "response_code", codes, codes, &code)) != 0 ||
        (rc = cfg_get_bool(c, d, "strip_query", &rd->strip_query)) != 0)
        return rc;
    rd->code = code_v[code];
    return 0;
}

void cfg_route_free_action(cfg_route *r)
{
    free(r->cluster);
    free(r->cluster_header);
    for (size_t i = 0; i < r->n_weighted; i++) {
        cfg_weighted_cluster *w = &r->weighted[i];
        free(w->name);
        free(w->runtime_key);
        free(w->host_rewrite_literal);
        cfg_route_free_mutations(&w->req_mut);
        cfg_route_free_mutations(&w->resp_mut);
    }
    free(r->weighted);
    free(r->wc_header_name);
    for (size_t i = 0; i < r->n_hash; i++) {
        free(r->hash[i].name);
        free(r->hash[i].path);
    }
    free(r->hash);
    free(r->prefix_rewrite);
    free_regex_rewrite(&r->regex_rewrite);
    free(r->host_rewrite_literal);
    free(r->host_rewrite_header);
    cfg_redirect *rd = &r->redirect;
    free(rd->scheme);
    free(rd->host);
    free(rd->port);
    free(rd->path);
    free(rd->prefix_rewrite);
    free_regex_rewrite(&rd->regex_rewrite);
    cfg_route_free_mirrors(&r->mirrors);
}
