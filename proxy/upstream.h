/* The router's upstream half.
 *
 * router.c is protocol-neutral: it picks the cluster's host, arms the
 * connect and route timeouts, keeps the cluster and host stats, and turns
 * upstream failures into Envoy's local replies (503 UF/UC/UH, 504 UT) or a
 * downstream reset.  The wire protocol to the host is a pf_upstream_proto:
 * HTTP/1.1 (upstream_h1.c, one stream per pooled connection) or HTTP/2
 * (upstream_h2.c, multiplexed).  Protocols report back through router_on_*. */
#ifndef PF_UPSTREAM_H
#define PF_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/cluster.h"
#include "proxy/stream.h"

typedef struct pf_uconn pf_uconn;

typedef struct pf_upstream_proto {
    const char *name;
    /* Attaches s to a connection of pool p (reused or new) and sends the
     * request head.  Sets *connecting when a new connection is being made.
     * Returns 0, or a negative error when no connection could be started. */
    int (*start)(pf_stream *s, pf_pool *p, bool end, bool *connecting);
    void (*data)(pf_stream *s, const char *p, size_t n);
    void (*trailers)(pf_stream *s);
    void (*end)(pf_stream *s);
    /* Detaches s and resets its upstream exchange (never reused). */
    void (*abort)(pf_stream *s);
    /* The downstream drained: read the response again. */
    void (*resume)(pf_stream *s);
    /* Pool housekeeping: close idle connections; free p when unused. */
    void (*close_idle)(pf_pool *p);
} pf_upstream_proto;

extern const pf_upstream_proto pf_upstream_h1;
extern const pf_upstream_proto pf_upstream_h2;
/* auto_config / use_downstream_protocol_config: picks h1 or h2 per request
 * and hands the stream to it (proxy/upstream_auto.c). */
extern const pf_upstream_proto pf_upstream_auto;

/* For the circuit breakers: can a stream go on one of p's HTTP/2
 * connections (established or connecting) without opening another? */
bool pf_upstream_h2_has_room(const pf_pool *p);

/* ---- called by the connection manager ---- */

/* Starts forwarding s (route and cluster chosen, request headers final).
 * end: the request has no body.  May answer s locally (503) at once. */
void router_start(pf_stream *s, bool end);
void router_request_data(pf_stream *s, const char *p, size_t n);
void router_request_trailers(pf_stream *s);
void router_request_end(pf_stream *s);
/* The stream is going away: drop its upstream exchange. */
void router_abort(pf_stream *s);
/* Downstream output drained: resume reading the upstream response. */
void router_downstream_drained(pf_stream *s);

/* ---- called by upstream protocols ---- */

/* The connection serving s is established. */
void router_on_connected(pf_stream *s);
/* s->status and s->resp_hdrs hold a final response head.  end: the response
 * has no body and no trailers (e.g. a gRPC trailers-only answer, which must
 * stay one HEADERS frame); the protocol detached s before calling. */
void router_on_response_headers(pf_stream *s, bool end);
/* Returns false when the downstream is full: the protocol stops reading. */
bool router_on_response_data(pf_stream *s, const char *p, size_t n);
/* The response ended (with s->resp_trailers if any).  Call after detaching. */
void router_on_response_end(pf_stream *s);
/* The protocol detached s from its connection (always before the two calls
 * above that end the exchange). */
void router_detached(pf_stream *s);
/* The exchange failed after the protocol detached s. */
void router_on_upstream_error(pf_stream *s, uint32_t flag, const char *reason);
/* The upstream side is above its high watermark / drained again. */
void router_upstream_blocked(pf_stream *s, bool blocked);

/* Pool housekeeping for proxy/cluster.c: frees p now if no connection uses it, else when the last one closes. */
void pf_uconn_orphan_pool(pf_pool *p);

#endif
