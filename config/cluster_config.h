/* A cluster's load balancing, health checking, outlier detection and circuit
 * breaker settings (envoy.config.cluster.v3.Cluster fields, parsed by
 * config/config_cluster.c, config/config_lb.c and config/config_health.c).
 * Owned by cfg_cluster.lb and freed with the cluster; immutable after load. */
#ifndef PF_CLUSTER_CONFIG_H
#define PF_CLUSTER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cfg_locality {
    char *region, *zone, *sub_zone;     /* owned; "" when absent (never NULL) */
    uint32_t weight;                    /* LocalityLbEndpoints.load_balancing_weight (0: unset) */
} cfg_locality;

/* Per lb_endpoint, parallel to cfg_cluster.endpoints. */
typedef struct cfg_lb_endpoint {
    uint32_t weight;                    /* load_balancing_weight, default 1 */
    uint32_t priority;                  /* of its LocalityLbEndpoints */
    uint32_t locality;                  /* index into cfg_cluster_lb.localities */
    uint32_t locality_weight;           /* LocalityLbEndpoints.load_balancing_weight (0: unset) */
    uint16_t hc_port;                   /* health_check_config.port_value; 0: the endpoint's */
} cfg_lb_endpoint;

typedef enum cfg_hc_kind { CFG_HC_HTTP, CFG_HC_TCP, CFG_HC_GRPC } cfg_hc_kind;

typedef struct cfg_hc_header {
    char *name, *value;                 /* owned */
} cfg_hc_header;

typedef struct cfg_health_check {
    cfg_hc_kind kind;
    uint64_t timeout_ms, interval_ms, interval_jitter_ms;
    uint32_t interval_jitter_percent;
    uint64_t no_traffic_interval_ms;    /* default 60000 */
    uint64_t no_traffic_healthy_interval_ms;    /* default no_traffic_interval */
    uint64_t unhealthy_interval_ms;     /* default interval */
    uint64_t unhealthy_edge_interval_ms;        /* default unhealthy_interval */
    uint64_t healthy_edge_interval_ms;  /* default interval */
    uint32_t unhealthy_threshold, healthy_threshold;
    char *path, *host;                  /* http_health_check; owned; host may be NULL */
    char *service_name;                 /* grpc_health_check; owned; NULL: "" (the server) */
    /* grpc_health_check: authority goes in host, initial_metadata in headers. */
    struct { uint32_t start, end; } *statuses;  /* [start, end); default [200, 201) */
    size_t n_statuses;
    cfg_hc_header *headers;             /* request_headers_to_add */
    size_t n_headers;
} cfg_health_check;

typedef struct cfg_outlier {
    bool enabled;                       /* outlier_detection present */
    uint32_t consecutive_5xx;           /* default 5 */
    uint32_t consecutive_gateway_failure;       /* default 5 */
    uint32_t consecutive_local_origin_failure;  /* default 5 */
    uint32_t enforcing_consecutive_5xx;         /* percent, default 100 */
    uint32_t enforcing_consecutive_gateway_failure;     /* default 0 */
    uint32_t enforcing_consecutive_local_origin_failure;/* default 100 */
    uint64_t interval_ms;               /* default 10000 */
    uint64_t base_ejection_time_ms;     /* default 30000 */
    uint64_t max_ejection_time_ms;      /* default 300000 */
    uint32_t max_ejection_percent;      /* default 10 */
    bool split_external_local_origin_errors;
} cfg_outlier;

typedef struct cfg_cb_thresholds {
    uint32_t max_connections, max_pending_requests, max_requests, max_retries;
    bool track_remaining;               /* publish the remaining_* gauges */
} cfg_cb_thresholds;

typedef struct cfg_cluster_lb {
    cfg_lb_endpoint *endpoints;         /* [cfg_cluster.n_endpoints] */
    cfg_locality *localities;           /* one per load_assignment.endpoints[] item */
    size_t n_localities;
    uint32_t overprovisioning_factor;   /* load_assignment.policy, default 140 */
    double panic_threshold;             /* common_lb_config.healthy_panic_threshold, default 50 */
    bool locality_weighted;             /* common_lb_config.locality_weighted_lb_config set */
    bool fail_traffic_on_panic;         /* zone_aware_lb_config.fail_traffic_on_panic */
    uint64_t ring_min, ring_max;        /* ring_hash_lb_config: 1024 / 8388608 */
    uint32_t maglev_table_size;         /* maglev_lb_config.table_size, default 65537 */
    uint32_t choice_count;              /* least_request_lb_config, default 2 */
    cfg_health_check *hcs;              /* health_checks[] */
    size_t n_hcs;
    cfg_outlier outlier;
    cfg_cb_thresholds cb[2];            /* circuit_breakers: [0] DEFAULT, [1] HIGH */
} cfg_cluster_lb;

/* Defaults of everything above, for clusters built without the loader. */
extern const cfg_cluster_lb cfg_cluster_lb_defaults;

void cfg_cluster_lb_free(cfg_cluster_lb *lb);

#endif
