#include "proxy/cluster_mgr.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "admin/stats.h"
#include "config/cluster_config.h"
#include "proxy/cluster.h"
#include "proxy/dns.h"
#include "proxy/health_check.h"
#include "proxy/host_stats.h"
#include "proxy/log.h"
#include "proxy/outlier.h"
#include "proxy/proxy_stats.h"
#include "proxy/server.h"
#include "proxy/server_stats.h"
#include "proxy/worker.h"

typedef struct cm_cluster {
    pf_hostset *members;            /* one reference; NULL until known */
    uint16_t *flags;                /* [host table cap] PF_HOST_* by slot */
    pf_hc *hc;                      /* NULL without health_checks */
    pf_outlier *od;                 /* NULL without outlier_detection */
} cm_cluster;

typedef struct pf_cluster_mgr {
    cm_cluster *clusters;           /* [n_clusters] */
    pf_breakers *breakers;          /* [n_clusters] */
    uv_async_t wake;
    bool wake_open, stopped;
    int init_pending;
} pf_cluster_mgr;

static void on_wake(uv_async_t *h)
{
    pf_server *srv = h->data;
    for (size_t i = 0; i < srv->cfg->n_clusters; i++)
        if (srv->cm->clusters[i].od)
            pf_outlier_check(srv->cm->clusters[i].od);
}

int pf_cluster_mgr_init(pf_server *srv)
{
    size_t n = srv->cfg->n_clusters;
    pf_cluster_mgr *cm = calloc(1, sizeof *cm);
    if (!cm)
        return UV_ENOMEM;
    srv->cm = cm;
    cm->clusters = calloc(n + 1, sizeof *cm->clusters);
    cm->breakers = calloc(n + 1, sizeof *cm->breakers);
    if (!cm->clusters || !cm->breakers)
        return UV_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!(cm->clusters[i].flags = calloc(srv->host_tables[i]->cap, sizeof(uint16_t))))
            return UV_ENOMEM;
    uv_async_init(&srv->loop, &cm->wake, on_wake);
    cm->wake.data = srv;
    cm->wake_open = true;
    for (size_t i = 0; i < n; i++) {
        cm->clusters[i].od = pf_outlier_start(srv, i);
        cm->clusters[i].hc = pf_hc_new(srv, i);
        if (cm->clusters[i].hc)
            cm->init_pending++;
    }
    return 0;
}

void pf_cluster_mgr_wake(pf_server *srv)
{
    if (srv->cm && srv->cm->wake_open)
        uv_async_send(&srv->cm->wake);
}

pf_breakers *pf_cluster_mgr_breakers(pf_server *srv, size_t cluster)
{
    return srv->cm ? &srv->cm->breakers[cluster] : NULL;
}

const pf_hostset *pf_cluster_mgr_members(pf_server *srv, size_t cluster)
{
    return srv->cm ? srv->cm->clusters[cluster].members : NULL;
}

uint16_t pf_cluster_mgr_flags(pf_server *srv, size_t cluster, uint32_t slot)
{
    return srv->cm->clusters[cluster].flags[slot];
}

bool pf_cluster_mgr_set_flags(pf_server *srv, size_t cluster, uint32_t slot, uint16_t set,
                              uint16_t clear)
{
    uint16_t *f = &srv->cm->clusters[cluster].flags[slot];
    uint16_t old = *f;
    *f = (uint16_t)((old | set) & ~clear);
    return *f != old;
}

void pf_cluster_mgr_set_members(pf_server *srv, size_t idx, pf_hostset *hs)
{
    cm_cluster *c = &srv->cm->clusters[idx];
    pf_server_stats_membership(srv, idx, hs);   /* assigns the slots */
    /* Hosts new to a health-checked cluster wait for their first check. */
    for (size_t i = 0; i < hs->n && c->hc; i++) {
        bool known = false;
        for (size_t j = 0; c->members && j < c->members->n && !known; j++)
            known = c->members->slots[j] == hs->slots[i];
        if (!known)
            c->flags[hs->slots[i]] = PF_HOST_FAILED_ACTIVE_HC | PF_HOST_PENDING_ACTIVE_HC;
    }
    pf_hostset_unref(c->members);
    c->members = hs;
    if (c->hc)
        pf_hc_sync(c->hc, hs);
    pf_cluster_mgr_publish(srv, idx);
}

void pf_cluster_mgr_endpoints_replaced(pf_server *srv, size_t idx)
{
    const cfg_cluster *c = &srv->cfg->clusters[idx];
    if (c->type == CFG_CLUSTER_STATIC) {
        pf_hostset *hs = pf_hostset_from_static(c);
        if (hs)
            pf_cluster_mgr_set_members(srv, idx, hs);
        else
            pf_error("cluster '%s': out of memory building its new host set", c->name);
        return;
    }
    pf_dns_stop(srv->dns[idx]);
    if (!(srv->dns[idx] = pf_dns_start(srv, idx)))
        pf_error("cluster '%s': out of memory restarting DNS", c->name);
}

void pf_cluster_mgr_publish(pf_server *srv, size_t idx)
{
    cm_cluster *c = &srv->cm->clusters[idx];
    const cfg_cluster *cfg = &srv->cfg->clusters[idx];
    if (!c->members)
        return;
    pf_hostset *hs = pf_hostset_clone(c->members);
    if (!hs)
        return;
    size_t healthy = 0, hc_healthy = 0;
    for (size_t i = 0; i < hs->n; i++) {
        hs->info[i].flags = c->flags[hs->slots[i]];
        healthy += !(hs->info[i].flags & PF_HOST_UNHEALTHY);
        hc_healthy += !(hs->info[i].flags & PF_HOST_FAILED_ACTIVE_HC);
    }
    if (pf_hostset_build_lb(hs, cfg) != 0) {
        pf_hostset_unref(hs);
        return;
    }
    const pf_cluster_stats *cs = &srv->ps->clusters[idx];
    stats_gauge_set(srv->stats, cs->membership_healthy, (int64_t)healthy);
    if (cs->has_hc)
        stats_gauge_set(srv->stats, cs->hc_healthy, (int64_t)hc_healthy);
    pf_hostset_unref(srv->hostsets[idx]);
    srv->hostsets[idx] = hs;
    for (int i = 0; i < srv->workers_started; i++) {
        pf_msg *m = calloc(1, sizeof *m);
        if (!m)
            continue;
        m->kind = PF_MSG_HOSTSET;
        m->cluster = idx;
        m->hostset = pf_hostset_ref(hs);
        pf_worker_post(&srv->workers[i], m);
    }
}

bool pf_cluster_mgr_initializing(pf_server *srv)
{
    return srv->cm && srv->cm->init_pending > 0;
}

void pf_cluster_mgr_init_done(pf_server *srv)
{
    if (srv->cm->init_pending > 0)
        srv->cm->init_pending--;
}

void pf_cluster_mgr_stop(pf_server *srv)
{
    pf_cluster_mgr *cm = srv->cm;
    if (!cm || cm->stopped)
        return;
    cm->stopped = true;
    for (size_t i = 0; i < srv->cfg->n_clusters; i++) {
        pf_hc_stop(cm->clusters[i].hc);
        cm->clusters[i].hc = NULL;
        pf_outlier_stop(cm->clusters[i].od);
        cm->clusters[i].od = NULL;
    }
    if (cm->wake_open) {
        cm->wake_open = false;
        uv_close((uv_handle_t *)&cm->wake, NULL);
    }
}

void pf_cluster_mgr_free(pf_server *srv)
{
    pf_cluster_mgr *cm = srv->cm;
    if (!cm)
        return;
    for (size_t i = 0; cm->clusters && i < srv->cfg->n_clusters; i++) {
        pf_hostset_unref(cm->clusters[i].members);
        free(cm->clusters[i].flags);
    }
    free(cm->clusters);
    free(cm->breakers);
    free(cm);
    srv->cm = NULL;
}
