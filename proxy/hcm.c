#include "proxy/hcm.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "proxy/access_log.h"
#include "admin/stats.h"
#include "proxy/grpc.h"
#include "proxy/log.h"
#include "proxy/proxy_stats.h"
#include "proxy/route_action.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"

pf_str hcm_date(pf_worker *w)
{
    static __thread char buf[40];
    static __thread time_t cached;
    time_t now = time(NULL);
    if (now != cached) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached = now;
    }
    (void)w;
    return (pf_str){ buf, strlen(buf) };
}

static void access_log(pf_stream *s)
{
    if (pf_log_level > PF_LOG_DEBUG)
        return;
    char flags[64];
    pf_stream_flags_str(s->response_flags, flags, sizeof flags);
    pf_debug("access: \"%.*s %.*s\" %d %s %llums", (int)s->method.n, s->method.p, (int)s->path.n,
             s->path.p, s->status, flags,
             (unsigned long long)(uv_now(&s->w->loop) - s->start_ms));
}

/* Downstream request stats, once per stream however it ended. */
static void record_stream_stats(pf_stream *s)
{
    stats_shard *sh = s->w->stats;
    const pf_listener_stats *ls = &s->w->ps->chains[s->hcm->index];
    stats_gauge_add(sh, ls->rq_active, -1);
    if (s->status >= 100 && s->status < 600 && s->resp_headers_sent)
        stats_inc(sh, ls->rq_xx[s->status / 100 - 1]);
    stats_record(sh, ls->rq_time, (uv_hrtime() - s->start_ns) / 1000);
    stats_add(sh, ls->rx_bytes_total, s->bytes_received);
    stats_add(sh, ls->tx_bytes_total, s->bytes_sent);
}

static void stream_finish(pf_stream *s)
{
    record_stream_stats(s);
    access_log(s);
    pf_access_log_emit(s);
    s->codec->stream_done(s);
    pf_stream_free(s);
}

void hcm_maybe_finish(pf_stream *s)
{
    if (!s->resp_end)
        return;
    /* A response that ended before its request (local reply, early upstream
     * answer): the rest of the request is abandoned; the codec closes the
     * connection if it was still arriving. */
    if (!s->req_end)
        s->req_abandoned = true;
    s->req_end = true;
    if (s->up)
        router_abort(s);
    stream_finish(s);
}

void hcm_on_stream_reset(pf_stream *s, uint32_t flags)
{
    s->response_flags |= flags;
    router_abort(s);
    record_stream_stats(s);
    access_log(s);
    pf_access_log_emit(s);
    pf_stream_free(s);
}

/* ---- local replies ---- */

/* gRPC clients get a trailers-only response, as Envoy sends: HTTP 200 with
 * grpc-status and grpc-message, never an HTML/text error page. */
static void grpc_local_reply(pf_stream *s, int status, const char *body, size_t blen)
{
    char st[8];
    int n = snprintf(st, sizeof st, "%d", grpc_status_for_local_reply(status, s->response_flags));
    pf_str sts;
    pf_arena_dup(&s->arena, &sts, st, (size_t)n);
    s->status = 200;
    pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("content-type"), PF_STR("application/grpc"));
    pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("grpc-status"), sts);
    if (blen)
        pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("grpc-message"),
                    grpc_encode_message(&s->arena, body, blen));
    pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("date"), hcm_date(s->w));
    pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("server"), PF_STR("envoy"));
    s->resp_headers_sent = true;
    s->codec->encode_headers(s, true);
    s->resp_end = true;
    hcm_maybe_finish(s);
}

/* Sends a complete local response; body may hold NULs (len given). */
static void local_reply(pf_stream *s, int status, const char *body, size_t blen, uint32_t flags)
{
    s->response_flags |= flags;
    if (s->up)
        router_abort(s);
    if (s->resp_headers_sent) {
        s->codec->reset(s);         /* too late to answer: cut the stream */
        return;
    }
    s->resp_hdrs = (pf_hdrs){ 0 };
    if (grpc_is_request(s)) {
        grpc_local_reply(s, status, body, blen);
        return;
    }
    char cl[24];
    int cln = snprintf(cl, sizeof cl, "%zu", blen);
    pf_str cls;
    pf_arena_dup(&s->arena, &cls, cl, (size_t)cln);
    s->status = status;
    pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("content-length"), cls);
    if (blen)
        pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("content-type"), PF_STR("text/plain"));
    pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("date"), hcm_date(s->w));
    pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("server"), PF_STR("envoy"));
    route_action_apply_response(s);         /* Location, Set-Cookie, *_headers_to_add */
    s->resp_headers_sent = true;
    s->codec->encode_headers(s, blen == 0);
    s->bytes_sent += blen;
    if (blen)
        s->codec->encode_data(s, body, blen, true);
    s->resp_end = true;
    hcm_maybe_finish(s);
}

void hcm_local_reply(pf_stream *s, int status, const char *body, uint32_t flags)
{
    local_reply(s, status, body, body ? strlen(body) : 0, flags);
}

/* ---- response path ---- */

void hcm_encode_headers(pf_stream *s, bool end)
{
    pf_hdrs_strip_hop_by_hop(&s->resp_hdrs);
    pf_hdrs_remove_lit(&s->resp_hdrs, "server");
    char t[24];
    int n = snprintf(t, sizeof t, "%llu",
                     (unsigned long long)(uv_now(&s->w->loop) - s->upstream_start_ms));
    pf_str ts;
    pf_arena_dup(&s->arena, &ts, t, (size_t)n);
    pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("x-envoy-upstream-service-time"), ts);
    pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("server"), PF_STR("envoy"));
    route_action_apply_response(s);         /* Set-Cookie, response_headers_to_add/remove */
    s->resp_headers_sent = true;
    s->codec->encode_headers(s, end);
    if (end) {
        s->resp_end = true;
        hcm_maybe_finish(s);
    }
}

void hcm_encode_data(pf_stream *s, const char *p, size_t n, bool end)
{
    s->bytes_sent += n;
    s->codec->encode_data(s, p, n, end);
    if (end) {
        s->resp_end = true;
        hcm_maybe_finish(s);
    }
}

void hcm_encode_trailers(pf_stream *s)
{
    pf_hdrs_strip_hop_by_hop(&s->resp_trailers);
    s->codec->encode_trailers(s);
    s->resp_end = true;
    hcm_maybe_finish(s);
}

void hcm_on_downstream_drain(pf_stream *s)
{
    router_downstream_drained(s);
}

/* ---- request path ---- */

static void add_request_id(pf_stream *s)
{
    if (pf_hdrs_get_lit(&s->req_hdrs, "x-request-id"))
        return;
    uint64_t a = pf_worker_random(s->w), b = pf_worker_random(s->w);
    a = (a & ~0xf000ull) | 0x4000ull;                   /* version 4 */
    b = (b & ~(3ull << 62)) | (2ull << 62);             /* RFC 4122 variant */
    char *id = pf_arena_alloc(&s->arena, 36);
    if (!id)
        return;
    /* 8-4-4-4-12 hex digits from the 128 random bits (no snprintf: hot path) */
    static const char hex[] = "0123456789abcdef";
    int bit = 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            id[i] = '-';
            continue;
        }
        uint64_t word = bit < 64 ? a : b;
        id[i] = hex[(word >> (60 - (bit & 63))) & 0xf];
        bit += 4;
    }
    pf_hdrs_add(&s->req_hdrs, &s->arena, PF_STR("x-request-id"), (pf_str){ id, 36 });
}

/* Envoy's request headers around the route's own rewrites and header
 * mutations (proxy/route_action.c), in Envoy's order: the connection
 * manager's x-forwarded-proto and x-request-id first, so %REQ()% sees them. */
static void prepare_upstream_request(pf_stream *s)
{
    const cfg_route *r = s->route;
    if (!pf_hdrs_get_lit(&s->req_hdrs, "x-forwarded-proto"))
        pf_hdrs_add(&s->req_hdrs, &s->arena, PF_STR("x-forwarded-proto"), s->scheme);
    add_request_id(s);
    route_action_apply_request(s);
    pf_hdrs_remove_lit(&s->req_hdrs, "x-envoy-expected-rq-timeout-ms");
    if (r->timeout_ms) {
        char t[24];
        int n = snprintf(t, sizeof t, "%llu", (unsigned long long)r->timeout_ms);
        pf_str ts;
        if (pf_arena_dup(&s->arena, &ts, t, (size_t)n) == 0)
            pf_hdrs_add(&s->req_hdrs, &s->arena, PF_STR("x-envoy-expected-rq-timeout-ms"), ts);
    }
}

static void mark_request_end(pf_stream *s)
{
    s->req_end = true;
    s->req_end_ms = uv_now(&s->w->loop);
}

void hcm_on_request_headers(pf_stream *s, bool end)
{
    if (end)
        mark_request_end(s);
    const cfg_route *r;
    switch (route_action_select(s)) {
    case ROUTE_NOT_FOUND:
        stats_inc(s->w->stats, s->w->ps->chains[s->hcm->index].no_route);
        hcm_local_reply(s, 404, NULL, PF_RF_NR);
        return;
    case ROUTE_DIRECT:
        r = s->route;
        local_reply(s, r->direct_status, r->direct_body, r->direct_body_len, 0);
        return;
    case ROUTE_REDIRECT:
        local_reply(s, s->route->redirect.code, NULL, 0, 0);
        return;
    case ROUTE_NO_CLUSTER:
        r = s->route;
        hcm_local_reply(s, r->cluster_not_found_code ? r->cluster_not_found_code : 503, NULL,
                        PF_RF_NC);
        return;
    case ROUTE_FORWARD:
        break;
    }
    prepare_upstream_request(s);
    router_start(s, end);
}

void hcm_on_request_data(pf_stream *s, const char *p, size_t n)
{
    router_request_data(s, p, n);
}

void hcm_on_request_trailers(pf_stream *s)
{
    mark_request_end(s);
    router_request_trailers(s);
}

void hcm_on_request_end(pf_stream *s)
{
    mark_request_end(s);
    router_request_end(s);
    hcm_maybe_finish(s);
}
