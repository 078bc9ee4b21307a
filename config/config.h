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

#include "config/hcm_options.h"
#include "config/http2_config.h"
#include "config/route_config.h"

#define CFG_ERR_MAX 1024

typedef struct cfg_socket_address {
    char *address;     /* literal IP or DNS name, as written */
    uint16_t port;
} cfg_socket_address;

/* Route types: config/route_config.h */

typedef enum cfg_codec_type {
    CFG_CODEC_AUTO,
    CFG_CODEC_HTTP1,
    CFG_CODEC_HTTP2,
} cfg_codec_type;

struct cfg_access_log;                  /* config/access_log_config.h */
struct cfg_runtime;                     /* config/runtime_config.h */

typedef struct cfg_hcm {
    size_t index;                       /* dense over every filter chain of every listener
                                           (cfg_bootstrap.n_hcms): stat ids, access logs */
    char *stat_prefix;
    cfg_codec_type codec_type;
    uint32_t max_request_headers_kb;   /* default 60 */
    cfg_route_config route_config;
    struct cfg_access_log *access_logs; /* owned; freed by cfg_access_logs_free() */
    size_t n_access_logs;
    cfg_http2 http2;                    /* HTTP/2 options (config_http2.c) */
    cfg_hcm_options opts;               /* timeouts, header limits, Server, XFF
                                           (config/hcm_options.h); server_name owned */
    /* http_filters in order, the router last (config/filter_config.h); owned,
     * freed by cfg_http_filters_free().  n_filters counts the router too:
     * n_filters == 1 means no filter before the router (the fast path). */
    struct cfg_http_filter *filters;
    size_t n_filters;
    uint32_t buffer_limit;              /* per-stream body buffer limit for filters (1 MiB) */
} cfg_hcm;

struct cfg_tls_server;                  /* config/tls_config.h */
struct cfg_tls_client;

typedef struct cfg_filter_chain {
    char *name;                         /* may be NULL */
    struct cfg_filter_chain_match *match;   /* owned; never NULL (empty: match all) */
    struct cfg_tls_server *tls;         /* transport_socket; owned; NULL: plaintext */
    cfg_hcm hcm;
} cfg_filter_chain;

typedef struct cfg_listener {
    char *name;
    cfg_socket_address address;
    /* filter_chains in order, then default_filter_chain (when has_default) last. */
    cfg_filter_chain *chains;
    size_t n_chains;
    bool has_default;
    bool tls_inspector;                 /* listener_filters has envoy.filters.listener.tls_inspector */
} cfg_listener;

typedef enum cfg_cluster_type {
    CFG_CLUSTER_STATIC,
    CFG_CLUSTER_STRICT_DNS,
    CFG_CLUSTER_LOGICAL_DNS,
} cfg_cluster_type;

/* Order matches lb_sup in config/config_cluster.c. */
typedef enum cfg_lb_policy {
    CFG_LB_ROUND_ROBIN,
    CFG_LB_LEAST_REQUEST,
    CFG_LB_RING_HASH,
    CFG_LB_RANDOM,
    CFG_LB_MAGLEV,
} cfg_lb_policy;

struct cfg_cluster_lb;                  /* config/cluster_config.h */

typedef struct cfg_cluster {
    char *name;
    cfg_cluster_type type;
    cfg_lb_policy lb_policy;
    uint64_t connect_timeout_ms;        /* default 5000 */
    uint64_t dns_refresh_rate_ms;       /* default 5000 */
    cfg_socket_address *endpoints;      /* lb_endpoints, flattened in order */
    size_t n_endpoints;
    struct cfg_tls_client *tls;         /* transport_socket (UpstreamTlsContext); owned; NULL: plaintext */
    /* HTTP/2 to the hosts: http2_protocol_options, or typed_extension_protocol_options
     * envoy.extensions.upstreams.http.v3.HttpProtocolOptions explicit_http_config.
     * http_auto: auto_config, HTTP/2 or HTTP/1.1 as the host's ALPN picks (http2
     * holds the HTTP/2 options then).  http_downstream: use_downstream_protocol_config,
     * HTTP/2 for HTTP/2 downstreams when http2 is set. */
    bool http2, http_auto, http_downstream;
    uint32_t h2_max_concurrent_streams;     /* default 2147483647 (Envoy) */
    uint32_t h2_initial_stream_window;      /* default 268435456 (Envoy) */
    uint32_t h2_initial_connection_window;  /* default 268435456 (Envoy) */
    /* HttpProtocolOptions.upstream_http_protocol_options */
    bool auto_sni, auto_san_validation;
    /* Endpoint weights / priorities / localities, health_checks, outlier_detection,
     * circuit_breakers, LB options (config/cluster_config.h); owned; set by the
     * loader (NULL in hand-built configs: defaults apply). */
    struct cfg_cluster_lb *lb;
    /* From dynamic_resources.cds_config (config/dynamic_config.h).  The main
     * thread may then replace endpoints, n_endpoints, dns_refresh_rate_ms and
     * lb->endpoints / localities / overprovisioning_factor while running
     * (proxy/xds_fs.c): workers must not read those fields. */
    bool from_cds;
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
    struct cfg_access_log *admin_access_logs;   /* admin.access_log(_path); owned */
    size_t n_admin_access_logs;
    struct cfg_runtime *runtime;        /* layered_runtime; owned; NULL when absent */
    cfg_listener *listeners;            /* static_resources.listeners, then the LDS file's */
    size_t n_listeners;
    size_t n_hcms;                      /* filter chains over all listeners (cfg_hcm.index) */
    cfg_cluster *clusters;              /* static_resources.clusters, then the CDS file's */
    size_t n_clusters;
    struct cfg_dynamic *dynamic;        /* node, dynamic_resources (config/dynamic_config.h);
                                           owned; NULL when neither is set */
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

/* The index of the cluster named name[0..n) in b->clusters, or -1 (names
 * from request headers and Lua are not NUL-terminated). */
ptrdiff_t cfg_cluster_index(const cfg_bootstrap *b, const char *name, size_t n);

/* The embedded demo bootstrap used when no config is given. */
extern const char cfg_default_yaml[];

/* Parse an Envoy duration string ("0.25s", "5s", "1.5s") into ms.
 * Returns 0 on success, -EINVAL otherwise. */
int cfg_parse_duration_ms(const char *s, uint64_t *out_ms);

#endif
