/* The data path's stat ids, registered from the config at start-up with
 * Envoy's names, and the few helpers the request path calls.
 *
 * Every worker records into its own stats_shard (admin/stats.h); ids are
 * shared, immutable after start, and looked up by listener / cluster index. */
#ifndef PF_PROXY_STATS_H
#define PF_PROXY_STATS_H

#include <stdbool.h>

#include "admin/stats.h"
#include "config/config.h"

/* <scope>.ssl.* (Envoy's SslSocketFactoryStats), for a TLS listener or
 * cluster.  Registered only when the listener / cluster has TLS: check
 * `registered` before recording. */
#define PF_TLS_N_VERSIONS 4             /* TLSv1, TLSv1.1, TLSv1.2, TLSv1.3 */
#define PF_TLS_N_CURVES 5               /* X25519, P-256, P-384, P-521, X448 */
typedef struct pf_tls_stats {
    bool registered;
    stat_id handshake, connection_error, session_reused, no_certificate;
    stat_id fail_verify_no_cert, fail_verify_error, fail_verify_san, fail_verify_cert_hash;
    stat_id versions[PF_TLS_N_VERSIONS];
    stat_id curves[PF_TLS_N_CURVES];
    stat_id ciphers_base;               /* + pf_tls_cipher_index() (lazy counters) */
} pf_tls_stats;

/* One per filter chain (ps->chains[hcm->index]); listener.* ids are the
 * same for every chain of a listener. */
typedef struct pf_listener_stats {
    /* listener.<address>_<port>.* */
    stat_id l_cx_total, l_cx_active, no_filter_chain_match;
    pf_tls_stats ssl;
    /* http.<stat_prefix>.* */
    stat_id cx_total, cx_http1_total, cx_active, cx_length_ms, cx_protocol_error;
    stat_id rq_total, rq_http1_total, rq_active, rq_time, rq_xx[5];
    stat_id rq_timeout, rx_bytes_total, tx_bytes_total;
    stat_id no_route, upstream_rq_header_size_431;
    /* HTTP/2 downstream (proxy/h2_server.c) */
    stat_id cx_http2_total, rq_http2_total, rq_idle_timeout, rq_too_many_premature_resets;
    /* connection manager timeouts (proxy/hcm_timeout.c, proxy/downstream.c) */
    stat_id rq_header_timeout, rq_max_duration_reached, cx_idle_timeout, cx_max_duration_reached;
    /* http.<stat_prefix>.lua[.<lua stat_prefix>].errors per http filter index
     * (filters/lua); owned by ps->chains, NULL without Lua filters */
    stat_id *filter_errors;
} pf_listener_stats;

typedef struct pf_cluster_stats {
    /* cluster.<name>.* */
    stat_id rq_total, rq_active, rq_time, rq_xx[5], rq_code_base;    /* rq_code_base + (code - 100) */
    stat_id cx_total, cx_active, cx_connect_fail, cx_connect_timeout, cx_connect_ms;
    stat_id cx_http1_total, cx_http2_total;
    stat_id cx_destroy, cx_destroy_remote, cx_destroy_local;
    stat_id rq_timeout, rq_retry, rq_pending_total, rq_rx_reset, rq_tx_reset;
    stat_id rq_retry_success, rq_retry_limit_exceeded, rq_per_try_timeout;
    stat_id cx_rx_bytes_total, cx_tx_bytes_total, cx_protocol_error;
    stat_id membership_healthy, membership_total, membership_change, no_healthy_host;
    stat_id lb_healthy_panic;
    pf_tls_stats ssl;                   /* cluster.<name>.ssl.* */
    /* Circuit breakers (proxy/router.c) */
    stat_id rq_pending_overflow, rq_pending_active, cx_overflow, rq_retry_overflow;
    stat_id retry_or_shadow_abandoned;  /* body over the buffer limit (proxy/router_retry.c) */
    /* circuit_breakers.<default|high>.{cx,rq_pending,rq,rq_retry}_open and, with
     * track_remaining, remaining_{cx,pending,rq,retries}: gauges set from the
     * shared counters by pf_breakers_publish() (proxy/breakers.c) */
    stat_id cb_open[2][4], cb_remaining[2][4];
    bool cb_track[2];
    /* cluster.<name>.health_check.* (proxy/health_check.c); registered when the
     * cluster has health_checks */
    bool has_hc;
    stat_id hc_attempt, hc_success, hc_failure, hc_passive_failure, hc_network_failure,
            hc_verify_cluster, hc_healthy, hc_degraded;
    /* cluster.<name>.outlier_detection.* (proxy/outlier.c); registered with outlier_detection */
    bool has_od;
    stat_id od_ejections_active, od_ejections_total, od_ejections_overflow,
            od_enforced_total, od_enforced_5xx, od_detected_5xx, od_enforced_gw, od_detected_gw,
            od_enforced_local, od_detected_local, od_ejections_consecutive_5xx;
} pf_cluster_stats;

typedef struct pf_server_stats {
    stat_id live, uptime, concurrency, memory_allocated, memory_heap_size,
            total_connections, version;
} pf_server_stats;

/* Envoy's downstream HTTP/2 codec stats, rooted at http2.* (one set for the
 * server, as in Envoy). */
typedef struct pf_http2_stats {
    stat_id header_overflow, headers_cb_no_stream, inbound_empty_frames_flood,
            inbound_priority_frames_flood, inbound_window_update_frames_flood,
            outbound_control_flood, outbound_flood, rx_messaging_error, rx_reset,
            too_many_header_frames, trailers, tx_reset, goaway_sent;
    stat_id streams_active;     /* gauge */
} pf_http2_stats;

/* headers_with_underscores_action outcomes, rooted per codec as Envoy's
 * http1.* / http2.* (counted by the downstream codecs). */
typedef struct pf_codec_hdr_stats {
    stat_id dropped_underscores, rejected_underscores;
} pf_codec_hdr_stats;

typedef struct pf_proxy_stats {
    /* [cfg->n_listeners]: listener.* ids, with the http.* ids of the
     * listener's first filter chain (for code that only knows the listener). */
    pf_listener_stats *listeners;
    pf_listener_stats *chains;      /* [cfg->n_hcms], by cfg_hcm.index */
    pf_cluster_stats *clusters;     /* [cfg->n_clusters] */
    pf_server_stats server;
    pf_http2_stats http2;
    pf_codec_hdr_stats http1_hdrs, http2_hdrs;
    size_t n_chains;
    bool has_lua;
    stat_id lua_memory;             /* gauge lua.memory_allocated_bytes (when has_lua) */
} pf_proxy_stats;

/* Registers every data-path stat for cfg.  Returns NULL on allocation failure. */
pf_proxy_stats *pf_proxy_stats_new(stats_store *st, const cfg_bootstrap *cfg);
void pf_proxy_stats_free(pf_proxy_stats *ps);

#endif
