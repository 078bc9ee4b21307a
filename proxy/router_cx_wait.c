/* Streams pending on a pool at max_connections (see proxy/router_cx_wait.h). */
#include "proxy/router_cx_wait.h"

static int w_start(pf_stream *s, pf_pool *p, bool end, bool *connecting)
{
    (void)end;
    pf_queue_insert_tail(&p->cx_waiters, &s->cx_wait);
    s->up = p;                      /* any non-NULL value: "attached" for the router */
    *connecting = true;             /* counted as a pending request */
    return 0;
}

/* The router keeps the body itself (s->keep_body); nothing is sent yet. */
static void w_data(pf_stream *s, const char *p, size_t n)
{
    (void)s, (void)p, (void)n;
}

static void w_nothing(pf_stream *s)
{
    (void)s;
}

/* Leaving the line.  A stream woken for a free connection that goes away
 * before using it hands its turn to the next waiter, or that connection
 * would sit idle while others wait. */
static void w_abort(pf_stream *s)
{
    pf_pool *p = s->up;
    bool woken = s->cx_woken;
    s->cx_woken = false;
    pf_queue_remove(&s->cx_wait);   /* a no-op once woken (unlinked to itself) */
    router_detached(s);
    if (woken)
        router_cx_wait_wake(p);
}

static void w_close_idle(pf_pool *p)
{
    (void)p;
}

const pf_upstream_proto router_cx_wait_proto = {
    "cx-wait", w_start, w_data, w_nothing, w_nothing, w_abort, w_nothing, w_close_idle,
};

void router_cx_wait_wake(pf_pool *p)
{
    if (pf_queue_empty(&p->cx_waiters))
        return;
    pf_stream *s = pf_queue_data(p->cx_waiters.next, pf_stream, cx_wait);
    pf_queue_remove(&s->cx_wait);
    s->cx_woken = true;
    router__cx_woken(s);
}

/* No turns to hand on here: the pool may be freed before they run. */
void router_cx_wait_wake_all(pf_pool *p)
{
    while (!pf_queue_empty(&p->cx_waiters)) {
        pf_stream *s = pf_queue_data(p->cx_waiters.next, pf_stream, cx_wait);
        pf_queue_remove(&s->cx_wait);
        router__cx_woken(s);
    }
}
