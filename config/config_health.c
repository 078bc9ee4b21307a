/* Cluster health_checks[] (envoy.config.core.v3.HealthCheck) -> cfg_cluster.lb->hcs. */
#include "config/cluster_config.h"
#include "config/config_internal.h"

#include <stdlib.h>
#include <string.h>

static const char *const hc_handled[] = {
    "timeout", "interval", "interval_jitter", "interval_jitter_percent", "unhealthy_threshold",
    "healthy_threshold", "http_health_check", "tcp_health_check", "grpc_health_check",
    "no_traffic_interval", "no_traffic_healthy_interval", "unhealthy_interval",
    "unhealthy_edge_interval", "healthy_edge_interval", NULL};
static const char *const hc_ignored[] = {"event_log_path", "always_log_health_check_failures",
                                         "always_log_health_check_success", "reuse_connection",
                                         NULL};
static const char *const hc_unsupported[] = {
    "initial_jitter", "alt_port", "custom_health_check", "event_logger", "event_service", "tls_options", "transport_socket_match_criteria",
    "health_check_config", NULL};
static const char *const http_handled[] = {"path", "host", "expected_statuses",
                                           "request_headers_to_add", NULL};
static const char *const http_unsupported[] = {
    "send", "receive", "response_buffer_size", "request_headers_to_remove",
    "retriable_statuses", "codec_client_type", "service_name_matcher", "method", NULL};
static const char *const grpc_handled[] = {"service_name", "authority", "initial_metadata",
                                           NULL};
static const char *const tcp_unsupported[] = {"send", "receive", "proxy_protocol_config", NULL};
static const char *const range_handled[] = {"start", "end", NULL};
static const char *const hvo_handled[] = {"header", NULL};
static const char *const hvo_ignored[] = {"append", "append_action", "keep_empty_value", NULL};
static const char *const hv_handled[] = {"key", "value", NULL};

static int parse_statuses(cfg_ctx *c, const yn_node *seq, cfg_health_check *h)
{
    static const cfg_fields f = {range_handled, NULL, NULL};
    size_t n;
    int rc = cfg_expect_seq(c, seq, &n);
    if (rc || !n)
        return rc;
    if (!(h->statuses = calloc(n, sizeof *h->statuses)))
        return cfg_err(c, seq, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        size_t m = cfg_push_idx(c, i);
        const yn_node *r = seq->items[i];
        uint32_t lo = 0, hi = 0;
        if (!(rc = cfg_check_map(c, r, &f)) &&
            !(rc = cfg_get_u32(c, r, "start", true, 100, 599, &lo)) &&
            !(rc = cfg_get_u32(c, r, "end", true, 101, 600, &hi)) && hi <= lo)
            rc = cfg_err(c, r, "invalid range: start %u >= end %u", lo, hi);
        h->statuses[i].start = lo;
        h->statuses[i].end = hi;
        h->n_statuses = i + 1;
        cfg_pop(c, m);
    }
    return rc;
}

static int parse_headers(cfg_ctx *c, const yn_node *seq, cfg_health_check *h)
{
    static const cfg_fields fo = {hvo_handled, hvo_ignored, NULL};
    static const cfg_fields fh = {hv_handled, NULL, NULL};
    size_t n;
    int rc = cfg_expect_seq(c, seq, &n);
    if (rc || !n)
        return rc;
    if (!(h->headers = calloc(n, sizeof *h->headers)))
        return cfg_err(c, seq, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        size_t m = cfg_push_idx(c, i);
        const yn_node *o = seq->items[i];
        if (!(rc = cfg_check_map(c, o, &fo))) {
            const yn_node *hv = cfg_get(o, "header");
            size_t m2 = cfg_push(c, "header");
            if (!hv)
                rc = cfg_err(c, o, "missing required field 'header'");
            else if (!(rc = cfg_check_map(c, hv, &fh)) &&
                     !(rc = cfg_get_str(c, hv, "key", true, &h->headers[i].name)) &&
                     !(rc = cfg_get_str(c, hv, "value", false, &h->headers[i].value)) &&
                     !h->headers[i].value && !(h->headers[i].value = strdup("")))
                rc = cfg_err(c, hv, "out of memory");
            h->n_headers = i + 1;
            cfg_pop(c, m2);
        }
        cfg_pop(c, m);
    }
    return rc;
}

static int parse_http(cfg_ctx *c, const yn_node *n, cfg_health_check *h)
{
    static const cfg_fields f = {http_handled, NULL, http_unsupported};
    int rc;
    h->kind = CFG_HC_HTTP;
    if ((rc = cfg_check_map(c, n, &f)) || (rc = cfg_get_str(c, n, "path", true, &h->path)) ||
        (rc = cfg_get_str(c, n, "host", false, &h->host)))
        return rc;
    if (!h->path[0])
        return cfg_err(c, n, "path must not be empty");
    const yn_node *st = cfg_get(n, "expected_statuses");
    if (st) {
        size_t m = cfg_push(c, "expected_statuses");
        rc = parse_statuses(c, st, h);
        cfg_pop(c, m);
    }
    const yn_node *hd = cfg_get(n, "request_headers_to_add");
    if (!rc && hd) {
        size_t m = cfg_push(c, "request_headers_to_add");
        rc = parse_headers(c, hd, h);
        cfg_pop(c, m);
    }
    return rc;
}

static int parse_grpc(cfg_ctx *c, const yn_node *n, cfg_health_check *h)
{
    static const cfg_fields f = {grpc_handled, NULL, NULL};
    int rc;
    h->kind = CFG_HC_GRPC;
    if ((rc = cfg_check_map(c, n, &f)) ||
        (rc = cfg_get_str(c, n, "service_name", false, &h->service_name)) ||
        (rc = cfg_get_str(c, n, "authority", false, &h->host)))
        return rc;
    const yn_node *md = cfg_get(n, "initial_metadata");
    if (md) {
        size_t m = cfg_push(c, "initial_metadata");
        rc = parse_headers(c, md, h);
        cfg_pop(c, m);
    }
    return rc;
}

/* The kind-specific message: exactly one of http, tcp, grpc.  A bare key
 * (null value, as "tcp_health_check: {}" written "tcp_health_check:") counts. */
static int parse_kind(cfg_ctx *c, const yn_node *n, cfg_health_check *h)
{
    static const cfg_fields tf = {NULL, NULL, tcp_unsupported};
    static const char *const kinds[] = {"http_health_check", "tcp_health_check",
                                        "grpc_health_check"};
    int found = -1, rc = 0;
    for (int k = 0; k < 3; k++) {
        if (cfg_key_node(n, kinds[k]) == n)
            continue;
        if (found >= 0) {
            size_t m = cfg_push(c, kinds[k]);
            rc = cfg_err(c, cfg_key_node(n, kinds[k]), "only one of http_health_check, "
                         "tcp_health_check, grpc_health_check may be set");
            cfg_pop(c, m);
            return rc;
        }
        found = k;
    }
    if (found < 0)
        return cfg_err(c, n, "one of http_health_check, tcp_health_check, grpc_health_check is "
                             "required (custom_health_check: not supported yet)");
    const yn_node *v = cfg_get(n, kinds[found]);
    size_t m = cfg_push(c, kinds[found]);
    if (found == 0)
        rc = v ? parse_http(c, v, h) : cfg_err(c, cfg_key_node(n, kinds[0]), "expected a map");
    else if (found == 1) {
        h->kind = CFG_HC_TCP;
        if (v)
            rc = cfg_check_map(c, v, &tf);
    } else {
        h->kind = CFG_HC_GRPC;
        if (v)
            rc = parse_grpc(c, v, h);
    }
    cfg_pop(c, m);
    return rc;
}

static int parse_one(cfg_ctx *c, const yn_node *n, cfg_health_check *h)
{
    static const cfg_fields f = {hc_handled, hc_ignored, hc_unsupported};
    int rc;
    h->no_traffic_interval_ms = 60000;
    if ((rc = cfg_check_map(c, n, &f)))
        return rc;
    if (!cfg_get(n, "timeout"))
        return cfg_err(c, n, "missing required field 'timeout'");
    if (!cfg_get(n, "interval"))
        return cfg_err(c, n, "missing required field 'interval'");
    if ((rc = cfg_get_duration(c, n, "timeout", &h->timeout_ms)) ||
        (rc = cfg_get_duration(c, n, "interval", &h->interval_ms)) ||
        (rc = cfg_get_duration(c, n, "interval_jitter", &h->interval_jitter_ms)) ||
        (rc = cfg_get_u32(c, n, "interval_jitter_percent", false, 0, 100,
                          &h->interval_jitter_percent)) ||
        (rc = cfg_get_duration(c, n, "no_traffic_interval", &h->no_traffic_interval_ms)) ||
        (rc = cfg_get_duration(c, n, "no_traffic_healthy_interval",
                               &h->no_traffic_healthy_interval_ms)) ||
        (rc = cfg_get_duration(c, n, "unhealthy_interval", &h->unhealthy_interval_ms)) ||
        (rc = cfg_get_duration(c, n, "unhealthy_edge_interval",
                               &h->unhealthy_edge_interval_ms)) ||
        (rc = cfg_get_duration(c, n, "healthy_edge_interval", &h->healthy_edge_interval_ms)) ||
        (rc = cfg_get_u32(c, n, "unhealthy_threshold", true, 0, UINT32_MAX,
                          &h->unhealthy_threshold)) ||
        (rc = cfg_get_u32(c, n, "healthy_threshold", true, 0, UINT32_MAX,
                          &h->healthy_threshold)))
        return rc;
    const char *zero = !h->timeout_ms ? "timeout" : !h->interval_ms ? "interval" : NULL;
    if (zero) {
        size_t m = cfg_push(c, zero);
        rc = cfg_err(c, cfg_get(n, zero), "must be greater than 0");
        cfg_pop(c, m);
        return rc;
    }
    if (!h->unhealthy_interval_ms)
        h->unhealthy_interval_ms = h->interval_ms;
    if (!h->no_traffic_interval_ms)
        h->no_traffic_interval_ms = 60000;
    if (!h->unhealthy_threshold)
        h->unhealthy_threshold = 1;
    if (!h->healthy_threshold)
        h->healthy_threshold = 1;
    if (!h->no_traffic_healthy_interval_ms)
        h->no_traffic_healthy_interval_ms = h->no_traffic_interval_ms;
    if (!h->unhealthy_edge_interval_ms)
        h->unhealthy_edge_interval_ms = h->unhealthy_interval_ms;
    if (!h->healthy_edge_interval_ms)
        h->healthy_edge_interval_ms = h->interval_ms;
    rc = parse_kind(c, n, h);
    if (!rc && h->kind == CFG_HC_HTTP && !h->n_statuses) {
        if (!(h->statuses = calloc(1, sizeof *h->statuses)))
            return cfg_err(c, n, "out of memory");
        h->statuses[0].start = 200;
        h->statuses[0].end = 201;
        h->n_statuses = 1;
    }
    return rc;
}

/* Envoy refuses gRPC checks on a cluster that does not speak HTTP/2; ours
 * are plaintext, so a cluster with a transport_socket cannot be checked. */
static int check_grpc_cluster(cfg_ctx *c, const yn_node *cluster, const yn_node *hcn,
                              const cfg_cluster *cl, const cfg_health_check *h)
{
    if (h->kind != CFG_HC_GRPC)
        return 0;
    const char *why = !cl->http2 ? "the cluster must use HTTP/2 (http2_protocol_options) for "
                                   "gRPC health checking"
                      : cfg_get(cluster, "transport_socket")
                          ? "not supported yet: gRPC health checks over TLS (the cluster has "
                            "a transport_socket)"
                          : NULL;
    if (!why)
        return 0;
    size_t m = cfg_push(c, "grpc_health_check");
    int rc = cfg_err(c, cfg_key_node(hcn, "grpc_health_check"), "%s", why);
    cfg_pop(c, m);
    return rc;
}

int cfg_parse_health_checks(cfg_ctx *c, const yn_node *cluster, cfg_cluster *cl)
{
    const yn_node *seq = cfg_get(cluster, "health_checks");
    if (!seq)
        return 0;
    size_t m = cfg_push(c, "health_checks"), n;
    int rc = cfg_expect_seq(c, seq, &n);
    if (!rc && n > 1) {
        size_t mi = cfg_push_idx(c, 1);
        rc = cfg_err(c, seq->items[1], "more than one health check per cluster: not supported yet");
        cfg_pop(c, mi);
    }
    if (!rc && n && !(cl->lb->hcs = calloc(n, sizeof *cl->lb->hcs)))
        rc = cfg_err(c, seq, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        size_t mi = cfg_push_idx(c, i);
        cl->lb->n_hcs = i + 1;
        rc = parse_one(c, seq->items[i], &cl->lb->hcs[i]);
        if (!rc)
            rc = check_grpc_cluster(c, cluster, seq->items[i], cl, &cl->lb->hcs[i]);
        cfg_pop(c, mi);
    }
    cfg_pop(c, m);
    return rc;
}
