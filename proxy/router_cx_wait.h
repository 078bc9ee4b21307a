/* Requests waiting for a connection (circuit breaker max_connections).
 *
 * When the cluster is at max_connections and the chosen host's pool has no
 * connection free for the request (HTTP/1.1: idle; HTTP/2: below its stream
 * limit) but does have connections, Envoy keeps the request pending on that
 * pool until one is free (a pool with no connection always gets one, over
 * the limit if need be).  Here the waiting stream is attached to
 * router_cx_wait_proto, a pf_upstream_proto whose "exchange" is a place in
 * pool->cx_waiters: every router path that ends an exchange (abort,
 * timeouts, downstream reset) also takes the stream off the list.  The
 * request body that arrives meanwhile is kept (s->retry_body, the
 * downstream paused) and replayed when the stream gets its connection.
 *
 * A connection going idle, an HTTP/2 stream ending or a connection closing
 * wakes the first waiter: it re-runs its attempt from its own timer (never
 * inside the pool's callbacks), leaving the list then. */
#ifndef PF_ROUTER_CX_WAIT_H
#define PF_ROUTER_CX_WAIT_H

#include "proxy/upstream.h"

extern const pf_upstream_proto router_cx_wait_proto;

/* Wakes the first stream waiting on p that was not woken yet, if any. */
void router_cx_wait_wake(pf_pool *p);
/* Wakes every stream waiting on p (the pool is being orphaned). */
void router_cx_wait_wake_all(pf_pool *p);

/* router.c: s was woken; re-attempt from its timer. */
void router__cx_woken(pf_stream *s);

#endif
