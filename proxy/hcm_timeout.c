/* The connection manager's stream timeouts (proxy/hcm.h): deadlines kept
 * as timestamps in the stream, checked when the connection's timer fires
 * (proxy/downstream.c), acted on with Envoy's local replies and stats. */
#include "proxy/hcm.h"

#include "admin/stats.h"
#include "proxy/downstream.h"
#include "proxy/proxy_stats.h"
#include "proxy/worker.h"

static uint64_t min_due(uint64_t a, uint64_t b) { return a < b ? a : b; }

void hcm_stream_started(pf_stream *s, pf_dconn *dc)
{
    s->dconn = dc;
    s->last_active_ms = s->start_ms;
    s->idle_timeout_ms = s->hcm->opts.stream_idle_timeout_ms;
    pf_dconn_set_idle(dc, false);
    pf_dconn_arm(dc, hcm_stream_deadline(s));
}

void hcm__route_timeouts(pf_stream *s)
{
    const cfg_route *r = s->route;
    if (!r || !r->has_idle_timeout)
        return;
    /* Envoy: the route's idle_timeout overrides the HCM's; 0 disables it. */
    s->idle_timeout_ms = r->idle_timeout_ms;
    if (s->dconn)
        pf_dconn_arm(s->dconn, hcm_stream_deadline(s));
}

uint64_t hcm_stream_deadline(const pf_stream *s)
{
    const cfg_hcm_options *o = &s->hcm->opts;
    uint64_t due = UINT64_MAX;
    if (s->idle_timeout_ms)
        due = s->last_active_ms + s->idle_timeout_ms;
    if (o->request_headers_timeout_ms && !s->req_headers_done)
        due = min_due(due, s->start_ms + o->request_headers_timeout_ms);
    /* Envoy disarms request_timeout once the request is complete or the
     * response has started. */
    if (o->request_timeout_ms && !s->req_end && !s->resp_headers_sent)
        due = min_due(due, s->start_ms + o->request_timeout_ms);
    if (o->max_stream_duration_ms)
        due = min_due(due, s->start_ms + o->max_stream_duration_ms);
    return due;
}

void hcm_stream_expire(pf_stream *s, uint64_t now)
{
    const cfg_hcm_options *o = &s->hcm->opts;
    const pf_listener_stats *ls = &s->w->ps->chains[s->hcm->index];
    stat_id st;
    const char *body;
    uint32_t flags = 0;
    if (o->request_headers_timeout_ms && !s->req_headers_done &&
        now >= s->start_ms + o->request_headers_timeout_ms) {
        st = ls->rq_header_timeout;
        body = "request header timeout";
    } else if (o->request_timeout_ms && !s->req_end && !s->resp_headers_sent &&
               now >= s->start_ms + o->request_timeout_ms) {
        st = ls->rq_timeout;
        body = "request timeout";
    } else if (o->max_stream_duration_ms && now >= s->start_ms + o->max_stream_duration_ms) {
        st = ls->rq_max_duration_reached;
        body = "downstream duration timeout";
    } else if (s->idle_timeout_ms && now >= s->last_active_ms + s->idle_timeout_ms) {
        st = ls->rq_idle_timeout;
        body = "stream timeout";
        flags = PF_RF_SI;
    } else {
        return;
    }
    stats_inc(s->w->stats, st);
    /* Envoy's maybeRequestTimeoutCode: 504 once the whole request was
     * received (the client may reuse an HTTP/1.1 connection), else 408.
     * After the response started the local reply becomes a reset. */
    hcm_local_reply(s, s->req_end ? 504 : 408, body, flags);
}
