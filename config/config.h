/* Typed, validated, immutable view of an Envoy v3 bootstrap.
 *
 * cfg_load() turns YAML/JSON text into a cfg_bootstrap.  Everything the proxy
 * needs is resolved here (cluster names to indices, durations to ms) so the
 * data path never looks at YAML.  The whole tree is owned by the
 * cfg_bootstrap and released by cfg_free(); nothing in it changes after load,
 * so worker threads may read it without locks.
 */
#ifndef PF_CONFIG_H
#define PF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_ERR_MAX 1024

typedef struct cfg_socket_address {
    char *address;     /* literal IP or DNS name, as written */
    uint16_t port;
} cfg_socket_address;

typedef enum cfg_match_kind {
    CFG_MATCH_PREFIX,
    CFG_MATCH_PATH,
} cfg_match_kind;

typedef enum cfg_action_kind {
    CFG_ACTION_ROUTE,  /* forward to a cluster */
    CFG_ACTION_DIRECT, /* direct_response */
} cfg_action_kind;

typedef struct cfg_weighted_cluster {
    char *name;
    size_t cluster_index;
    uint32_t weight;
} cfg_weighted_cluster;

typedef struct cfg_route {
    char *name;                 /* may be NULL */
    cfg_match_kind match_kind;
    char *match_value;          /* prefix or exact path */
    cfg_action_kind action;
    /* CFG_ACTION_ROUTE */
    /* exactly one of: cluster, weighted (route.weighted_clusters) */
    char *cluster;              /* NULL when weighted_clusters is used */
    size_t cluster_index;       /* index into cfg_bootstrap.clusters */
    cfg_weighted_cluster *weighted;
    size_t n_weighted;
    uint32_t total_weight;      /* sum of weights (or total_weight if given) */
    uint64_t timeout_ms;        /* route.timeout; default 15000; 0 disables */
    char *prefix_rewrite;       /* NULL when absent */
    char *host_rewrite_literal; /* NULL when absent */
    /* CFG_ACTION_DIRECT */
    uint16_t direct_status;
    char *direct_body;          /* NULL when absent */
    size_t direct_body_len;
} cfg_route;

typedef struct cfg_virtual_host {
    char *name;
    char **domains;             /* "*", "*.suffix", "prefix.*" or exact */
    size_t n_domains;
    cfg_route *routes;
    size_t n_routes;
} cfg_virtual_host;

typedef struct cfg_route_config {
    char *name;                 /* may be NULL */
    cfg_virtual_host *vhosts;
    size_t n_vhosts;
} cfg_route_config;

typedef enum cfg_codec_type {
    CFG_CODEC_AUTO,
    CFG_CODEC_HTTP1,
    CFG_CODEC_HTTP2,
} cfg_codec_type;

struct cfg_access_log;                  /* config/access_log_config.h */
struct cfg_runtime;                     /* config/runtime_config.h */

typedef struct cfg_hcm {
    char *stat_prefix;
    cfg_codec_type codec_type;
    uint32_t max_request_headers_kb;   /* default 60 */
    cfg_route_config route_config;
    struct cfg_access_log *access_logs; /* owned; freed by cfg_access_logs_free() */
    size_t n_access_logs;
} cfg_hcm;

typedef struct cfg_listener {
    char *name;
    cfg_socket_address address;
    cfg_hcm hcm;                        /* the one filter chain's HCM */
} cfg_listener;

typedef enum cfg_cluster_type {
    CFG_CLUSTER_STATIC,
    CFG_CLUSTER_STRICT_DNS,
    CFG_CLUSTER_LOGICAL_DNS,
} cfg_cluster_type;

typedef enum cfg_lb_policy {
    CFG_LB_ROUND_ROBIN,
} cfg_lb_policy;

typedef struct cfg_cluster {
    char *name;
    cfg_cluster_type type;
    cfg_lb_policy lb_policy;
    uint64_t connect_timeout_ms;        /* default 5000 */
    uint64_t dns_refresh_rate_ms;       /* default 5000 */
    cfg_socket_address *endpoints;      /* lb_endpoints, flattened in order */
    size_t n_endpoints;
    /* HTTP/2 to the hosts: http2_protocol_options, or typed_extension_protocol_options
     * envoy.extensions.upstreams.http.v3.HttpProtocolOptions explicit_http_config */
    bool http2;
    uint32_t h2_max_concurrent_streams;     /* default 2147483647 (Envoy) */
    uint32_t h2_initial_stream_window;      /* default 268435456 (Envoy) */
    uint32_t h2_initial_connection_window;  /* default 268435456 (Envoy) */
    /* HttpProtocolOptions.upstream_http_protocol_options */
    bool auto_sni, auto_san_validation;
} cfg_cluster;

typedef struct cfg_stats_config {
    uint64_t flush_interval_ms;         /* stats_flush_interval; default 5000 */
    double *histogram_buckets;          /* default bucket bounds (ms), ascending; owned */
    size_t n_histogram_buckets;
    /* stats_config.histogram_bucket_settings: per-name-regex overrides */
    struct cfg_hist_bucket_rule {
        char *regex;                    /* safe_regex.regex applied to the full stat name */
        double *buckets;
        size_t n_buckets;
    } *bucket_rules;
    size_t n_bucket_rules;
} cfg_stats_config;

typedef struct cfg_bootstrap {
    bool has_admin;
    cfg_socket_address admin;
    cfg_stats_config stats;
    struct cfg_runtime *runtime;        /* layered_runtime; owned; NULL when absent */
    cfg_listener *listeners;
    size_t n_listeners;
    cfg_cluster *clusters;
    size_t n_clusters;
} cfg_bootstrap;

/* Load a bootstrap.  `path` may be NULL (then `overlay_yaml` alone is the
 * config); `overlay_yaml` may be NULL.  When both are given the overlay is
 * merged over the file as Envoy's --config-yaml does (maps merge, sequences
 * append, scalars replace).  When neither is given the embedded demo config
 * is loaded.
 * Returns 0 and sets *out (caller frees with cfg_free), or a negative errno
 * value with a one-line message in err: "file:line:col: field.path: what". */
int cfg_load(const char *path, const char *overlay_yaml, cfg_bootstrap **out,
             char *err, size_t errlen);

/* Same, from a text buffer; `name` is used as the file name in messages. */
int cfg_load_string(const char *name, const char *text, size_t len,
                    cfg_bootstrap **out, char *err, size_t errlen);

void cfg_free(cfg_bootstrap *b);

/* The embedded demo bootstrap used when no config is given. */
extern const char cfg_default_yaml[];

/* Parse an Envoy duration string ("0.25s", "5s", "1.5s") into ms.
 * Returns 0 on success, -EINVAL otherwise. */
int cfg_parse_duration_ms(const char *s, uint64_t *out_ms);

#endif
