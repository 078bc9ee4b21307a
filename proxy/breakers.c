/* max_retries and max_connections counters (see proxy/breakers.h). */
#include "proxy/breakers.h"

#include "proxy/router_cx_wait.h"

const cfg_cb_thresholds *pf_breakers_thresholds(const pf_cluster_rt *c)
{
    return c->cfg->lb ? &c->cfg->lb->cb[0] : &cfg_cluster_lb_defaults.cb[0];
}

/* Envoy's canCreate() then inc(): two workers may both pass at the limit,
 * which Envoy accepts as well (its counters are not reserved either). */
bool pf_breakers_retry_take(pf_cluster_rt *c)
{
    if (!c->breakers)
        return true;
    if (atomic_load_explicit(&c->breakers->retries_active, memory_order_relaxed) >=
        pf_breakers_thresholds(c)->max_retries)
        return false;
    atomic_fetch_add_explicit(&c->breakers->retries_active, 1, memory_order_relaxed);
    return true;
}

void pf_breakers_retry_put(pf_cluster_rt *c)
{
    if (c->breakers)
        atomic_fetch_sub_explicit(&c->breakers->retries_active, 1, memory_order_relaxed);
}

bool pf_breakers_cx_full(const pf_cluster_rt *c)
{
    return c->breakers && atomic_load_explicit(&c->breakers->cx_open, memory_order_relaxed) >=
                              pf_breakers_thresholds(c)->max_connections;
}

void pf_breakers_cx_opened(pf_pool *p)
{
    if (p->breakers)
        atomic_fetch_add_explicit(&p->breakers->cx_open, 1, memory_order_relaxed);
}

void pf_breakers_cx_closed(pf_pool *p)
{
    if (p->breakers)
        atomic_fetch_sub_explicit(&p->breakers->cx_open, 1, memory_order_relaxed);
    router_cx_wait_wake(p);
}

void pf_breakers_cx_idle(pf_pool *p)
{
    router_cx_wait_wake(p);
}
