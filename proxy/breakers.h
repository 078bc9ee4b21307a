/* A cluster's circuit breakers (Envoy's ResourceManager): max_requests,
 * max_pending_requests, max_retries and max_connections.  The counters are
 * the server's pf_breakers (proxy/cluster.h): global across workers,
 * relaxed atomics, DEFAULT priority (routes have no priority yet). */
#ifndef PF_BREAKERS_H
#define PF_BREAKERS_H

#include <stdbool.h>

#include "config/cluster_config.h"
#include "proxy/cluster.h"
#include "proxy/router_cx_wait.h"
#include "proxy/upstream.h"

/* The cluster's DEFAULT thresholds. */
const cfg_cb_thresholds *pf_breakers_thresholds(const pf_cluster_rt *c);

/* Is one of p's connections free for another request (HTTP/1.1: idle;
 * HTTP/2: below its stream limit)?  If not the request will be pending. */
static inline bool pf_breakers_pool_has_room(const pf_cluster_rt *c, const pf_pool *p)
{
    if (c->proto == &pf_upstream_h1)
        return p->n_idle > 0;
    if (c->proto == &pf_upstream_h2)
        return pf_upstream_h2_has_room(p);
    /* auto_config / use_downstream_protocol_config: either kind */
    return p->n_idle > 0 || pf_upstream_h2_has_room(p);
}

/* True when a request would overflow max_requests, or, when it would be
 * pending (!room), max_pending_requests: 503 UO. */
bool pf_breakers_overflow(pf_cluster_rt *c, bool room);
/* Counts a request in (delta 1) or out (-1): active, or pending a connection. */
void pf_breakers_add(pf_cluster_rt *c, bool pending, int64_t delta);

/* max_retries: takes one concurrent retry; false when at the limit. */
bool pf_breakers_retry_take(pf_cluster_rt *c);
void pf_breakers_retry_put(pf_cluster_rt *c);

/* max_connections: true when the cluster already has that many. */
bool pf_breakers_cx_full(const pf_cluster_rt *c);

/* Hooks for the upstream pools (proxy/upstream_h1.c, upstream_h2.c): a
 * connection of p was created / closed (after p->n_active changed), or one
 * can take a request again (HTTP/1.1: back on the idle list; HTTP/2: a
 * stream ended).  Closing and _idle wake a stream waiting on p
 * (proxy/router_cx_wait.c). */
void pf_breakers_cx_opened(pf_pool *p);
void pf_breakers_cx_closed(pf_pool *p);
static inline void pf_breakers_cx_idle(pf_pool *p)
{
    if (!pf_queue_empty(&p->cx_waiters))    /* every response: keep it cheap */
        router_cx_wait_wake(p);
}

struct pf_server;
/* Main thread: sets the circuit_breakers.* gauges from the shared counters
 * (before admin /stats output and at each stats flush). */
void pf_breakers_publish(struct pf_server *srv);

#endif
