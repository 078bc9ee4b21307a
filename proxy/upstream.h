/* The router's upstream half: picks a host, borrows a pooled HTTP/1.1
 * connection (or opens one), encodes the request, parses the response with
 * llhttp and hands it back to the connection manager.
 *
 * A pf_uconn serves one stream at a time.  When the response has ended and
 * the request was fully sent on a keep-alive connection, the connection goes
 * back to its pool's idle list; otherwise it is closed. */
#ifndef PF_UPSTREAM_H
#define PF_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/cluster.h"
#include "proxy/stream.h"

typedef struct pf_uconn pf_uconn;

/* Starts forwarding s (route and cluster chosen, request headers final).
 * end: the request has no body.  May answer s locally (503) at once. */
void router_start(pf_stream *s, bool end);
void router_request_data(pf_stream *s, const char *p, size_t n);
void router_request_trailers(pf_stream *s);
void router_request_end(pf_stream *s);
/* The stream is going away: drop its upstream connection (never reused). */
void router_abort(pf_stream *s);
/* Downstream output drained: resume reading the upstream response. */
void router_downstream_drained(pf_stream *s);

/* Pool housekeeping for proxy/cluster.c. */
void pf_uconn_close_idle(pf_pool *p);
/* Frees p now if no connection uses it, else when the last one closes. */
void pf_uconn_orphan_pool(pf_pool *p);

#endif
