#include "proxy/outlier.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "admin/stats.h"
#include "config/cluster_config.h"
#include "proxy/cluster.h"
#include "proxy/cluster_mgr.h"
#include "proxy/host_stats.h"
#include "proxy/log.h"
#include "proxy/proxy_stats.h"
#include "proxy/server.h"
#include "proxy/worker.h"

/* ---- worker side ---- */

#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define ST(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)

/* Counts one more failure in *ctr; true when it reached threshold (then restarts). */
static bool bump(_Atomic uint32_t *ctr, _Atomic uint64_t *trips, uint32_t threshold)
{
    uint32_t n = LD(*ctr) + 1;
    if (threshold && n >= threshold) {
        ST(*ctr, 0);
        ST(*trips, LD(*trips) + 1);
        return true;
    }
    ST(*ctr, n);
    return false;
}

void pf_outlier_report(pf_worker *w, pf_cluster_rt *c, pf_host_counters *hc, int result)
{
    const cfg_cluster_lb *lb = c->cfg->lb;
    if (!lb || !lb->outlier.enabled || !hc)
        return;
    const cfg_outlier *o = &lb->outlier;
    bool local = result < 0, trip = false;
    if (local && o->split_external_local_origin_errors) {
        trip = bump(&hc->od_local, &hc->od_trip_local, o->consecutive_local_origin_failure);
    } else {
        /* Local-origin failures count as the gateway errors they answer with. */
        int code = result == PF_OD_TIMEOUT ? 504 : local ? 503 : result;
        if (code >= 500)
            trip |= bump(&hc->od_5xx, &hc->od_trip_5xx, o->consecutive_5xx);
        else
            ST(hc->od_5xx, 0);
        if (code == 502 || code == 503 || code == 504)
            trip |= bump(&hc->od_gw, &hc->od_trip_gw, o->consecutive_gateway_failure);
        else
            ST(hc->od_gw, 0);
        if (!local && o->split_external_local_origin_errors)
            ST(hc->od_local, 0);
    }
    if (trip)
        pf_cluster_mgr_wake(w->server);
}

/* ---- main thread ---- */

typedef struct od_host {
    uint64_t seen[3];               /* trips already handled: 5xx, gateway, local */
    uint64_t ejected_until;         /* loop ms; 0: not ejected */
    uint32_t n_ejections;           /* the ejection time multiplier */
} od_host;

struct pf_outlier {
    pf_server *srv;
    size_t idx;
    const cfg_outlier *cfg;
    uv_timer_t timer;
    od_host *hosts;                 /* [host table cap], by slot */
    size_t cap;
};

static void on_interval(uv_timer_t *t);

pf_outlier *pf_outlier_start(pf_server *srv, size_t idx)
{
    const cfg_cluster *cl = &srv->cfg->clusters[idx];
    if (!cl->lb || !cl->lb->outlier.enabled)
        return NULL;
    pf_outlier *od = calloc(1, sizeof *od);
    if (!od)
        return NULL;
    od->srv = srv;
    od->idx = idx;
    od->cfg = &cl->lb->outlier;
    od->cap = srv->host_tables[idx]->cap;
    if (!(od->hosts = calloc(od->cap, sizeof *od->hosts))) {
        free(od);
        return NULL;
    }
    uv_timer_init(&srv->loop, &od->timer);
    od->timer.data = od;
    uv_timer_start(&od->timer, on_interval, od->cfg->interval_ms, od->cfg->interval_ms);
    return od;
}

static void on_closed(uv_handle_t *h)
{
    pf_outlier *od = h->data;
    free(od->hosts);
    free(od);
}

void pf_outlier_stop(pf_outlier *od)
{
    if (od)
        uv_close((uv_handle_t *)&od->timer, on_closed);
}

static size_t n_ejected(pf_outlier *od, const pf_hostset *hs)
{
    size_t n = 0;
    for (size_t i = 0; i < hs->n; i++)
        n += od->hosts[hs->slots[i]].ejected_until != 0;
    return n;
}

/* One detected failure kind k (0 5xx, 1 gateway, 2 local) of host i; may eject.
 * Returns true when the host was ejected. */
static bool detected(pf_outlier *od, const pf_hostset *hs, size_t i, int k)
{
    const pf_cluster_stats *cs = &od->srv->ps->clusters[od->idx];
    stats_shard *sh = stats_main_shard(od->srv->stats);
    static const uint32_t none = 0;
    const uint32_t *enforcing = k == 0 ? &od->cfg->enforcing_consecutive_5xx
                              : k == 1 ? &od->cfg->enforcing_consecutive_gateway_failure
                              : k == 2 ? &od->cfg->enforcing_consecutive_local_origin_failure : &none;
    stats_inc(sh, k == 0 ? cs->od_detected_5xx : k == 1 ? cs->od_detected_gw : cs->od_detected_local);
    od_host *h = &od->hosts[hs->slots[i]];
    if (h->ejected_until)
        return false;
    if ((uint32_t)(rand() % 100) >= *enforcing)
        return false;
    size_t ej = n_ejected(od, hs);
    if (ej && 100 * (ej + 1) > (size_t)od->cfg->max_ejection_percent * hs->n) {
        stats_inc(sh, cs->od_ejections_overflow);
        return false;
    }
    h->n_ejections++;
    uint64_t t = od->cfg->base_ejection_time_ms * h->n_ejections;
    uint64_t cap = od->cfg->max_ejection_time_ms > od->cfg->base_ejection_time_ms
                       ? od->cfg->max_ejection_time_ms : od->cfg->base_ejection_time_ms;
    if (t > cap)
        t = cap;
    h->ejected_until = uv_now(&od->srv->loop) + (t ? t : 1);
    stats_inc(sh, cs->od_ejections_total);
    stats_inc(sh, cs->od_enforced_total);
    stats_inc(sh, k == 0 ? cs->od_enforced_5xx : k == 1 ? cs->od_enforced_gw : cs->od_enforced_local);
    if (k == 0)
        stats_inc(sh, cs->od_ejections_consecutive_5xx);
    pf_cluster_mgr_set_flags(od->srv, od->idx, hs->slots[i], PF_HOST_FAILED_OUTLIER, 0);
    return true;
}

void pf_outlier_check(pf_outlier *od)
{
    const pf_hostset *hs = pf_cluster_mgr_members(od->srv, od->idx);
    if (!hs)
        return;
    pf_host_table *t = od->srv->host_tables[od->idx];
    bool changed = false;
    for (size_t i = 0; i < hs->n; i++) {
        uint32_t slot = hs->slots[i];
        uint64_t trips[3] = {0, 0, 0};
        for (int w = 0; w < t->n_workers; w++) {
            pf_host_counters *c = pf_host_counters_of(t, w, slot);
            trips[0] += LD(c->od_trip_5xx);
            trips[1] += LD(c->od_trip_gw);
            trips[2] += LD(c->od_trip_local);
        }
        od_host *h = &od->hosts[slot];
        for (int k = 0; k < 3; k++)
            if (trips[k] > h->seen[k]) {
                h->seen[k] = trips[k];
                changed |= detected(od, hs, i, k);
            }
    }
    if (changed) {
        stats_gauge_set(od->srv->stats, od->srv->ps->clusters[od->idx].od_ejections_active,
                        (int64_t)n_ejected(od, hs));
        pf_cluster_mgr_publish(od->srv, od->idx);
    }
}

/* Every interval: un-eject hosts whose time is over; hosts that stayed in
 * lose one step of their ejection multiplier (Envoy). */
static void on_interval(uv_timer_t *t)
{
    pf_outlier *od = t->data;
    pf_outlier_check(od);
    const pf_hostset *hs = pf_cluster_mgr_members(od->srv, od->idx);
    if (!hs)
        return;
    uint64_t now = uv_now(&od->srv->loop);
    bool changed = false;
    for (size_t i = 0; i < hs->n; i++) {
        od_host *h = &od->hosts[hs->slots[i]];
        if (h->ejected_until && now >= h->ejected_until) {
            h->ejected_until = 0;
            changed = true;
            pf_cluster_mgr_set_flags(od->srv, od->idx, hs->slots[i], 0, PF_HOST_FAILED_OUTLIER);
        } else if (!h->ejected_until && h->n_ejections) {
            h->n_ejections--;
        }
    }
    if (changed) {
        stats_gauge_set(od->srv->stats, od->srv->ps->clusters[od->idx].od_ejections_active,
                        (int64_t)n_ejected(od, hs));
        pf_cluster_mgr_publish(od->srv, od->idx);
    }
}
