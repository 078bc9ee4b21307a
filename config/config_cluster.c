/* static_resources.clusters[] -> cfg_cluster (envoy.config.cluster.v3.Cluster). */
#include "config/config_internal.h"
#include "config/tls_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const cluster_handled[] = {
    "name", "type", "connect_timeout", "dns_refresh_rate", "lb_policy",
    "load_assignment", "dns_lookup_family", "http2_protocol_options", "transport_socket",
    "typed_extension_protocol_options", NULL};
static const char *const cluster_ignored[] = {"alt_stat_name", "metadata", NULL};
static const char *const cluster_unsupported[] = {
    "cluster_type", "eds_cluster_config", "per_connection_buffer_limit_bytes",
    "health_checks", "max_requests_per_connection", "circuit_breakers",
    "upstream_http_protocol_options", "common_http_protocol_options",
    "http_protocol_options", "dns_jitter", "dns_failure_refresh_rate",
    "respect_dns_ttl", "dns_resolvers", "use_tcp_for_dns_lookups",
    "dns_resolution_config", "typed_dns_resolver_config", "wait_for_warm_on_init",
    "outlier_detection", "cleanup_interval", "upstream_bind_config",
    "lb_subset_config", "ring_hash_lb_config", "maglev_lb_config",
    "original_dst_lb_config", "least_request_lb_config", "round_robin_lb_config",
    "common_lb_config", "transport_socket_matches",
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
static const char *const lb_sup[] = {"ROUND_ROBIN", NULL};
/* Address family preference only; accepted without effect. */
static const char *const family_known[] = {"AUTO", "V4_ONLY", "V6_ONLY", "V4_PREFERRED",
                                           "ALL", NULL};

static const char *const cla_handled[] = {"cluster_name", "endpoints", NULL};
static const char *const cla_unsupported[] = {"named_endpoints", "policy", NULL};
static const char *const lle_handled[] = {"lb_endpoints", NULL};
static const char *const lle_ignored[] = {"locality", "metadata", NULL};
static const char *const lle_unsupported[] = {"leds_cluster_locality_config",
                                              "load_balancing_weight", "priority",
                                              "proximity", NULL};
static const char *const lbe_handled[] = {"endpoint", NULL};
static const char *const lbe_ignored[] = {"metadata", NULL};
static const char *const lbe_unsupported[] = {"endpoint_name", "health_status",
                                              "load_balancing_weight", NULL};
static const char *const ep_handled[] = {"address", NULL};
static const char *const ep_ignored[] = {"hostname", NULL};
static const char *const ep_unsupported[] = {"health_check_config", "additional_addresses",
                                             NULL};

void cfg_free_cluster(cfg_cluster *cl)
{
    cfg_tls_client_free(cl->tls);
    free(cl->name);
    for (size_t i = 0; i < cl->n_endpoints; i++)
        free(cl->endpoints[i].address);
    free(cl->endpoints);
}

static int add_endpoint(cfg_ctx *c, cfg_cluster *cl, const yn_node *lbe)
{
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
    cfg_socket_address *eps = realloc(cl->endpoints, (cl->n_endpoints + 1) * sizeof(*eps));
    if (!eps) {
        rc = cfg_err(c, ep, "out of memory");
        goto out;
    }
    cl->endpoints = eps;
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
    const yn_node *eps = cfg_get(la, "endpoints");
    size_t n;
    size_t m = cfg_push(c, "endpoints");
    if ((rc = cfg_expect_seq(c, eps, &n)) != 0)
        goto out;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t mi = cfg_push_idx(c, i);
        const yn_node *lle = eps->items[i];
        size_t nl = 0;
        if ((rc = cfg_check_map(c, lle, &lle_f)) == 0) {
            const yn_node *lbes = cfg_get(lle, "lb_endpoints");
            size_t ml = cfg_push(c, "lb_endpoints");
            rc = cfg_expect_seq(c, lbes, &nl);
            for (size_t j = 0; j < nl && !rc; j++) {
                size_t mj = cfg_push_idx(c, j);
                rc = add_endpoint(c, cl, lbes->items[j]);
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

static int parse_cluster(cfg_ctx *c, const yn_node *n, cfg_cluster *cl)
{
    static const cfg_fields f = {cluster_handled, cluster_ignored, cluster_unsupported};
    int rc, type = 0, lb = 0, family = 0;
    cl->connect_timeout_ms = 5000;
    cl->dns_refresh_rate_ms = 5000;
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
        rc = parse_cluster(c, seq->items[i], &b->clusters[i]);
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
