/* route_config -> cfg_route_config (envoy.config.route.v3.RouteConfiguration,
 * VirtualHost, Route, DirectResponseAction).  RouteMatch is parsed in
 * config_route_match.c, RouteAction and RedirectAction in
 * config_route_action.c, header mutations in config_route_headers.c. */
#include "config/config_route_internal.h"
#include "config/cluster_specifier_config.h"
#include "config/filter_config.h"
#include "config/metadata_config.h"
#include "config/retry_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const rc_handled[] = {
    "name", "virtual_hosts", "response_headers_to_add", "response_headers_to_remove",
    "request_headers_to_add", "request_headers_to_remove",
    "most_specific_header_mutations_wins", "ignore_port_in_host_matching",
    "request_mirror_policies", "cluster_specifier_plugins", NULL};
static const char *const rc_ignored[] = {"validate_clusters", NULL};
static const char *const rc_unsupported[] = {
    "vhds", "internal_only_headers", "max_direct_response_body_size_bytes",
    "ignore_path_parameters_in_path_matching", "typed_per_filter_config", "metadata",
    NULL};

static const char *const vh_handled[] = {
    "name", "domains", "routes", "request_headers_to_add", "request_headers_to_remove",
    "response_headers_to_add", "response_headers_to_remove", "typed_per_filter_config",
    "retry_policy", "request_mirror_policies", NULL};
static const char *const vh_unsupported[] = {
    "matcher", "require_tls", "virtual_clusters", "rate_limits", "cors",
    "include_request_attempt_count",
    "include_attempt_count_in_response", "retry_policy_typed_config",
    "hedge_policy", "include_is_timeout_retry_header", "per_request_buffer_limit_bytes",
    "metadata", NULL};

static const char *const route_handled[] = {
    "name", "match", "route", "direct_response", "redirect", "request_headers_to_add",
    "request_headers_to_remove", "response_headers_to_add", "response_headers_to_remove",
    "typed_per_filter_config", "metadata", NULL};
static const char *const route_unsupported[] = {
    "filter_action", "non_forwarding_action", "decorator",
    "tracing", "per_request_buffer_limit_bytes", "stat_prefix", NULL};

static const char *const dr_handled[] = {"status", "body", NULL};
static const char *const ds_handled[] = {"inline_string", NULL};
static const char *const ds_unsupported[] = {"filename", "inline_bytes",
                                             "environment_variable", "watched_directory",
                                             NULL};

static void free_route(cfg_route *r)
{
    free(r->name);
    cfg_route_free_match(r);
    cfg_route_free_action(r);
    cfg_retry_policy_free(r->retry);
    free(r->direct_body);
    cfg_route_free_mutations(&r->req_mut);
    cfg_route_free_mutations(&r->resp_mut);
    cfg_per_filter_free(r->per_filter, r->n_per_filter);
    yn_free(r->filter_metadata);
    if (r->owns_cluster_plugin) {
        cfg_cluster_specifier_free(r->cluster_plugin);
        free(r->cluster_plugin);
    }
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
        free(vh->domain_lens);
        cfg_route_free_mutations(&vh->req_mut);
        cfg_route_free_mutations(&vh->resp_mut);
        cfg_per_filter_free(vh->per_filter, vh->n_per_filter);
        cfg_retry_policy_free(vh->retry);
        cfg_route_free_mirrors(&vh->mirrors);
        for (size_t j = 0; j < vh->n_routes; j++)
            free_route(&vh->routes[j]);
        free(vh->routes);
        route_index_free(vh->index);
    }
    free(rc->vhosts);
    cfg_route_free_mutations(&rc->req_mut);
    cfg_route_free_mutations(&rc->resp_mut);
    cfg_route_free_mirrors(&rc->mirrors);
    for (size_t i = 0; i < rc->n_cluster_plugins; i++)
        cfg_cluster_specifier_free(&rc->cluster_plugins[i]);
    free(rc->cluster_plugins);
    memset(rc, 0, sizeof(*rc));
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
    static const cfg_fields f = {route_handled, NULL, route_unsupported};
    int rc;
    if ((rc = cfg_check_map(c, n, &f)) != 0 ||
        (rc = cfg_get_str(c, n, "name", false, &r->name)) != 0)
        return rc;
    const yn_node *m = cfg_get(n, "match");
    if (!m)
        return cfg_err(c, n, "missing required field 'match'");
    size_t mk = cfg_push(c, "match");
    rc = cfg_route_parse_match(c, m, r);
    cfg_pop(c, mk);
    if (rc)
        return rc;
    static const char *const acts[] = {"route", "direct_response", "redirect"};
    int found;
    if ((rc = cfg_one_of(c, n, acts, 3, true, &found)) != 0)
        return rc;
    const yn_node *a = cfg_get(n, acts[found]);
    mk = cfg_push(c, acts[found]);
    if (found == 0) {
        r->action = CFG_ACTION_ROUTE;
        rc = cfg_route_parse_action(c, a, r);
        /* Envoy: prefix_rewrite replaces the matched prefix, which a regex
         * route does not have (the whole path is replaced then). */
    } else if (found == 1) {
        r->action = CFG_ACTION_DIRECT;
        rc = parse_direct(c, a, r);
    } else {
        r->action = CFG_ACTION_REDIRECT;
        rc = cfg_route_parse_redirect(c, a, r);
    }
    cfg_pop(c, mk);
    if (rc || (rc = cfg_route_parse_mutations(c, n, "request_headers_to_add",
                                              "request_headers_to_remove", false,
                                              &r->req_mut)) != 0)
        return rc;
    if ((rc = cfg_route_parse_mutations(c, n, "response_headers_to_add",
                                        "response_headers_to_remove", true, &r->resp_mut)) != 0)
        return rc;
    if ((rc = cfg_parse_metadata(c, n, &r->filter_metadata)) != 0)
        return rc;
    return cfg_parse_per_filter_config(c, n, &r->per_filter, &r->n_per_filter);
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
    if (!rc && !(vh->domain_lens = calloc(nd, sizeof(*vh->domain_lens))))
        rc = cfg_err(c, doms, "out of memory");
    if (!rc)
        vh->n_domains = nd;
    for (size_t i = 0; i < nd && !rc; i++) {
        size_t mi = cfg_push_idx(c, i);
        rc = cfg_node_str(c, doms->items[i], &vh->domains[i]);
        if (!rc && !vh->domains[i][0])
            rc = cfg_err(c, doms->items[i], "must not be empty");
        if (!rc)
            vh->domain_lens[i] = strlen(vh->domains[i]);
        cfg_pop(c, mi);
    }
    cfg_pop(c, m);
    if (rc)
        return rc;
    if ((rc = cfg_route_parse_mutations(c, n, "request_headers_to_add",
                                        "request_headers_to_remove", false, &vh->req_mut)) != 0 ||
        (rc = cfg_route_parse_mutations(c, n, "response_headers_to_add",
                                        "response_headers_to_remove", true, &vh->resp_mut)) != 0 ||
        (rc = cfg_parse_per_filter_config(c, n, &vh->per_filter, &vh->n_per_filter)) != 0)
        return rc;
    if (cfg_get(n, "retry_policy")) {
        size_t mr = cfg_push(c, "retry_policy");
        rc = cfg_parse_retry_policy(c, cfg_get(n, "retry_policy"), &vh->retry);
        cfg_pop(c, mr);
        if (rc)
            return rc;
    }
    if ((rc = cfg_route_parse_mirrors(c, n, &vh->mirrors)) != 0)
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
    if (!rc)
        vh->index = route_index_new(vh);
    return rc;
}

int cfg_parse_route_config(cfg_ctx *c, const yn_node *n, cfg_route_config *out)
{
    static const cfg_fields f = {rc_handled, rc_ignored, rc_unsupported};
    int rc;
    if ((rc = cfg_check_map(c, n, &f)) != 0 ||
        (rc = cfg_get_str(c, n, "name", false, &out->name)) != 0 ||
        (rc = cfg_get_bool(c, n, "ignore_port_in_host_matching",
                           &out->ignore_port_in_host_matching)) != 0 ||
        (rc = cfg_get_bool(c, n, "most_specific_header_mutations_wins",
                           &out->most_specific_header_mutations_wins)) != 0 ||
        (rc = cfg_route_parse_mutations(c, n, "request_headers_to_add",
                                        "request_headers_to_remove", false, &out->req_mut)) != 0 ||
        (rc = cfg_route_parse_mutations(c, n, "response_headers_to_add",
                                        "response_headers_to_remove", true, &out->resp_mut)) != 0 ||
        (rc = cfg_route_parse_mirrors(c, n, &out->mirrors)) != 0 ||
        (rc = cfg_parse_cluster_specifier_plugins(c, n, out)) != 0)
        return rc;
    c->route_config = out;          /* routes refer to its plugins by name */
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
    /* What the request path would otherwise work out per request. */
    for (size_t i = 0; i < out->n_vhosts && !rc; i++) {
        cfg_virtual_host *vh = &out->vhosts[i];
        for (size_t j = 0; j < vh->n_routes; j++) {
            cfg_route *r = &vh->routes[j];
            r->retry_applied = r->retry ? r->retry : vh->retry;
            r->mirrored = r->mirrors.n || vh->mirrors.n || out->mirrors.n;
        }
    }
    c->route_config = NULL;         /* every virtual host's routes are parsed */
    return rc;
}
