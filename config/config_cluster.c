/* static_resources.clusters[] -> cfg_cluster (envoy.config.cluster.v3.Cluster). */
#include "config/cluster_config.h"
#include "config/config_internal.h"
#include "config/tls_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const cluster_handled[] = {
    "name", "type", "connect_timeout", "dns_refresh_rate", "lb_policy",
    "load_assignment", "dns_lookup_family", "http2_protocol_options", "transport_socket",
    "typed_extension_protocol_options", "health_checks", "circuit_breakers",
    "outlier_detection", "ring_hash_lb_config", "maglev_lb_config", "least_request_lb_config",
    "round_robin_lb_config", "common_lb_config", NULL};
static const char *const cluster_ignored[] = {"alt_stat_name", "metadata", NULL};
static const char *const cluster_unsupported[] = {
    "cluster_type", "eds_cluster_config", "per_connection_buffer_limit_bytes",
    "max_requests_per_connection",
    "upstream_http_protocol_options", "common_http_protocol_options",
    "http_protocol_options", "dns_jitter", "dns_failure_refresh_rate",
    "respect_dns_ttl", "dns_resolvers", "use_tcp_for_dns_lookups",
    "dns_resolution_config", "typed_dns_resolver_config", "wait_for_warm_on_init",
    "cleanup_interval", "upstream_bind_config",
    "lb_subset_config", "original_dst_lb_config", "transport_socket_matches",
    "protocol_selection", "upstream_connection_options",
    "close_connections_on_host_health_failure", "ignore_health_on_host_removal",
    "filters", "load_balancing_policy", "lrs_server", "lrs_report_endpoint_metrics",
    "track_timeout_budgets", "upstream_config", "track_cluster_stats",
    "preconnect_policy", "connection_pool_per_downstream_connection", "hosts",
    "http2_settings", NULL};

static const char *const type_known[] = {"STATIC", "STRICT_DNS", "LOGICAL_DNS", "EDS",
                                         "ORIGINAL_DST", NULL};
static const char *const type_sup[] = {"STATIC", "STRICT_DNS", "LOGICAL_DNS", NULL};
static const char *const lb_known[] = {"ROUND_ROBIN", "LEAST_REQUEST", "RING_HASH",
                                       "RANDOM", "MAGLEV", "CLUSTER_PROVIDED",
                                       "LOAD_BALANCING_POLICY_CONFIG", NULL};
/* Order matches cfg_lb_policy. */
static const char *const lb_sup[] = {"ROUND_ROBIN", "LEAST_REQUEST", "RING_HASH", "RANDOM",
                                     "MAGLEV", NULL};
/* Address family preference only; accepted without effect. */
static const char *const family_known[] = {"AUTO", "V4_ONLY", "V6_ONLY", "V4_PREFERRED",
                                           "ALL", NULL};

static const char *const cla_handled[] = {"cluster_name", "endpoints", "policy", NULL};
static const char *const cla_unsupported[] = {"named_endpoints", NULL};
static const char *const pol_handled[] = {"overprovisioning_factor", NULL};
static const char *const pol_ignored[] = {"endpoint_stale_after", NULL};
static const char *const pol_unsupported[] = {"drop_overloads", "weighted_priority_health",
                                              NULL};
static const char *const lle_handled[] = {"lb_endpoints", "locality", "load_balancing_weight",
                                          "priority", NULL};
static const char *const lle_ignored[] = {"metadata", NULL};
static const char *const lle_unsupported[] = {"leds_cluster_locality_config", "proximity",
                                              NULL};
static const char *const loc_handled[] = {"region", "zone", "sub_zone", NULL};
static const char *const lbe_handled[] = {"endpoint", "load_balancing_weight", NULL};
static const char *const lbe_ignored[] = {"metadata", NULL};
static const char *const lbe_unsupported[] = {"endpoint_name", "health_status", NULL};
static const char *const ep_handled[] = {"address", "health_check_config", NULL};
static const char *const ep_ignored[] = {"hostname", NULL};
static const char *const ep_unsupported[] = {"additional_addresses", NULL};
static const char *const hcc_handled[] = {"port_value", NULL};
static const char *const hcc_ignored[] = {"hostname", NULL};
static const char *const hcc_unsupported[] = {"address", "disable_active_health_check", NULL};

ptrdiff_t cfg_cluster_index(const cfg_bootstrap *b, const char *name, size_t n)
{
    for (size_t i = 0; name && i < b->n_clusters; i++)
        if (strlen(b->clusters[i].name) == n && memcmp(b->clusters[i].name, name, n) == 0)
            return (ptrdiff_t)i;
    return -1;
}

void cfg_free_cluster(cfg_cluster *cl)
{
    cfg_tls_client_free(cl->tls);
    free(cl->name);
    for (size_t i = 0; i < cl->n_endpoints; i++)
        free(cl->endpoints[i].address);
    free(cl->endpoints);
    cfg_cluster_lb_free(cl->lb);
}

/* lle_meta: priority / locality / locality weight of the enclosing LocalityLbEndpoints. */
static int add_endpoint(cfg_ctx *c, cfg_cluster *cl, const yn_node *lbe,
                        const cfg_lb_endpoint *lle_meta)
{
    static const cfg_fields hcc_f = {hcc_handled, hcc_ignored, hcc_unsupported};
    static const cfg_fields lbe_f = {lbe_handled, lbe_ignored, lbe_unsupported};
    static const cfg_fields ep_f = {ep_handled, ep_ignored, ep_unsupported};
    int rc;
    if ((rc = cfg_check_map(c, lbe, &lbe_f)) != 0)
        return rc;
    const yn_node *ep = cfg_get(lbe, "endpoint");
    if (!ep)
        return cfg_err(c, lbe, "missing required field 'endpoint'");
    size_t m = cfg_push(c, "endpoint");
    if ((rc = cfg_check_map(c, ep, &ep_f)) != 0)
        goto out;
    const yn_node *addr = cfg_get(ep, "address");
    if (!addr) {
        rc = cfg_err(c, ep, "missing required field 'address'");
        goto out;
    }
    cfg_lb_endpoint meta = *lle_meta;
    meta.weight = 1;
    if ((rc = cfg_get_u32(c, lbe, "load_balancing_weight", false, 1, UINT32_MAX,
                          &meta.weight)) != 0)
        goto out;
    const yn_node *hcc = cfg_get(ep, "health_check_config");
    if (hcc) {
        size_t mh = cfg_push(c, "health_check_config");
        uint32_t port = 0;
        if ((rc = cfg_check_map(c, hcc, &hcc_f)) == 0)
            rc = cfg_get_u32(c, hcc, "port_value", false, 0, 65535, &port);
        meta.hc_port = (uint16_t)port;
        cfg_pop(c, mh);
        if (rc)
            goto out;
    }
    cfg_socket_address *eps = realloc(cl->endpoints, (cl->n_endpoints + 1) * sizeof(*eps));
    if (!eps) {
        rc = cfg_err(c, ep, "out of memory");
        goto out;
    }
    cl->endpoints = eps;
    cfg_lb_endpoint *metas = realloc(cl->lb->endpoints, (cl->n_endpoints + 1) * sizeof(*metas));
    if (!metas) {
        rc = cfg_err(c, ep, "out of memory");
        goto out;
    }
    cl->lb->endpoints = metas;
    metas[cl->n_endpoints] = meta;
    memset(&eps[cl->n_endpoints], 0, sizeof(*eps));
    cl->n_endpoints++;
    size_t m2 = cfg_push(c, "address");
    rc = cfg_parse_address(c, addr, cl->type == CFG_CLUSTER_STATIC,
                           &eps[cl->n_endpoints - 1]);
    cfg_pop(c, m2);
out:
    cfg_pop(c, m);
    return rc;
}

static int dup_or_empty(cfg_ctx *c, const yn_node *map, const char *key, char **out)
{
    int rc = cfg_get_str(c, map, key, false, out);
    if (!rc && !*out && !(*out = strdup("")))
        rc = cfg_err(c, map, "out of memory");
    return rc;
}

/* locality {region, zone, sub_zone} of endpoints[i] -> cl->lb->localities[i]. */
static int parse_locality(cfg_ctx *c, cfg_cluster *cl, const yn_node *lle, size_t i)
{
    static const cfg_fields loc_f = {loc_handled, NULL, NULL};
    cfg_locality *loc = &cl->lb->localities[i];
    const yn_node *l = cfg_get(lle, "locality");
    int rc = 0;
    size_t m = cfg_push(c, "locality");
    if (l && (rc = cfg_check_map(c, l, &loc_f)) != 0)
        goto out;
    const yn_node *src = l ? l : lle;     /* absent: every field "" */
    if (!l) {
        loc->region = strdup("");
        loc->zone = strdup("");
        loc->sub_zone = strdup("");
        if (!loc->region || !loc->zone || !loc->sub_zone)
            rc = cfg_err(c, src, "out of memory");
        goto out;
    }
    if ((rc = dup_or_empty(c, l, "region", &loc->region)) != 0 ||
        (rc = dup_or_empty(c, l, "zone", &loc->zone)) != 0 ||
        (rc = dup_or_empty(c, l, "sub_zone", &loc->sub_zone)) != 0)
        goto out;
out:
    cfg_pop(c, m);
    return rc;
}

static int parse_lb_policy(cfg_ctx *c, cfg_cluster *cl, const yn_node *la)
{
    static const cfg_fields pol_f = {pol_handled, pol_ignored, pol_unsupported};
    const yn_node *pol = cfg_get(la, "policy");
    if (!pol)
        return 0;
    size_t m = cfg_push(c, "policy");
    int rc = cfg_check_map(c, pol, &pol_f);
    if (!rc)
        rc = cfg_get_u32(c, pol, "overprovisioning_factor", false, 1, 100000,
                         &cl->lb->overprovisioning_factor);
    cfg_pop(c, m);
    return rc;
}

static int parse_load_assignment(cfg_ctx *c, cfg_cluster *cl, const yn_node *la)
{
    static const cfg_fields cla_f = {cla_handled, NULL, cla_unsupported};
    static const cfg_fields lle_f = {lle_handled, lle_ignored, lle_unsupported};
    char *cname = NULL;
    int rc;
    if ((rc = cfg_check_map(c, la, &cla_f)) != 0 ||
        (rc = cfg_get_str(c, la, "cluster_name", false, &cname)) != 0) {
        free(cname);
        return rc;
    }
    free(cname); /* only meaningful for EDS */
    if ((rc = parse_lb_policy(c, cl, la)) != 0)
        return rc;
    const yn_node *eps = cfg_get(la, "endpoints");
    size_t n;
    size_t m = cfg_push(c, "endpoints");
    if ((rc = cfg_expect_seq(c, eps, &n)) != 0)
        goto out;
    if (n && !(cl->lb->localities = calloc(n, sizeof *cl->lb->localities))) {
        rc = cfg_err(c, eps, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        size_t mi = cfg_push_idx(c, i);
        const yn_node *lle = eps->items[i];
        size_t nl = 0;
        cfg_lb_endpoint meta = {.locality = (uint32_t)i};
        if ((rc = cfg_check_map(c, lle, &lle_f)) == 0 &&
            (rc = cfg_get_u32(c, lle, "priority", false, 0, 127, &meta.priority)) == 0 &&
            (rc = cfg_get_u32(c, lle, "load_balancing_weight", false, 1, UINT32_MAX,
                              &meta.locality_weight)) == 0 &&
            (rc = parse_locality(c, cl, lle, i)) == 0) {
            cl->lb->n_localities = i + 1;
            cl->lb->localities[i].weight = meta.locality_weight;
            const yn_node *lbes = cfg_get(lle, "lb_endpoints");
            size_t ml = cfg_push(c, "lb_endpoints");
            rc = cfg_expect_seq(c, lbes, &nl);
            for (size_t j = 0; j < nl && !rc; j++) {
                size_t mj = cfg_push_idx(c, j);
                rc = add_endpoint(c, cl, lbes->items[j], &meta);
                cfg_pop(c, mj);
            }
            cfg_pop(c, ml);
        }
        cfg_pop(c, mi);
    }
out:
    cfg_pop(c, m);
    return rc;
}

int cfg_parse_cluster(cfg_ctx *c, const yn_node *n, cfg_cluster *cl)
{
    static const cfg_fields f = {cluster_handled, cluster_ignored, cluster_unsupported};
    int rc, type = 0, lb = 0, family = 0;
    cl->connect_timeout_ms = 5000;
    cl->dns_refresh_rate_ms = 5000;
    if (!(cl->lb = malloc(sizeof *cl->lb)))
        return cfg_err(c, n, "out of memory");
    *cl->lb = cfg_cluster_lb_defaults;
    if ((rc = cfg_check_map(c, n, &f)) != 0 ||
        (rc = cfg_get_str(c, n, "name", true, &cl->name)) != 0 ||
        (rc = cfg_get_enum(c, n, "type", type_known, type_sup, &type)) != 0 ||
        (rc = cfg_get_enum(c, n, "lb_policy", lb_known, lb_sup, &lb)) != 0 ||
        (rc = cfg_get_enum(c, n, "dns_lookup_family", family_known, family_known,
                           &family)) != 0 ||
        (rc = cfg_get_duration(c, n, "connect_timeout", &cl->connect_timeout_ms)) != 0 ||
        (rc = cfg_get_duration(c, n, "dns_refresh_rate", &cl->dns_refresh_rate_ms)) != 0)
        return rc;
    cl->type = (cfg_cluster_type)type;
    cl->lb_policy = (cfg_lb_policy)lb;
    if ((rc = cfg_parse_cluster_http_protocol(c, n, cl)) != 0)
        return rc;
    if (cfg_get(n, "connect_timeout") && cl->connect_timeout_ms == 0) {
        size_t m = cfg_push(c, "connect_timeout");
        rc = cfg_err(c, cfg_get(n, "connect_timeout"), "must be greater than 0");
        cfg_pop(c, m);
        return rc;
    }
    if (cfg_get(n, "dns_refresh_rate") && cl->dns_refresh_rate_ms == 0) {
        size_t m = cfg_push(c, "dns_refresh_rate");
        rc = cfg_err(c, cfg_get(n, "dns_refresh_rate"), "must be greater than 0");
        cfg_pop(c, m);
        return rc;
    }
    const yn_node *la = cfg_get(n, "load_assignment");
    if (la) {
        size_t m = cfg_push(c, "load_assignment");
        rc = parse_load_assignment(c, cl, la);
        if (!rc && cl->type == CFG_CLUSTER_LOGICAL_DNS && cl->n_endpoints != 1)
            rc = cfg_err(c, la, "LOGICAL_DNS clusters must have exactly one endpoint "
                                "(got %zu)", cl->n_endpoints);
        cfg_pop(c, m);
        if (rc)
            return rc;
    } else if (cl->type == CFG_CLUSTER_LOGICAL_DNS) {
        return cfg_err(c, n, "missing required field 'load_assignment' "
                             "(LOGICAL_DNS clusters need exactly one endpoint)");
    }
    if ((rc = cfg_parse_cluster_lb(c, n, cl)) != 0 ||
        (rc = cfg_parse_health_checks(c, n, cl)) != 0)
        return rc;
    const yn_node *ts = cfg_get(n, "transport_socket");
    if (ts) {
        size_t m = cfg_push(c, "transport_socket");
        rc = cfg_parse_upstream_tls(c, ts, &cl->tls);
        cfg_pop(c, m);
        if (rc)
            return rc;
    }
    return 0;
}

int cfg_parse_clusters(cfg_ctx *c, const yn_node *seq)
{
    size_t n;
    int rc;
    if ((rc = cfg_expect_seq(c, seq, &n)) != 0 || n == 0)
        return rc;
    cfg_bootstrap *b = c->b;
    b->clusters = calloc(n, sizeof(*b->clusters));
    if (!b->clusters)
        return cfg_err(c, seq, "out of memory");
    b->n_clusters = n;
    for (size_t i = 0; i < n; i++) {
        size_t m = cfg_push_idx(c, i);
        rc = cfg_parse_cluster(c, seq->items[i], &b->clusters[i]);
        for (size_t j = 0; !rc && j < i; j++) {
            if (strcmp(b->clusters[j].name, b->clusters[i].name) == 0) {
                size_t m2 = cfg_push(c, "name");
                rc = cfg_err(c, cfg_get(seq->items[i], "name"),
                             "duplicate cluster name '%s' (first defined at "
                             "static_resources.clusters[%zu])", b->clusters[i].name, j);
                cfg_pop(c, m2);
            }
        }
        cfg_pop(c, m);
        if (rc)
            return rc;
    }
    return 0;
}
