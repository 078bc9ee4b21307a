/* Internal HTTP requests from filters (Lua httpCall): a pf_stream without a
 * downstream, driven through the router and the upstream pools like any
 * other, whose "codec" captures the response.
 *
 * Life: pf_async_call_new() -> fill the stream's method/path/authority/
 * req_hdrs (in its arena) -> pf_async_call_send().  The callback runs from
 * the worker's deferred queue (never inside router callbacks), once, then
 * the call is freed.  pf_async_call_cancel() drops a call: no callback. */
#ifndef PF_ASYNC_CLIENT_H
#define PF_ASYNC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/stream.h"

struct pf_worker;
typedef struct pf_async_call pf_async_call;

typedef struct pf_async_response {
    int status;                 /* 0: the call failed (reset, timeout) */
    const pf_hdr *hdrs;         /* valid during the callback */
    size_t n_hdrs;
    const char *body;
    size_t body_len;
} pf_async_response;

typedef void (*pf_async_done)(void *arg, const pf_async_response *r);

/* A call to cluster index `cluster`; the listener gives the stream its
 * connection manager (for config only: no stats are recorded).  NULL on
 * allocation failure. */
pf_async_call *pf_async_call_new(struct pf_worker *w, const cfg_listener *l, size_t cluster);
pf_stream *pf_async_call_stream(pf_async_call *c);
/* Sends the request with body (copied); timeout_ms 0: none.  cb NULL: fire
 * and forget. */
void pf_async_call_send(pf_async_call *c, const char *body, size_t len, uint64_t timeout_ms,
                        pf_async_done cb, void *arg);
/* The same with the body in q (copied; framing headers are the caller's),
 * ending with the stream's req_trailers when it has any. */
void pf_async_call_send_outq(pf_async_call *c, const pf_outq *body, uint64_t timeout_ms,
                             pf_async_done cb, void *arg);
void pf_async_call_cancel(pf_async_call *c);
/* Worker shutdown: cancel every call still running. */
void pf_async_calls_abort(struct pf_worker *w);

#endif
