/* A cluster's circuit breakers (see proxy/breakers.h). */
#include "proxy/breakers.h"

#include "admin/stats.h"
#include "proxy/cluster_mgr.h"
#include "proxy/proxy_stats.h"
#include "proxy/router_cx_wait.h"
#include "proxy/server.h"

const cfg_cb_thresholds *pf_breakers_thresholds(const pf_cluster_rt *c)
{
    return c->cfg->lb ? &c->cfg->lb->cb[0] : &cfg_cluster_lb_defaults.cb[0];
}

/* Envoy's thresholds are global across workers: one relaxed atomic per
 * resource and cluster, as Envoy's ResourceManager. */
bool pf_breakers_overflow(pf_cluster_rt *c, bool room)
{
    if (!c->breakers)
        return false;
    const cfg_cb_thresholds *t = pf_breakers_thresholds(c);
    if (atomic_load_explicit(&c->breakers->rq_active, memory_order_relaxed) >= t->max_requests)
        return true;
    return !room && atomic_load_explicit(&c->breakers->rq_pending, memory_order_relaxed) >=
                        t->max_pending_requests;
}

void pf_breakers_add(pf_cluster_rt *c, bool pending, int64_t delta)
{
    if (c->breakers)
        atomic_fetch_add_explicit(pending ? &c->breakers->rq_pending : &c->breakers->rq_active,
                                  delta, memory_order_relaxed);
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

/* Envoy's circuit_breakers.<priority>.*_open (1 at the limit) and
 * remaining_* gauges.  Routes have no priority yet, so HIGH is never used. */
void pf_breakers_publish(pf_server *srv)
{
    if (!srv->stats || !srv->ps)
        return;
    for (size_t i = 0; i < srv->cfg->n_clusters; i++) {
        const pf_breakers *b = pf_cluster_mgr_breakers(srv, i);
        const pf_cluster_stats *cs = &srv->ps->clusters[i];
        const cfg_cluster_lb *lb = srv->cfg->clusters[i].lb;
        if (!lb)
            lb = &cfg_cluster_lb_defaults;
        for (int prio = 0; prio < 2; prio++) {
            const cfg_cb_thresholds *t = &lb->cb[prio];
            int64_t max[4] = {t->max_connections, t->max_pending_requests, t->max_requests,
                              t->max_retries};
            int64_t used[4] = {0, 0, 0, 0};
            if (b && prio == 0) {
                used[0] = atomic_load_explicit(&b->cx_open, memory_order_relaxed);
                used[1] = atomic_load_explicit(&b->rq_pending, memory_order_relaxed);
                used[2] = atomic_load_explicit(&b->rq_active, memory_order_relaxed);
                used[3] = atomic_load_explicit(&b->retries_active, memory_order_relaxed);
            }
            for (int j = 0; j < 4; j++) {
                stats_gauge_set(srv->stats, cs->cb_open[prio][j], used[j] >= max[j]);
                if (cs->cb_track[prio])
                    stats_gauge_set(srv->stats, cs->cb_remaining[prio][j],
                                    used[j] < max[j] ? max[j] - used[j] : 0);
            }
        }
    }
}
