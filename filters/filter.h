/* The HTTP filter interface and the per-stream filter chain.
 *
 * A connection manager with http_filters besides the router gives each
 * stream a pf_filter_chain (allocated in the stream's arena, so a stream of
 * a chain without filters costs nothing).  Request events run through the
 * filters in config order (decode), response events in reverse order
 * (encode); after the last filter comes the terminal: the router for
 * requests (proxy/hcm.c), the downstream codec for responses.
 *
 * A filter callback returns CONTINUE (pass the event on) or STOP.  STOP on
 * headers holds the headers (and everything after them) at that filter;
 * STOP on data buffers the chunk in the direction's buffer (a filter that
 * holds the headers sees every later chunk already appended to that buffer:
 * it can read the whole body so far with pf_filter_buffer()).  A stopped
 * filter restarts iteration with pf_filter_continue(), from the filter after
 * it: headers, then the buffered body, then trailers / end of stream.
 * Buffering beyond the connection manager's limit answers 413 (requests) or
 * 500 (responses), as Envoy does.
 *
 * Re-entrancy: a filter may end the stream (pf_filter_local_reply, or the
 * router answering) during any call; the chain notices, stops iterating and
 * frees the stream once the outermost chain call returns.  Functions that
 * may end the stream return false when it is gone: the caller must not touch
 * the stream or its own per-stream state afterwards. */
#ifndef PF_FILTER_H
#define PF_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "config/filter_config.h"
#include "proxy/stream.h"

typedef enum pf_filter_status {
    PF_FILTER_CONTINUE,
    PF_FILTER_STOP,
} pf_filter_status;

typedef enum pf_filter_dir {
    PF_DECODE = 0,              /* request: downstream -> router */
    PF_ENCODE = 1,              /* response: router -> downstream */
} pf_filter_dir;

typedef struct pf_filter_chain pf_filter_chain;

/* A contiguous body buffer (malloc'd, owned by the chain). */
typedef struct pf_fbuf {
    char *p;
    size_t n, cap;
} pf_fbuf;

/* What a filter implements.  Any callback may be NULL (= CONTINUE). */
typedef struct pf_http_filter_ops {
    const char *name;
    /* Per-stream state for filter `index` of the chain, or NULL when the
     * filter has nothing to do for this stream (disabled on the route, no
     * script).  State lives in the stream's arena or is freed by destroy. */
    void *(*create)(pf_filter_chain *fc, size_t index, const cfg_http_filter *cfg);
    pf_filter_status (*decode_headers)(void *f, bool end);
    /* p/n: this chunk (n may be 0 with end); end: no trailers follow. */
    pf_filter_status (*decode_data)(void *f, const char *p, size_t n, bool end);
    pf_filter_status (*decode_trailers)(void *f);
    pf_filter_status (*encode_headers)(void *f, bool end);
    pf_filter_status (*encode_data)(void *f, const char *p, size_t n, bool end);
    pf_filter_status (*encode_trailers)(void *f);
    /* The stream is going away (ended or reset): release everything. */
    void (*destroy)(void *f);
} pf_http_filter_ops;

extern const pf_http_filter_ops pf_lua_filter_ops;      /* filters/lua/lua_filter.c */

/* ---- used by proxy/hcm.c ---- */

/* Builds s->fc for s's connection manager (route already selected, with
 * route_outcome: kept until clearRouteCache()).  Returns NULL when no filter
 * wants the stream (the connection manager then runs without a chain). */
pf_filter_chain *pf_filter_chain_new(pf_stream *s, int route_outcome);
/* Stream events into the chain.  Return false when the stream is gone. */
bool pf_filter_decode_headers(pf_filter_chain *fc, bool end);
bool pf_filter_decode_data(pf_filter_chain *fc, const char *p, size_t n, bool end);
bool pf_filter_decode_trailers(pf_filter_chain *fc);
bool pf_filter_encode_headers(pf_filter_chain *fc, bool end);
bool pf_filter_encode_data(pf_filter_chain *fc, const char *p, size_t n, bool end);
bool pf_filter_encode_trailers(pf_filter_chain *fc);
/* Local replies not sent by a filter (router errors, direct responses)
 * enter the encode path at its start. */
/* True once response headers entered the encode path. */
bool pf_filter_encoding(const pf_filter_chain *fc);
/* The connection manager wants to free s: returns true when it may do so
 * now (then the filters are destroyed), false when a chain call is on the
 * stack (the chain frees s when it unwinds). */
bool pf_filter_chain_release(pf_filter_chain *fc);

/* ---- used by filters ---- */

pf_stream *pf_filter_stream(const pf_filter_chain *fc);
/* The direction's buffered body (may be empty, never NULL). */
pf_fbuf *pf_filter_buffer(pf_filter_chain *fc, pf_filter_dir d);
/* True while the direction's headers are held at a filter (may be edited). */
bool pf_filter_headers_held(const pf_filter_chain *fc, pf_filter_dir d);
/* Resumes a direction stopped at filter `index`.  Returns false when the
 * stream is gone. */
bool pf_filter_continue(pf_filter_chain *fc, pf_filter_dir d, size_t index);
/* Answers the request from filter `index` with s->status/s->resp_hdrs as
 * set by the caller (content-length is added) and body; stops the request.
 * Returns false when the stream is gone. */
bool pf_filter_local_reply(pf_filter_chain *fc, size_t index, const char *body, size_t blen);
/* A filter failed (a script error) while handling direction d: answers 500
 * (gRPC: trailers-only, grpc-status from the 500, grpc-message msg), or
 * resets the stream when the response is already on the wire.  Returns
 * false when the stream is gone. */
bool pf_filter_local_error(pf_filter_chain *fc, size_t index, pf_filter_dir d, const char *msg);
/* Re-runs route selection before the request reaches the router. */
void pf_filter_clear_route_cache(pf_filter_chain *fc);
/* The route outcome (route_outcome of proxy/route_action.h); recomputed when
 * the cache was cleared. */
int pf_filter_route_outcome(pf_filter_chain *fc);

/* Registers http.<prefix>.lua[.<lua prefix>].errors for each Lua filter of
 * h; returns a malloc'd array by filter index, or NULL without Lua filters. */
struct stats_store;
uint32_t *pf_filter_stats_register(struct stats_store *st, const cfg_hcm *h);

/* The chain's worker-wide pieces (filters/filter_chain.c): Lua states. */
struct pf_worker;
int pf_filters_worker_init(struct pf_worker *w);
void pf_filters_worker_destroy(struct pf_worker *w);

#endif
