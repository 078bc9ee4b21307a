/* The protocol-neutral half of the router: host choice, timeouts, stats and
 * Envoy's answers to upstream failures.  See proxy/upstream.h. */
#include <stdio.h>
#include <stdlib.h>

#include "admin/stats.h"
#include "proxy/grpc.h"
#include "proxy/hcm.h"
#include "proxy/host_stats.h"
#include "proxy/proxy_stats.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"

static const char reset_prefix[] =
    "upstream connect error or disconnect/reset before headers. reset reason: ";

/* ---- timers: connect timeout and route timeout share the stream's timer ---- */

static void on_stream_timer(uv_timer_t *t);

static void arm_timer(pf_stream *s)
{
    uint64_t d = s->connect_deadline_ms;
    if (s->route_deadline_ms && (!d || s->route_deadline_ms < d))
        d = s->route_deadline_ms;
    if (!d) {
        uv_timer_stop(&s->timer);
        return;
    }
    uint64_t now = uv_now(&s->w->loop);
    uv_timer_start(&s->timer, on_stream_timer, d > now ? d - now : 0, 0);
}

static void on_stream_timer(uv_timer_t *t)
{
    pf_stream *s = t->data;
    uint64_t now = uv_now(&s->w->loop);
    if (s->up && s->connect_deadline_ms && now >= s->connect_deadline_ms) {
        stats_inc(s->w->stats, s->ucs->cx_connect_timeout);
        stats_inc(s->w->stats, s->ucs->cx_connect_fail);
        PF_HC_ADD(s->uhc->cx_connect_fail, 1);
        router_abort(s);
        router_on_upstream_error(s, PF_RF_UF, "connection timeout");
        return;
    }
    if (s->route_deadline_ms && now >= s->route_deadline_ms) {
        s->route_deadline_ms = 0;
        if (s->up) {
            stats_inc(s->w->stats, s->ucs->rq_timeout);
            PF_HC_ADD(s->uhc->rq_timeout, 1);
        }
        router_abort(s);
        hcm_local_reply(s, 504, "upstream request timeout", PF_RF_UT);
        return;
    }
    arm_timer(s);
}

/* ---- connection manager side ---- */

void router_start(pf_stream *s, bool end)
{
    pf_worker *w = s->w;
    pf_cluster_rt *c = &w->clusters[s->cluster];
    const pf_cluster_stats *cs = &w->ps->clusters[s->cluster];
    stats_inc(w->stats, cs->rq_total);
    pf_pool *p = pf_cluster_pick(c);
    if (!p) {
        stats_inc(w->stats, cs->no_healthy_host);
        hcm_local_reply(s, 503, "no healthy upstream", PF_RF_UH);
        return;
    }
    s->ucs = cs;
    s->uhc = pf_host_counters_of(c->hosts, w->id, p->slot);
    s->uproto = c->proto;
    s->upstream_host = p->addr;
    s->has_upstream_host = true;
    uint64_t now = uv_now(&w->loop);
    s->upstream_start_ms = now;
    s->upstream_start_ns = uv_hrtime();
    bool connecting = false;
    if (c->proto->start(s, p, end, &connecting) != 0) {
        stats_inc(w->stats, cs->cx_connect_fail);
        PF_HC_ADD(s->uhc->cx_connect_fail, 1);
        router_on_upstream_error(s, PF_RF_UF, "connection failure");
        return;
    }
    stats_gauge_add(w->stats, cs->rq_active, 1);
    PF_HC_ADD(s->uhc->rq_total, 1);
    PF_HC_ADD(s->uhc->rq_active, 1);
    if (connecting)
        s->connect_deadline_ms = now + c->cfg->connect_timeout_ms;
    if (end)
        router_request_end(s);
    else
        arm_timer(s);
}

void router_request_data(pf_stream *s, const char *p, size_t n)
{
    if (s->up && n)
        s->uproto->data(s, p, n);
}

/* The whole request is on its way: the route timeout starts now (Envoy). */
static void request_done(pf_stream *s)
{
    uint64_t t = s->route ? s->route->timeout_ms : 0;
    /* A gRPC client's own deadline bounds the route timeout. */
    uint64_t g = grpc_timeout_ms(s);
    if (g && (!t || g < t))
        t = g;
    s->route_deadline_ms = t ? uv_now(&s->w->loop) + t : 0;
    arm_timer(s);
}

void router_request_trailers(pf_stream *s)
{
    if (!s->up)
        return;
    s->uproto->trailers(s);
    request_done(s);
}

void router_request_end(pf_stream *s)
{
    if (!s->up)
        return;
    s->uproto->end(s);
    request_done(s);
}

void router_abort(pf_stream *s)
{
    uv_timer_stop(&s->timer);
    if (!s->up)
        return;
    stats_inc(s->w->stats, s->ucs->rq_tx_reset);
    s->uproto->abort(s);        /* calls router_detached(s) */
}

void router_downstream_drained(pf_stream *s)
{
    if (s->up && s->upstream_paused) {
        s->upstream_paused = false;
        s->uproto->resume(s);
    }
}

/* ---- protocol side ---- */

void router_on_connected(pf_stream *s)
{
    s->connect_deadline_ms = 0;
    arm_timer(s);
}

void router_detached(pf_stream *s)
{
    stats_gauge_add(s->w->stats, s->ucs->rq_active, -1);
    PF_HC_ADD(s->uhc->rq_active, -1);
    s->up = NULL;
    s->connect_deadline_ms = s->route_deadline_ms = 0;
    uv_timer_stop(&s->timer);
    if (s->req_paused_by_upstream && !s->resp_end) {
        s->req_paused_by_upstream = false;
        s->codec->pause_request(s, false);
    }
}

void router_upstream_blocked(pf_stream *s, bool blocked)
{
    if (blocked == s->req_paused_by_upstream)
        return;
    s->req_paused_by_upstream = blocked;
    s->codec->pause_request(s, blocked);
}

void router_on_response_headers(pf_stream *s)
{
    int st = s->status;
    stats_shard *sh = s->w->stats;
    if (st >= 100 && st < 600) {
        stats_inc(sh, s->ucs->rq_code_base + (stat_id)(st - 100));
        stats_inc(sh, s->ucs->rq_xx[st / 100 - 1]);
    }
    if (st >= 500)
        PF_HC_ADD(s->uhc->rq_error, 1);
    else
        PF_HC_ADD(s->uhc->rq_success, 1);
    hcm_encode_headers(s, false);
}

bool router_on_response_data(pf_stream *s, const char *p, size_t n)
{
    hcm_encode_data(s, p, n, false);
    if (s->up && s->codec->write_blocked(s)) {
        s->upstream_paused = true;
        return false;
    }
    return true;
}

void router_on_response_end(pf_stream *s)
{
    stats_record(s->w->stats, s->ucs->rq_time, (uv_hrtime() - s->upstream_start_ns) / 1000);
    if (s->resp_trailers.n)
        hcm_encode_trailers(s);
    else
        hcm_encode_data(s, NULL, 0, true);
}

void router_on_upstream_error(pf_stream *s, uint32_t flag, const char *reason)
{
    if (s->ucs) {
        PF_HC_ADD(s->uhc->rq_error, 1);
        if (flag == PF_RF_UC)
            stats_inc(s->w->stats, s->ucs->rq_rx_reset);
    }
    if (s->resp_headers_sent) {
        s->response_flags |= flag;
        s->codec->reset(s);
        return;
    }
    char body[160];
    snprintf(body, sizeof body, "%s%s", reset_prefix, reason);
    hcm_local_reply(s, 503, body, flag);
}

void pf_uconn_orphan_pool(pf_pool *p)
{
    p->cluster = NULL;
    if (p->n_active == 0)
        free(p);
}
