/* The data path's stat ids, registered from the config at start-up with
 * Envoy's names, and the few helpers the request path calls.
 *
 * Every worker records into its own stats_shard (admin/stats.h); ids are
 * shared, immutable after start, and looked up by listener / cluster index. */
#ifndef PF_PROXY_STATS_H
#define PF_PROXY_STATS_H

#include "admin/stats.h"
#include "config/config.h"

typedef struct pf_listener_stats {
    /* listener.<address>_<port>.* */
    stat_id l_cx_total, l_cx_active;
    /* http.<stat_prefix>.* */
    stat_id cx_total, cx_http1_total, cx_active, cx_length_ms, cx_protocol_error;
    stat_id rq_total, rq_http1_total, rq_active, rq_time, rq_xx[5];
    stat_id rq_timeout, rx_bytes_total, tx_bytes_total;
    stat_id no_route, upstream_rq_header_size_431;
} pf_listener_stats;

typedef struct pf_cluster_stats {
    /* cluster.<name>.* */
    stat_id rq_total, rq_active, rq_time, rq_xx[5], rq_code_base;    /* rq_code_base + (code - 100) */
    stat_id cx_total, cx_active, cx_connect_fail, cx_connect_timeout, cx_connect_ms;
    stat_id cx_destroy, cx_destroy_remote, cx_destroy_local;
    stat_id rq_timeout, rq_retry, rq_pending_total, rq_rx_reset, rq_tx_reset;
    stat_id cx_rx_bytes_total, cx_tx_bytes_total, cx_protocol_error;
    stat_id membership_healthy, membership_total, membership_change, no_healthy_host;
    stat_id lb_healthy_panic;
} pf_cluster_stats;

typedef struct pf_server_stats {
    stat_id live, uptime, concurrency, memory_allocated, memory_heap_size,
            total_connections, version;
} pf_server_stats;

typedef struct pf_proxy_stats {
    pf_listener_stats *listeners;   /* [cfg->n_listeners] */
    pf_cluster_stats *clusters;     /* [cfg->n_clusters] */
    pf_server_stats server;
} pf_proxy_stats;

/* Registers every data-path stat for cfg.  Returns NULL on allocation failure. */
pf_proxy_stats *pf_proxy_stats_new(stats_store *st, const cfg_bootstrap *cfg);
void pf_proxy_stats_free(pf_proxy_stats *ps);

#endif
