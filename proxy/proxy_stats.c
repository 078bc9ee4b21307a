#include "proxy/proxy_stats.h"

#include <stdio.h>
#include <stdlib.h>

#define NAME_MAX_LEN 512

typedef stat_id (*register_fn)(stats_store *, const char *);

static stat_id reg(stats_store *st, register_fn fn, const char *prefix, const char *name)
{
    char full[NAME_MAX_LEN * 2];
    snprintf(full, sizeof full, "%s.%s", prefix, name);
    return fn(st, full);
}

static void register_xx(stats_store *st, const char *prefix, const char *stem, stat_id out[5])
{
    char name[64];
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "%s_%dxx", stem, i + 1);
        out[i] = reg(st, stats_counter, prefix, name);
    }
}

static void register_listener(stats_store *st, const cfg_listener *l, pf_listener_stats *ls)
{
    char p[NAME_MAX_LEN];
    /* Envoy names a listener's stats by its address: listener.0.0.0.0_10000.* */
    snprintf(p, sizeof p, "listener.%s_%u", l->address.address, l->address.port);
    ls->l_cx_total = reg(st, stats_counter, p, "downstream_cx_total");
    ls->l_cx_active = reg(st, stats_gauge, p, "downstream_cx_active");

    snprintf(p, sizeof p, "http.%s", l->hcm.stat_prefix);
    ls->cx_total = reg(st, stats_counter, p, "downstream_cx_total");
    ls->cx_http1_total = reg(st, stats_counter, p, "downstream_cx_http1_total");
    ls->cx_active = reg(st, stats_gauge, p, "downstream_cx_active");
    ls->cx_length_ms = reg(st, stats_histogram, p, "downstream_cx_length_ms");
    ls->cx_protocol_error = reg(st, stats_counter, p, "downstream_cx_protocol_error");
    ls->rq_total = reg(st, stats_counter, p, "downstream_rq_total");
    ls->rq_http1_total = reg(st, stats_counter, p, "downstream_rq_http1_total");
    ls->rq_active = reg(st, stats_gauge, p, "downstream_rq_active");
    ls->rq_time = reg(st, stats_histogram, p, "downstream_rq_time");
    register_xx(st, p, "downstream_rq", ls->rq_xx);
    ls->rq_timeout = reg(st, stats_counter, p, "downstream_rq_timeout");
    ls->rx_bytes_total = reg(st, stats_counter, p, "downstream_cx_rx_bytes_total");
    ls->tx_bytes_total = reg(st, stats_counter, p, "downstream_cx_tx_bytes_total");
    ls->no_route = reg(st, stats_counter, p, "no_route");
    ls->upstream_rq_header_size_431 = reg(st, stats_counter, p, "downstream_rq_too_large");
}

static void register_cluster(stats_store *st, const cfg_cluster *c, pf_cluster_stats *cs)
{
    char p[NAME_MAX_LEN], name[64];
    snprintf(p, sizeof p, "cluster.%s", c->name);
    cs->rq_total = reg(st, stats_counter, p, "upstream_rq_total");
    cs->rq_active = reg(st, stats_gauge, p, "upstream_rq_active");
    cs->rq_time = reg(st, stats_histogram, p, "upstream_rq_time");
    register_xx(st, p, "upstream_rq", cs->rq_xx);
    /* Per-code counters (upstream_rq_200 ...) are registered for every code
     * so workers never register names; output hides them until used. */
    for (int code = 100; code < 600; code++) {
        snprintf(name, sizeof name, "upstream_rq_%d", code);
        stat_id id = reg(st, stats_counter_lazy, p, name);
        if (code == 100)
            cs->rq_code_base = id;
    }
    cs->cx_total = reg(st, stats_counter, p, "upstream_cx_total");
    cs->cx_active = reg(st, stats_gauge, p, "upstream_cx_active");
    cs->cx_connect_fail = reg(st, stats_counter, p, "upstream_cx_connect_fail");
    cs->cx_connect_timeout = reg(st, stats_counter, p, "upstream_cx_connect_timeout");
    cs->cx_connect_ms = reg(st, stats_histogram, p, "upstream_cx_connect_ms");
    cs->cx_destroy = reg(st, stats_counter, p, "upstream_cx_destroy");
    cs->cx_destroy_remote = reg(st, stats_counter, p, "upstream_cx_destroy_remote");
    cs->cx_destroy_local = reg(st, stats_counter, p, "upstream_cx_destroy_local");
    cs->rq_timeout = reg(st, stats_counter, p, "upstream_rq_timeout");
    cs->rq_retry = reg(st, stats_counter, p, "upstream_rq_retry");
    cs->rq_pending_total = reg(st, stats_counter, p, "upstream_rq_pending_total");
    cs->rq_rx_reset = reg(st, stats_counter, p, "upstream_rq_rx_reset");
    cs->rq_tx_reset = reg(st, stats_counter, p, "upstream_rq_tx_reset");
    cs->cx_rx_bytes_total = reg(st, stats_counter, p, "upstream_cx_rx_bytes_total");
    cs->cx_tx_bytes_total = reg(st, stats_counter, p, "upstream_cx_tx_bytes_total");
    cs->cx_protocol_error = reg(st, stats_counter, p, "upstream_cx_protocol_error");
    cs->membership_healthy = reg(st, stats_gauge, p, "membership_healthy");
    cs->membership_total = reg(st, stats_gauge, p, "membership_total");
    cs->membership_change = reg(st, stats_counter, p, "membership_change");
    cs->no_healthy_host = reg(st, stats_counter, p, "upstream_cx_none_healthy");
    cs->lb_healthy_panic = reg(st, stats_counter, p, "lb_healthy_panic");
}

pf_proxy_stats *pf_proxy_stats_new(stats_store *st, const cfg_bootstrap *cfg)
{
    pf_proxy_stats *ps = calloc(1, sizeof *ps);
    if (!ps)
        goto fail;
    ps->listeners = calloc(cfg->n_listeners + 1, sizeof *ps->listeners);
    ps->clusters = calloc(cfg->n_clusters + 1, sizeof *ps->clusters);
    if (!ps->listeners || !ps->clusters)
        goto fail;
    for (size_t i = 0; i < cfg->n_listeners; i++)
        register_listener(st, &cfg->listeners[i], &ps->listeners[i]);
    for (size_t i = 0; i < cfg->n_clusters; i++)
        register_cluster(st, &cfg->clusters[i], &ps->clusters[i]);
    pf_server_stats *s = &ps->server;
    s->live = stats_gauge(st, "server.live");
    s->uptime = stats_gauge(st, "server.uptime");
    s->concurrency = stats_gauge(st, "server.concurrency");
    s->memory_allocated = stats_gauge(st, "server.memory_allocated");
    s->memory_heap_size = stats_gauge(st, "server.memory_heap_size");
    s->total_connections = stats_gauge(st, "server.total_connections");
    s->version = stats_gauge(st, "server.version");
    return ps;
fail:
    pf_proxy_stats_free(ps);
    return NULL;
}

void pf_proxy_stats_free(pf_proxy_stats *ps)
{
    if (!ps)
        return;
    free(ps->listeners);
    free(ps->clusters);
    free(ps);
}
