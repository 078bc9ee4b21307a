#include "proxy/server_stats.h"

#include <malloc.h>

#include "admin/stats.h"
#include "proxy/breakers.h"
#include "proxy/cluster.h"
#include "proxy/proxy_stats.h"
#include "proxy/server_hosts.h"
#include "proxy/server.h"

#define DEFAULT_FLUSH_MS 5000

static void update_server_gauges(pf_server *srv)
{
    stats_store *st = srv->stats;
    const pf_server_stats *ss = &srv->ps->server;
    stats_gauge_set(st, ss->live, srv->draining ? 0 : 1);
    stats_gauge_set(st, ss->uptime, (int64_t)((uv_hrtime() - srv->start_time) / 1000000000u));
    stats_gauge_set(st, ss->concurrency, srv->concurrency);
    struct mallinfo2 mi = mallinfo2();
    stats_gauge_set(st, ss->memory_allocated, (int64_t)mi.uordblks);
    stats_gauge_set(st, ss->memory_heap_size, (int64_t)(mi.arena + mi.hblkhd));
    int64_t conns = 0;
    for (size_t i = 0; i < srv->cfg->n_listeners; i++)
        conns += stats_gauge_value(st, srv->ps->listeners[i].l_cx_active);
    stats_gauge_set(st, ss->total_connections, conns);
}

static void on_flush(uv_timer_t *t)
{
    pf_server *srv = t->data;
    update_server_gauges(srv);
    pf_breakers_publish(srv);
    stats_flush(srv->stats);
}

int pf_server_stats_init(pf_server *srv)
{
    if (!(srv->stats = stats_store_new()))
        return UV_ENOMEM;
    if (!(srv->ps = pf_proxy_stats_new(srv->stats, srv->cfg)))
        return UV_ENOMEM;
    int rc = pf_server_hosts_init(srv);
    if (rc)
        return rc;
    update_server_gauges(srv);
    uint64_t every = srv->cfg->stats.flush_interval_ms ? srv->cfg->stats.flush_interval_ms
                                                       : DEFAULT_FLUSH_MS;
    uv_timer_init(&srv->loop, &srv->stats_timer);
    srv->stats_timer.data = srv;
    uv_timer_start(&srv->stats_timer, on_flush, every, every);
    return 0;
}

void pf_server_stats_membership(pf_server *srv, size_t cluster, pf_hostset *hs)
{
    const pf_cluster_stats *cs = &srv->ps->clusters[cluster];
    size_t n_hosts = hs->n;
    pf_server_hosts_assign(srv, cluster, hs);
    /* membership_healthy counts hosts not failing health checks or ejected;
     * proxy/cluster_mgr.c sets it with every host set it publishes. */
    stats_gauge_set(srv->stats, cs->membership_total, (int64_t)n_hosts);
    stats_inc(stats_main_shard(srv->stats), cs->membership_change);
}

void pf_server_stats_stop(pf_server *srv)
{
    uv_close((uv_handle_t *)&srv->stats_timer, NULL);
}

void pf_server_stats_free(pf_server *srv)
{
    pf_server_hosts_free(srv);
    pf_proxy_stats_free(srv->ps);
    srv->ps = NULL;
    stats_store_free(srv->stats);
    srv->stats = NULL;
}
