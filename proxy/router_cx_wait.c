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
 * would sit idle while others wait.  (Woken streams stay on the list until
 * they leave it here, so p is alive: orphaning a pool empties its list.) */
static void w_abort(pf_stream *s)
{
    pf_pool *p = s->up;
    bool woken = s->cx_woken;
    s->cx_woken = false;
    pf_queue_remove(&s->cx_wait);   /* a no-op after wake_all (unlinked to itself) */
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

/* The first waiter not woken yet gets the turn. */
void router_cx_wait_wake(pf_pool *p)
{
    for (pf_queue *q = p->cx_waiters.next; q != &p->cx_waiters; q = q->next) {
        pf_stream *s = pf_queue_data(q, pf_stream, cx_wait);
        if (!s->cx_woken) {
            s->cx_woken = true;
            router__cx_woken(s);
            return;
        }
    }
}

/* The pool is being orphaned (and may be freed before they run): everyone
 * leaves the list and picks a host again; no turns to hand on. */
void router_cx_wait_wake_all(pf_pool *p)
{
    while (!pf_queue_empty(&p->cx_waiters)) {
        pf_stream *s = pf_queue_data(p->cx_waiters.next, pf_stream, cx_wait);
        pf_queue_remove(&s->cx_wait);
        s->cx_woken = false;
        router__cx_woken(s);
    }
}
