/* A cluster's load balancer options, circuit breakers and outlier detection
 * (envoy.config.cluster.v3.Cluster) -> cfg_cluster.lb (config/cluster_config.h). */
#include "config/cluster_config.h"
#include "config/config_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const cfg_cluster_lb cfg_cluster_lb_defaults = {
    .overprovisioning_factor = 140,
    .panic_threshold = 50.0,
    .ring_min = 1024,
    .ring_max = 8388608,
    .maglev_table_size = 65537,
    .choice_count = 2,
    .outlier = {
        .consecutive_5xx = 5,
        .consecutive_gateway_failure = 5,
        .consecutive_local_origin_failure = 5,
        .enforcing_consecutive_5xx = 100,
        .enforcing_consecutive_gateway_failure = 0,
        .enforcing_consecutive_local_origin_failure = 100,
        .interval_ms = 10000,
        .base_ejection_time_ms = 30000,
        .max_ejection_time_ms = 300000,
        .max_ejection_percent = 10,
    },
    .cb = {{1024, 1024, 1024, 3, false}, {1024, 1024, 1024, 3, false}},
};

void cfg_cluster_lb_free(cfg_cluster_lb *lb)
{
    if (!lb)
        return;
    for (size_t i = 0; i < lb->n_localities; i++) {
        free(lb->localities[i].region);
        free(lb->localities[i].zone);
        free(lb->localities[i].sub_zone);
    }
    free(lb->localities);
    free(lb->endpoints);
    for (size_t i = 0; i < lb->n_hcs; i++) {
        cfg_health_check *h = &lb->hcs[i];
        free(h->path);
        free(h->host);
        free(h->service_name);
        free(h->statuses);
        for (size_t j = 0; j < h->n_headers; j++) {
            free(h->headers[j].name);
            free(h->headers[j].value);
        }
        free(h->headers);
    }
    free(lb->hcs);
    free(lb);
}

/* A Percent {value: double} in [0, 100]. */
static int get_percent(cfg_ctx *c, const yn_node *map, const char *key, double *out)
{
    static const char *const h[] = {"value", NULL};
    static const cfg_fields f = {h, NULL, NULL};
    const yn_node *v = cfg_get(map, key);
    if (!v)
        return 0;
    size_t m = cfg_push(c, key);
    int rc = cfg_check_map(c, v, &f);
    const yn_node *vv = rc ? NULL : cfg_get(v, "value");
    if (vv) {
        char *s = NULL, *end = NULL;
        if ((rc = cfg_node_str(c, vv, &s)) == 0) {
            double d = strtod(s, &end);
            if (end == s || *end || d < 0 || d > 100)
                rc = cfg_err(c, vv, "expected a percentage in [0, 100], got '%s'", s);
            else
                *out = d;
        }
        free(s);
    } else if (!rc) {
        *out = 0;
    }
    cfg_pop(c, m);
    return rc;
}

static int get_u64(cfg_ctx *c, const yn_node *map, const char *key, uint64_t lo, uint64_t hi,
                   uint64_t *out)
{
    const yn_node *v = cfg_get(map, key);
    if (!v)
        return 0;
    size_t m = cfg_push(c, key);
    if (v->kind == YN_MAP && cfg_get(v, "value"))
        v = cfg_get(v, "value");
    uint64_t x;
    int rc = cfg_node_u64(c, v, &x);
    if (!rc && (x < lo || x > hi))
        rc = cfg_err(c, v, "value %llu out of range [%llu, %llu]", (unsigned long long)x,
                     (unsigned long long)lo, (unsigned long long)hi);
    if (!rc)
        *out = x;
    cfg_pop(c, m);
    return rc;
}

/* Runs fn on the map at key when present, with the path pushed. */
static int with_map(cfg_ctx *c, const yn_node *n, const char *key, cfg_cluster *cl,
                    int (*fn)(cfg_ctx *, const yn_node *, cfg_cluster *))
{
    const yn_node *v = cfg_get(n, key);
    if (!v)
        return 0;
    size_t m = cfg_push(c, key);
    int rc = fn(c, v, cl);
    cfg_pop(c, m);
    return rc;
}

/* zone_aware_lb_config: zone-aware routing needs cluster_manager.local_cluster_name,
 * which is not supported, so (as in Envoy without a local cluster) its routing
 * settings change nothing; fail_traffic_on_panic applies regardless. */
static int parse_zone_aware(cfg_ctx *c, const yn_node *n, cfg_cluster *cl)
{
    static const char *const h[] = {"fail_traffic_on_panic", NULL};
    static const char *const ig[] = {"routing_enabled", "min_cluster_size",
                                     "force_locality_direct_routing", "force_local_zone",
                                     "locality_basis", NULL};
    static const cfg_fields f = {h, ig, NULL};
    int rc = cfg_check_map(c, n, &f);
    return rc ? rc : cfg_get_bool(c, n, "fail_traffic_on_panic", &cl->lb->fail_traffic_on_panic);
}

/* locality_weighted_lb_config is an empty message; a bare key (null) sets it too. */
static int parse_locality_weighted(cfg_ctx *c, const yn_node *common, cfg_cluster *cl)
{
    static const cfg_fields f = {NULL, NULL, NULL};
    const yn_node *key = cfg_key_node(common, "locality_weighted_lb_config");
    if (key == common)
        return 0;
    const yn_node *v = cfg_get(common, "locality_weighted_lb_config");
    size_t m = cfg_push(c, "locality_weighted_lb_config");
    int rc = 0;
    if (cfg_get(common, "zone_aware_lb_config"))
        rc = cfg_err(c, key, "only one of zone_aware_lb_config, locality_weighted_lb_config "
                             "may be set");
    else if (v)
        rc = cfg_check_map(c, v, &f);
    cl->lb->locality_weighted = true;
    cfg_pop(c, m);
    return rc;
}

static int parse_common(cfg_ctx *c, const yn_node *n, cfg_cluster *cl)
{
    static const char *const h[] = {"healthy_panic_threshold", "zone_aware_lb_config",
                                    "locality_weighted_lb_config", NULL};
    static const char *const ig[] = {"update_merge_window", "ignore_new_hosts_until_first_hc",
                                     "close_connections_on_host_set_change", NULL};
    static const char *const un[] = {"consistent_hashing_lb_config", "override_host_status",
                                     NULL};
    static const cfg_fields f = {h, ig, un};
    int rc = cfg_check_map(c, n, &f);
    if (rc)
        return rc;
    if ((rc = with_map(c, n, "zone_aware_lb_config", cl, parse_zone_aware)) ||
        (rc = parse_locality_weighted(c, n, cl)))
        return rc;
    return get_percent(c, n, "healthy_panic_threshold", &cl->lb->panic_threshold);
}

static int parse_ring(cfg_ctx *c, const yn_node *n, cfg_cluster *cl)
{
    static const char *const h[] = {"minimum_ring_size", "maximum_ring_size", "hash_function",
                                    NULL};
    static const cfg_fields f = {h, NULL, NULL};
    static const char *const fn_known[] = {"XX_HASH", "MURMUR_HASH_2", NULL};
    static const char *const fn_sup[] = {"XX_HASH", NULL};
    int rc, fn = 0;
    if ((rc = cfg_check_map(c, n, &f)) != 0 ||
        (rc = cfg_get_enum(c, n, "hash_function", fn_known, fn_sup, &fn)) != 0 ||
        (rc = get_u64(c, n, "minimum_ring_size", 1, 8388608, &cl->lb->ring_min)) != 0 ||
        (rc = get_u64(c, n, "maximum_ring_size", 1, 8388608, &cl->lb->ring_max)) != 0)
        return rc;
    if (cl->lb->ring_min > cl->lb->ring_max)
        return cfg_err(c, n, "minimum_ring_size (%llu) > maximum_ring_size (%llu)",
                       (unsigned long long)cl->lb->ring_min,
                       (unsigned long long)cl->lb->ring_max);
    return 0;
}

static bool is_prime(uint64_t x)
{
    if (x < 2)
        return false;
    for (uint64_t d = 2; d * d <= x; d++)
        if (x % d == 0)
            return false;
    return true;
}

static int parse_maglev(cfg_ctx *c, const yn_node *n, cfg_cluster *cl)
{
    static const char *const h[] = {"table_size", NULL};
    static const cfg_fields f = {h, NULL, NULL};
    uint64_t t = cl->lb->maglev_table_size;
    int rc;
    if ((rc = cfg_check_map(c, n, &f)) != 0 ||
        (rc = get_u64(c, n, "table_size", 2, 5000011, &t)) != 0)
        return rc;
    if (!is_prime(t)) {
        size_t m = cfg_push(c, "table_size");
        rc = cfg_err(c, cfg_get(n, "table_size"), "table size %llu must be prime",
                     (unsigned long long)t);
        cfg_pop(c, m);
        return rc;
    }
    cl->lb->maglev_table_size = (uint32_t)t;
    return 0;
}

static int parse_least_request(cfg_ctx *c, const yn_node *n, cfg_cluster *cl)
{
    static const char *const h[] = {"choice_count", NULL};
    static const char *const un[] = {"active_request_bias", "slow_start_config",
                                     "locality_lb_config", NULL};
    static const cfg_fields f = {h, NULL, un};
    int rc = cfg_check_map(c, n, &f);
    return rc ? rc : cfg_get_u32(c, n, "choice_count", false, 2, 100, &cl->lb->choice_count);
}

static int parse_round_robin(cfg_ctx *c, const yn_node *n, cfg_cluster *cl)
{
    static const char *const un[] = {"slow_start_config", "locality_lb_config", NULL};
    static const cfg_fields f = {NULL, NULL, un};
    (void)cl;
    return cfg_check_map(c, n, &f);
}

static int parse_thresholds(cfg_ctx *c, const yn_node *n, cfg_cluster *cl)
{
    static const char *const h[] = {"priority", "max_connections", "max_pending_requests",
                                    "max_requests", "max_retries", "track_remaining", NULL};
    static const char *const un[] = {"retry_budget", "max_connection_pools", NULL};
    static const cfg_fields f = {h, NULL, un};
    static const char *const prio[] = {"DEFAULT", "HIGH", NULL};
    int rc, p = 0;
    if ((rc = cfg_check_map(c, n, &f)) != 0 ||
        (rc = cfg_get_enum(c, n, "priority", prio, prio, &p)) != 0)
        return rc;
    cfg_cb_thresholds *t = &cl->lb->cb[p];
    if ((rc = cfg_get_u32(c, n, "max_connections", false, 0, UINT32_MAX, &t->max_connections)) ||
        (rc = cfg_get_u32(c, n, "max_pending_requests", false, 0, UINT32_MAX,
                          &t->max_pending_requests)) ||
        (rc = cfg_get_u32(c, n, "max_requests", false, 0, UINT32_MAX, &t->max_requests)) ||
        (rc = cfg_get_u32(c, n, "max_retries", false, 0, UINT32_MAX, &t->max_retries)) ||
        (rc = cfg_get_bool(c, n, "track_remaining", &t->track_remaining)))
        return rc;
    return 0;
}

static int parse_breakers(cfg_ctx *c, const yn_node *n, cfg_cluster *cl)
{
    static const char *const h[] = {"thresholds", NULL};
    static const char *const un[] = {"per_host_thresholds", NULL};
    static const cfg_fields f = {h, NULL, un};
    int rc;
    size_t k;
    if ((rc = cfg_check_map(c, n, &f)) != 0)
        return rc;
    const yn_node *th = cfg_get(n, "thresholds");
    size_t m = cfg_push(c, "thresholds");
    rc = cfg_expect_seq(c, th, &k);
    for (size_t i = 0; i < k && !rc; i++) {
        size_t mi = cfg_push_idx(c, i);
        rc = parse_thresholds(c, th->items[i], cl);
        cfg_pop(c, mi);
    }
    cfg_pop(c, m);
    return rc;
}

static int parse_outlier(cfg_ctx *c, const yn_node *n, cfg_cluster *cl)
{
    static const char *const h[] = {
        "consecutive_5xx", "consecutive_gateway_failure", "consecutive_local_origin_failure",
        "enforcing_consecutive_5xx", "enforcing_consecutive_gateway_failure",
        "enforcing_consecutive_local_origin_failure", "interval", "base_ejection_time",
        "max_ejection_time", "max_ejection_percent", "split_external_local_origin_errors",
        NULL};
    /* Success-rate and failure-percentage detection are not run, so turning
     * their enforcement off changes nothing. */
    static const char *const ig[] = {"enforcing_success_rate", "enforcing_failure_percentage",
                                     "enforcing_local_origin_success_rate",
                                     "enforcing_failure_percentage_local_origin", NULL};
    static const char *const un[] = {
        "success_rate_minimum_hosts", "success_rate_request_volume", "success_rate_stdev_factor",
        "failure_percentage_threshold", "failure_percentage_minimum_hosts",
        "failure_percentage_request_volume", "max_ejection_time_jitter",
        "successful_active_health_check_uneject_host", "monitors",
        "always_eject_one_host", NULL};
    static const cfg_fields f = {h, ig, un};
    cfg_outlier *o = &cl->lb->outlier;
    int rc;
    o->enabled = true;
    if ((rc = cfg_check_map(c, n, &f)) ||
        (rc = cfg_get_u32(c, n, "consecutive_5xx", false, 0, UINT32_MAX, &o->consecutive_5xx)) ||
        (rc = cfg_get_u32(c, n, "consecutive_gateway_failure", false, 0, UINT32_MAX,
                          &o->consecutive_gateway_failure)) ||
        (rc = cfg_get_u32(c, n, "consecutive_local_origin_failure", false, 0, UINT32_MAX,
                          &o->consecutive_local_origin_failure)) ||
        (rc = cfg_get_u32(c, n, "enforcing_consecutive_5xx", false, 0, 100,
                          &o->enforcing_consecutive_5xx)) ||
        (rc = cfg_get_u32(c, n, "enforcing_consecutive_gateway_failure", false, 0, 100,
                          &o->enforcing_consecutive_gateway_failure)) ||
        (rc = cfg_get_u32(c, n, "enforcing_consecutive_local_origin_failure", false, 0, 100,
                          &o->enforcing_consecutive_local_origin_failure)) ||
        (rc = cfg_get_duration(c, n, "interval", &o->interval_ms)) ||
        (rc = cfg_get_duration(c, n, "base_ejection_time", &o->base_ejection_time_ms)) ||
        (rc = cfg_get_duration(c, n, "max_ejection_time", &o->max_ejection_time_ms)) ||
        (rc = cfg_get_u32(c, n, "max_ejection_percent", false, 0, 100,
                          &o->max_ejection_percent)) ||
        (rc = cfg_get_bool(c, n, "split_external_local_origin_errors",
                           &o->split_external_local_origin_errors)))
        return rc;
    if (o->interval_ms == 0) {
        size_t m = cfg_push(c, "interval");
        rc = cfg_err(c, cfg_get(n, "interval"), "must be greater than 0");
        cfg_pop(c, m);
    }
    return rc;
}

int cfg_parse_cluster_lb(cfg_ctx *c, const yn_node *n, cfg_cluster *cl)
{
    int rc;
    if ((rc = with_map(c, n, "common_lb_config", cl, parse_common)) ||
        (rc = with_map(c, n, "ring_hash_lb_config", cl, parse_ring)) ||
        (rc = with_map(c, n, "maglev_lb_config", cl, parse_maglev)) ||
        (rc = with_map(c, n, "least_request_lb_config", cl, parse_least_request)) ||
        (rc = with_map(c, n, "round_robin_lb_config", cl, parse_round_robin)) ||
        (rc = with_map(c, n, "circuit_breakers", cl, parse_breakers)) ||
        (rc = with_map(c, n, "outlier_detection", cl, parse_outlier)))
        return rc;
    return 0;
}
