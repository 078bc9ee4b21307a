/* One HTTP request/response exchange, independent of the codec that
 * carried it (HTTP/1.1 now, HTTP/2 next).
 *
 * The downstream codec creates streams with pf_stream_new() and feeds the
 * request in through the hcm_on_* functions (proxy/hcm.h); the connection
 * manager answers through the codec's pf_server_codec_ops.  Streams are
 * recycled through a per-worker free list together with their inline arena
 * and timer, so a request costs no malloc in the common case. */
#ifndef PF_STREAM_H
#define PF_STREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "config/config.h"
#include "proxy/arena.h"
#include "proxy/http.h"
#include "proxy/outq.h"
#include "proxy/queue.h"

struct pf_worker;
struct pf_upstream_proto;
struct pf_cluster_stats;
struct pf_host_counters;
typedef struct pf_stream pf_stream;

/* What a downstream codec offers the connection manager. */
typedef struct pf_server_codec_ops {
    /* s->status and s->resp_hdrs are set; end: no body follows. */
    void (*encode_headers)(pf_stream *s, bool end);
    /* An interim (1xx) response with the given headers. */
    void (*encode_1xx)(pf_stream *s, int status, const pf_hdrs *h);
    void (*encode_data)(pf_stream *s, const char *p, size_t n, bool end);
    /* Ends the response with s->resp_trailers. */
    void (*encode_trailers)(pf_stream *s);
    /* Aborts the stream (HTTP/1: resets the connection).  The codec calls
     * hcm_on_stream_reset() in turn; s is gone after this returns. */
    void (*reset)(pf_stream *s);
    /* Stop / resume delivering request body (backpressure). */
    void (*pause_request)(pf_stream *s, bool pause);
    /* True while the downstream output is above its high watermark. */
    bool (*write_blocked)(pf_stream *s);
    /* Both directions ended: the codec detaches s (and may start the next
     * pipelined request).  The connection manager frees s afterwards. */
    void (*stream_done)(pf_stream *s);
} pf_server_codec_ops;

/* Envoy response flags, as a bit set; printed with Envoy's short names. */
enum {
    PF_RF_NR = 1 << 0,  /* no route */
    PF_RF_UF = 1 << 1,  /* upstream connection failure */
    PF_RF_UH = 1 << 2,  /* no healthy upstream */
    PF_RF_UT = 1 << 3,  /* upstream request timeout */
    PF_RF_UC = 1 << 4,  /* upstream connection termination */
    PF_RF_UR = 1 << 5,  /* upstream remote reset */
    PF_RF_DC = 1 << 6,  /* downstream connection termination */
    PF_RF_DPE = 1 << 7, /* downstream protocol error */
    PF_RF_UPE = 1 << 8, /* upstream protocol error */
    PF_RF_NC = 1 << 9,  /* no cluster found (cluster_header named none) */
    PF_RF_URX = 1 << 10, /* upstream retry limit exceeded */
    PF_RF_UO = 1 << 11, /* upstream overflow (circuit breaker) */
    PF_RF_SI = 1 << 12, /* stream idle timeout (proxy/hcm_timeout.c) */
};

struct pf_stream {
    struct pf_worker *w;
    const pf_server_codec_ops *codec;
    void *codec_conn;               /* the codec's connection; not owned */
    const cfg_listener *listener;
    const cfg_hcm *hcm;             /* the connection manager config of the chosen filter chain */
    size_t listener_index;          /* into cfg->listeners and the listener stat ids */
    pf_stream *free_next;
    uv_timer_t timer;               /* route timeout; initialized once per object */

    /* request */
    pf_str method, path, authority, scheme;
    pf_hdrs req_hdrs, req_trailers;
    bool req_headers_done, req_end, req_abandoned, is_head;
    bool hcm_headers_done;          /* hcm__request_headers ran (proxy/hcm_request_headers.c) */

    /* response */
    int status;
    pf_hdrs resp_hdrs, resp_trailers;
    bool resp_headers_sent, resp_end;

    /* routing and upstream */
    const cfg_route *route;
    size_t cluster;
    /* set by proxy/route_action.c; all in the arena or the config */
    const cfg_virtual_host *vhost;          /* the matched virtual host */
    const cfg_weighted_cluster *wcluster;   /* the weighted_clusters entry picked, or NULL */
    uint64_t route_hash;                    /* hash_policy result, valid when has_route_hash */
    bool has_route_hash;
    pf_str set_cookie;                      /* hash_policy cookie for the response, or {0} */
    pf_str redirect_location;               /* redirect route: the Location value */
    void *up;                       /* the upstream protocol's per-stream state, or NULL */
    struct pf_filter_chain *fc;     /* HTTP filters (filters/filter.h), in the arena; NULL: none */
    bool internal;                  /* an async client request (proxy/async_client.c): no
                                       downstream, no stats, no access log */
    const struct pf_upstream_proto *uproto;
    const struct pf_cluster_stats *ucs;     /* the routed cluster's stat ids */
    struct pf_host_counters *uhc;           /* the chosen host's counters (this worker) */
    bool req_paused_by_upstream;    /* we paused the request body (upstream full) */
    uint32_t response_flags;
    uint64_t start_ms, upstream_start_ms;
    /* connection manager timeouts (proxy/hcm_timeout.c) */
    struct pf_dconn *dconn;         /* the downstream connection; NULL for internal streams */
    uint64_t last_active_ms;        /* loop time of the last header/data/trailers either way */
    uint64_t idle_timeout_ms;       /* stream_idle_timeout, or the route's idle_timeout */
    uint64_t start_ns, upstream_start_ns;   /* uv_hrtime(), for latency histograms */
    uint64_t connect_deadline_ms, route_deadline_ms;   /* 0: not armed */
    uint64_t try_deadline_ms, retry_at_ms;  /* per_try_timeout; a scheduled retry */

    /* retries (proxy/router.c, proxy/router_retry.c) */
    pf_outq retry_body;             /* request body kept for a replay or the mirrors
                                       (chunks: worker pool) */
    bool keep_body;                 /* a retry policy, a mirror or a wait wants retry_body */
    bool retry_held;                /* holds one of the cluster's max_retries */
    bool pending;                   /* counted as a pending request (circuit breakers) */
    pf_queue cx_wait;               /* in pool->cx_waiters (proxy/router_cx_wait.c) */
    bool cx_woken;                  /* taken off cx_waiters for a free connection */
    uint8_t mirror_mask;            /* route mirror policies still to send (proxy/mirror.c) */
    bool retry_body_overflow;       /* too large to keep: no retries */
    bool retried_condition;         /* the last attempt failed retriably */
    uint32_t retries_done;
    uint32_t tried_prio;            /* a bit per priority tried (previous_priorities) */
    struct sockaddr_storage tried[4];   /* hosts already tried (previous_hosts) */
    uint8_t n_tried;

    /* for stats and access logs */
    uint64_t start_wall_us;         /* CLOCK_REALTIME at stream creation */
    uint64_t req_end_ms;            /* loop time the request was fully received; 0 if not */
    uint64_t resp_first_byte_ms;    /* loop time of the first upstream response byte; 0 if none */
    uint64_t bytes_received, bytes_sent;    /* body bytes, downstream side */
    pf_str protocol;                /* "HTTP/1.1", "HTTP/1.0", "HTTP/2" */
    const struct sockaddr_storage *downstream_remote;   /* the connection's peer; not owned */
    const struct sockaddr_storage *downstream_local;
    struct sockaddr_storage upstream_host;  /* valid when has_upstream_host */
    bool has_upstream_host;
    bool upstream_paused;           /* we stopped the upstream reading (downstream full) */

    pf_arena arena;                 /* last: large inline block */
};

pf_stream *pf_stream_new(struct pf_worker *w, const pf_server_codec_ops *codec,
                         void *codec_conn, const cfg_listener *listener);
/* Returns s to the worker's free list. */
void pf_stream_free(pf_stream *s);
/* Frees the cached stream objects (worker shutdown; timers must be closed). */
void pf_stream_cache_destroy(struct pf_worker *w);
/* Response flags as Envoy prints them ("UF,URX"), "-" when none. */
void pf_stream_flags_str(uint32_t flags, char *buf, size_t len);

#endif
