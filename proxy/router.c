/* The protocol-neutral half of the router: host choice, timeouts, stats and
 * Envoy's answers to upstream failures.  See proxy/upstream.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/retry_config.h"

#include "admin/stats.h"
#include "proxy/grpc.h"
#include "proxy/breakers.h"
#include "proxy/hcm.h"
#include "proxy/mirror.h"
#include "proxy/host_stats.h"
#include "proxy/outlier.h"
#include "proxy/proxy_stats.h"
#include "proxy/route_action.h"
#include "proxy/router_cx_wait.h"
#include "proxy/router_retry.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"

static const char reset_prefix[] =
    "upstream connect error or disconnect/reset before headers. reset reason: ";

/* ---- timers: connect timeout and route timeout share the stream's timer ---- */

static void on_stream_timer(uv_timer_t *t);

static void attempt(pf_stream *s, bool end, bool replay);

static uint64_t earliest(uint64_t a, uint64_t b)
{
    return !a ? b : !b ? a : a < b ? a : b;
}

static void arm_timer(pf_stream *s)
{
    uint64_t d = earliest(earliest(s->connect_deadline_ms, s->route_deadline_ms),
                          earliest(s->try_deadline_ms, s->retry_at_ms));
    if (!d) {
        uv_timer_stop(&s->timer);
        return;
    }
    uint64_t now = uv_now(&s->w->loop);
    uv_timer_start(&s->timer, on_stream_timer, d > now ? d - now : 0, 0);
}

/* Gives back the stream's max_retries slot: the retried attempt has its
 * outcome, or the stream is going away (Envoy's RetryState::resetRetry). */
static void retry_release(pf_stream *s)
{
    if (!s->retry_held)
        return;
    s->retry_held = false;
    pf_breakers_retry_put(&s->w->clusters[s->cluster]);
}

/* The circuit breaker's say on a retry the policy allows: over max_retries
 * the retry is not done and the failure at hand is what the client gets
 * (upstream_rq_retry_overflow, flag UO).  Takes the slot on success. */
static bool retry_admit(pf_stream *s)
{
    retry_release(s);
    if (!pf_breakers_retry_take(&s->w->clusters[s->cluster])) {
        stats_inc(s->w->stats, s->ucs->rq_retry_overflow);
        s->response_flags |= PF_RF_UO;
        return false;
    }
    s->retry_held = true;
    return true;
}

/* Counts a retry and arms its back-off; the attempt runs from the timer. */
static void schedule_retry(pf_stream *s)
{
    s->retries_done++;
    stats_inc(s->w->stats, s->ucs->rq_retry);
    s->retry_at_ms = uv_now(&s->w->loop) + retry_backoff_ms(s) + 1;
    arm_timer(s);
}

static void on_stream_timer(uv_timer_t *t)
{
    pf_stream *s = t->data;
    uint64_t now = uv_now(&s->w->loop);
    /* The route timeout bounds every attempt and back-off: checked first. */
    if (s->route_deadline_ms && now >= s->route_deadline_ms) {
        retry_release(s);
        s->route_deadline_ms = 0;
        if (s->up) {
            stats_inc(s->w->stats, s->ucs->rq_timeout);
            PF_HC_ADD(s->uhc->rq_timeout, 1);
            pf_outlier_report(s->w, &s->w->clusters[s->cluster], s->uhc, PF_OD_TIMEOUT);
        }
        router_abort(s);
        hcm_local_reply(s, 504, "upstream request timeout", PF_RF_UT);
        return;
    }
    /* A retry's back-off ended, or a stream waiting for a connection
     * (router_cx_wait_proto) was woken: attempt again. */
    if (s->retry_at_ms && now >= s->retry_at_ms &&
        (!s->up || s->uproto == &router_cx_wait_proto)) {
        s->retry_at_ms = 0;
        if (s->up) {
            s->cx_woken = false;    /* it takes its turn now */
            s->uproto->abort(s);
        }
        if (s->retry_body_overflow) {
            /* The body that came while waiting could not all be kept. */
            hcm_local_reply(s, 503, "upstream connect error or disconnect/reset before "
                                    "headers. reset reason: overflow", PF_RF_UO);
            return;
        }
        attempt(s, true, true);
        return;
    }
    if (s->up && s->try_deadline_ms && now >= s->try_deadline_ms) {
        s->try_deadline_ms = 0;
        retry_release(s);
        stats_inc(s->w->stats, s->ucs->rq_per_try_timeout);
        s->uproto->abort(s);
        if (retry_possible(s) && retry_on_timeout(s) && retry_admit(s)) {
            schedule_retry(s);
            return;
        }
        hcm_local_reply(s, 504, "upstream request timeout", PF_RF_UT);
        return;
    }
    if (s->up && s->connect_deadline_ms && now >= s->connect_deadline_ms) {
        stats_inc(s->w->stats, s->ucs->cx_connect_timeout);
        stats_inc(s->w->stats, s->ucs->cx_connect_fail);
        PF_HC_ADD(s->uhc->cx_connect_fail, 1);
        router_abort(s);
        router_on_upstream_error(s, PF_RF_UF, "connection timeout");
        return;
    }
    arm_timer(s);
}

/* ---- connection manager side ---- */

/* Picks a host; with retry_host_predicate previous_hosts, one not tried yet
 * when the policy's host_selection_retry_max_attempts allow. */
static pf_pool *pick_host(pf_stream *s, pf_cluster_rt *c, bool *panic)
{
    const uint64_t *hash = s->has_route_hash ? &s->route_hash : NULL;
    const cfg_retry_policy *rp = retry_policy(s);
    uint32_t skip = rp && rp->previous_priorities ? s->tried_prio : 0, prio = 0;
    pf_pool *p = pf_cluster_pick(s->w, c, hash, panic, skip, &prio);
    if (p && rp && rp->previous_hosts && s->n_tried)
        for (uint32_t i = 0; i < rp->host_selection_attempts + c->n_pools &&
                             retry_host_tried(s, &p->addr); i++)
            p = pf_cluster_pick(s->w, c, NULL, panic, skip, &prio);
    if (p && prio < 32)
        s->tried_prio |= 1u << prio;
    return p;
}

/* max_connections: a request that needs a new connection (HTTP/1.1: no
 * idle one; HTTP/2: every connection at its stream limit) while the cluster
 * is at the limit counts upstream_cx_overflow, then waits for one of its
 * host's connections, or opens one anyway when the host has none (Envoy
 * guarantees every chosen host a connection). */
static bool cx_must_wait(pf_stream *s, pf_cluster_rt *c, const pf_pool *p, bool room)
{
    if (room || !pf_breakers_cx_full(c))
        return false;
    stats_inc(s->w->stats, s->ucs->cx_overflow);
    return p->n_active > 0;
}

void router__cx_woken(pf_stream *s)
{
    s->retry_at_ms = uv_now(&s->w->loop);
    arm_timer(s);
}

/* One attempt at the upstream.  replay: a retry, or a woken waiter,
 * re-sending the kept body. */
static void attempt(pf_stream *s, bool end, bool replay)
{
    pf_worker *w = s->w;
    pf_cluster_rt *c = &w->clusters[s->cluster];
    bool panic = false;
    pf_pool *p = pick_host(s, c, &panic);
    if (panic)
        stats_inc(w->stats, s->ucs->lb_healthy_panic);
    if (!p) {
        retry_release(s);
        stats_inc(w->stats, s->ucs->no_healthy_host);
        hcm_local_reply(s, 503, "no healthy upstream", PF_RF_UH);
        return;
    }
    /* Circuit breakers (max_requests, max_pending_requests): 503 UO. */
    bool room = pf_breakers_pool_has_room(c, p);
    if (pf_breakers_overflow(c, room)) {
        retry_release(s);
        stats_inc(w->stats, s->ucs->rq_pending_overflow);
        hcm_local_reply(s, 503, "upstream connect error or disconnect/reset before headers. "
                                "reset reason: overflow", PF_RF_UO);
        return;
    }
    const pf_upstream_proto *proto = c->proto;
    if (cx_must_wait(s, c, p, room)) {
        proto = &router_cx_wait_proto;
        s->keep_body = true;        /* replayed when a connection is free */
    }
    s->uhc = pf_host_counters_of(c->hosts, w->id, p->slot);
    s->uproto = proto;
    s->upstream_host = p->addr;
    s->has_upstream_host = true;
    retry_note_host(s, &p->addr);
    route_action_host_rewrite(s, &p->addr);     /* auto_host_rewrite needs the host */
    uint64_t now = uv_now(&w->loop);
    s->upstream_start_ms = now;
    s->upstream_start_ns = uv_hrtime();
    s->resp_hdrs.n = s->resp_trailers.n = 0;
    if (replay)     /* a woken waiter's request may still be arriving */
        end = s->req_end && s->retry_body.bytes == 0 && s->req_trailers.n == 0;
    bool connecting = false;
    if (proto->start(s, p, end, &connecting) != 0) {
        stats_inc(w->stats, s->ucs->cx_connect_fail);
        PF_HC_ADD(s->uhc->cx_connect_fail, 1);
        router_on_upstream_error(s, PF_RF_UF, "connection failure");
        return;
    }
    stats_gauge_add(w->stats, s->ucs->rq_active, 1);
    if (proto != &router_cx_wait_proto)
        PF_HC_ADD(s->uhc->rq_total, 1);
    PF_HC_ADD(s->uhc->rq_active, 1);
    pf_breakers_add(c, false, 1);
    if (connecting) {
        /* Waiting for a connection: Envoy's pending request.  The connect
         * timeout is for connections being made, not for a place in line. */
        if (proto != &router_cx_wait_proto)
            s->connect_deadline_ms = now + c->cfg->connect_timeout_ms;
        s->pending = true;
        pf_breakers_add(c, true, 1);
        stats_inc(w->stats, s->ucs->rq_pending_total);
        stats_gauge_add(w->stats, s->ucs->rq_pending_active, 1);
    }
    if (proto == &router_cx_wait_proto && !s->req_end)
        router_upstream_blocked(s, true);   /* hold the body back meanwhile */
    if (replay) {
        for (pf_chunk *ch = s->retry_body.head; ch && s->up; ch = ch->next)
            if (ch->end > ch->start)
                s->uproto->data(s, ch->data + ch->start, ch->end - ch->start);
        if (!s->up)
            return;
        if (proto != &router_cx_wait_proto && !retry_policy(s) && !s->mirror_mask) {
            /* Only the wait wanted the body, and it has been replayed. */
            s->keep_body = false;
            pf_outq_clear(&s->retry_body, &w->chunks);
        }
        if (!s->req_end)
            arm_timer(s);
        else if (s->req_trailers.n)
            router_request_trailers(s);
        else
            router_request_end(s);
        return;
    }
    if (end)
        router_request_end(s);
    else
        arm_timer(s);
}

void router_start(pf_stream *s, bool end)
{
    pf_worker *w = s->w;
    s->ucs = &w->ps->clusters[s->cluster];
    stats_inc(w->stats, s->ucs->rq_total);
    s->keep_body = retry_policy(s) != NULL;
    if (s->route && s->route->mirrored)
        mirror_begin(s);
    attempt(s, end, false);
}

void router_request_data(pf_stream *s, const char *p, size_t n)
{
    if (s->up && n) {
        retry_keep_body(s, p, n);
        s->uproto->data(s, p, n);
    }
}

/* The whole request is on its way: the route timeout starts now (Envoy). */
static void request_done(pf_stream *s)
{
    uint64_t now = uv_now(&s->w->loop);
    /* The route timeout covers every attempt: set once, on the first. */
    if (!s->route_deadline_ms) {
        uint64_t t = s->route ? s->route->timeout_ms : 0;
        /* A gRPC client's own deadline bounds the route timeout. */
        uint64_t g = grpc_timeout_ms(s);
        if (g && (!t || g < t))
            t = g;
        s->route_deadline_ms = t ? now + t : 0;
    }
    const cfg_retry_policy *rp = retry_policy(s);
    s->try_deadline_ms = rp && rp->per_try_timeout_ms ? now + rp->per_try_timeout_ms : 0;
    arm_timer(s);
    if (s->mirror_mask)
        mirror_send(s);         /* the main request went first; the shadows never pace it */
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
    retry_release(s);
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

/* A pending request stops being pending. */
static void pending_done(pf_stream *s)
{
    s->connect_deadline_ms = 0;
    if (!s->pending)
        return;
    s->pending = false;
    pf_breakers_add(&s->w->clusters[s->cluster], true, -1);
    stats_gauge_add(s->w->stats, s->ucs->rq_pending_active, -1);
}

void router_on_connected(pf_stream *s)
{
    pending_done(s);
    arm_timer(s);
}

void router_detached(pf_stream *s)
{
    stats_gauge_add(s->w->stats, s->ucs->rq_active, -1);
    PF_HC_ADD(s->uhc->rq_active, -1);
    pending_done(s);
    pf_breakers_add(&s->w->clusters[s->cluster], false, -1);
    s->up = NULL;
    /* The route deadline stays: a retry may follow within it. */
    s->connect_deadline_ms = s->try_deadline_ms = 0;
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

void router_on_response_headers(pf_stream *s, bool end)
{
    int st = s->status;
    stats_shard *sh = s->w->stats;
    pf_outlier_report(s->w, &s->w->clusters[s->cluster], s->uhc, st);
    if (st >= 100 && st < 600) {
        stats_inc(sh, s->ucs->rq_code_base + (stat_id)(st - 100));
        stats_inc(sh, s->ucs->rq_xx[st / 100 - 1]);
    }
    retry_release(s);
    if (retry_on_response(s)) {
        bool overflow = false;
        if (retry_possible(s)) {
            if (retry_admit(s)) {
                PF_HC_ADD(s->uhc->rq_error, 1);
                if (s->up)
                    s->uproto->abort(s);    /* this answer is dropped: try again */
                schedule_retry(s);
                return;
            }
            overflow = true;
        }
        if (s->retries_done && !overflow) {
            s->response_flags |= PF_RF_URX;
            stats_inc(sh, s->ucs->rq_retry_limit_exceeded);
        }
    } else if (s->retries_done) {
        stats_inc(sh, s->ucs->rq_retry_success);
    }
    if (st >= 500)
        PF_HC_ADD(s->uhc->rq_error, 1);
    else
        PF_HC_ADD(s->uhc->rq_success, 1);
    if (end)
        stats_record(sh, s->ucs->rq_time, (uv_hrtime() - s->upstream_start_ns) / 1000);
    hcm_encode_headers(s, end);
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
    if (s->ucs && s->uhc)
        pf_outlier_report(s->w, &s->w->clusters[s->cluster], s->uhc,
                          flag & PF_RF_UF ? PF_OD_CONNECT_FAILED : PF_OD_RESET);
    retry_release(s);
    bool retriable = s->ucs && retry_on_failure(s, flag, strstr(reason, "refused") != NULL);
    bool overflow = false;
    if (retriable && retry_possible(s)) {
        if (retry_admit(s)) {
            PF_HC_ADD(s->uhc->rq_error, 1);
            schedule_retry(s);
            return;
        }
        overflow = true;
        flag |= PF_RF_UO;
    }
    if (retriable && s->retries_done && !overflow) {
        flag |= PF_RF_URX;
        stats_inc(s->w->stats, s->ucs->rq_retry_limit_exceeded);
    }
    if (s->ucs) {
        PF_HC_ADD(s->uhc->rq_error, 1);
        if (flag & PF_RF_UC)
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
    router_cx_wait_wake_all(p);     /* they pick a host of the current set */
    p->cluster = NULL;
    if (p->n_active == 0)
        pf_pool_free(p);
}
