#include "proxy/hcm.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "proxy/access_log.h"
#include "admin/stats.h"
#include "filters/filter.h"
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

/* Data moved on s: the stream idle timeout restarts (a store, no timer). */
static inline void stream_touch(pf_stream *s)
{
    s->last_active_ms = uv_now(&s->w->loop);
}

pf_str hcm_server_name(const cfg_hcm *h, bool upstream_has_one)
{
    const cfg_hcm_options *o = &h->opts;
    if (o->server_header == CFG_SERVER_PASS_THROUGH ||
        (o->server_header == CFG_SERVER_APPEND_IF_ABSENT && upstream_has_one))
        return (pf_str){ NULL, 0 };
    return o->server_name ? (pf_str){ o->server_name, o->server_name_len } : PF_STR("envoy");
}

/* The response headers leave for the codec: Envoy's connection manager sets
 * the Server header last (server_name, server_header_transformation). */
static void send_headers(pf_stream *s, bool end)
{
    const cfg_hcm_options *o = &s->hcm->opts;
    if (o->server_header == CFG_SERVER_OVERWRITE)
        pf_hdrs_remove_lit(&s->resp_hdrs, "server");
    pf_str name = hcm_server_name(s->hcm, pf_hdrs_get_lit(&s->resp_hdrs, "server") != NULL);
    if (name.p)
        pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("server"), name);
    s->resp_headers_sent = true;
    s->codec->encode_headers(s, end);
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

/* Frees s, unless a filter chain call is on the stack: the chain frees it
 * when it unwinds (filters/filter.h). */
static void stream_release(pf_stream *s)
{
    if (s->fc && !pf_filter_chain_release(s->fc))
        return;
    pf_stream_free(s);
}

static void stream_finish(pf_stream *s)
{
    if (!s->internal) {
        record_stream_stats(s);
        access_log(s);
        pf_access_log_emit(s);
    }
    s->codec->stream_done(s);
    stream_release(s);
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
    if (!s->internal) {
        record_stream_stats(s);
        access_log(s);
        pf_access_log_emit(s);
    }
    stream_release(s);
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
    if (s->fc) {
        pf_filter_encode_headers(s->fc, true);
        return;
    }
    send_headers(s, true);
    s->resp_end = true;
    hcm_maybe_finish(s);
}

/* Sends a complete local response; body may hold NULs (len given). */
static void local_reply(pf_stream *s, int status, const char *body, size_t blen, uint32_t flags)
{
    s->response_flags |= flags;
    if (s->up)
        router_abort(s);
    if (s->resp_headers_sent || (s->fc && pf_filter_encoding(s->fc))) {
        s->codec->reset(s);         /* too late to answer: cut the stream */
        return;
    }
    s->resp_hdrs = (pf_hdrs){ 0 };
    if (grpc_is_request(s) && !s->internal) {
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
    route_action_apply_response(s);         /* Location, Set-Cookie, *_headers_to_add */
    if (s->fc) {
        /* The body may live on the caller's stack: the chain copies what it holds. */
        s->bytes_sent += blen;
        if (pf_filter_encode_headers(s->fc, blen == 0) && blen)
            pf_filter_encode_data(s->fc, body, blen, true);
        return;
    }
    send_headers(s, blen == 0);
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
    stream_touch(s);
    if (s->internal) {
        s->resp_headers_sent = true;
        s->codec->encode_headers(s, end);
        if (end) {
            s->resp_end = true;
            hcm_maybe_finish(s);
        }
        return;
    }
    pf_hdrs_strip_hop_by_hop(&s->resp_hdrs);
    pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("x-envoy-upstream-service-time"),
                pf_arena_u64(&s->arena, uv_now(&s->w->loop) - s->upstream_start_ms));
    if (s->fc) {
        /* Route response mutations belong to the router (before the filters);
         * the server header to the connection manager (after them). */
        route_action_apply_response(s);
        pf_filter_encode_headers(s->fc, end);
        return;
    }
    route_action_apply_response(s);         /* Set-Cookie, response_headers_to_add/remove */
    send_headers(s, end);
    if (end) {
        s->resp_end = true;
        hcm_maybe_finish(s);
    }
}

void hcm_encode_data(pf_stream *s, const char *p, size_t n, bool end)
{
    stream_touch(s);
    s->bytes_sent += n;
    if (s->fc) {
        pf_filter_encode_data(s->fc, p, n, end);
        return;
    }
    s->codec->encode_data(s, p, n, end);
    if (end) {
        s->resp_end = true;
        hcm_maybe_finish(s);
    }
}

void hcm_encode_trailers(pf_stream *s)
{
    stream_touch(s);
    pf_hdrs_strip_hop_by_hop(&s->resp_trailers);
    if (s->fc) {
        pf_filter_encode_trailers(s->fc);
        return;
    }
    s->codec->encode_trailers(s);
    s->resp_end = true;
    hcm_maybe_finish(s);
}

/* ---- the filter chain's terminals (filters/filter_chain.c) ---- */

void hcm__send_headers(pf_stream *s, bool end)
{
    send_headers(s, end);
    if (end) {
        s->resp_end = true;
        hcm_maybe_finish(s);
    }
}

void hcm__send_data(pf_stream *s, const char *p, size_t n, bool end)
{
    s->codec->encode_data(s, p, n, end);
    if (end) {
        s->resp_end = true;
        hcm_maybe_finish(s);
    }
}

void hcm__send_trailers(pf_stream *s)
{
    s->codec->encode_trailers(s);
    s->resp_end = true;
    hcm_maybe_finish(s);
}

void hcm__reply_unfiltered(pf_stream *s, int status, const char *body)
{
    router_abort(s);
    if (s->resp_headers_sent) {
        s->codec->reset(s);
        return;
    }
    size_t blen = strlen(body);
    s->resp_hdrs = (pf_hdrs){ 0 };
    s->status = status;
    char cl[24];
    int cln = snprintf(cl, sizeof cl, "%zu", blen);
    pf_str cls;
    pf_arena_dup(&s->arena, &cls, cl, (size_t)cln);
    pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("content-length"), cls);
    pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("content-type"), PF_STR("text/plain"));
    pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("date"), hcm_date(s->w));
    send_headers(s, false);
    s->codec->encode_data(s, body, blen, true);
    s->resp_end = true;
    hcm_maybe_finish(s);
}

void hcm__prepare_filter_reply(pf_stream *s, size_t blen)
{
    if (s->up)
        router_abort(s);
    if (!pf_hdrs_get_lit(&s->resp_hdrs, "content-length") && (blen || !s->is_head)) {
        char cl[24];
        int cln = snprintf(cl, sizeof cl, "%zu", blen);
        pf_str cls;
        pf_arena_dup(&s->arena, &cls, cl, (size_t)cln);
        pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("content-length"), cls);
    }
    if (!pf_hdrs_get_lit(&s->resp_hdrs, "date"))
        pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("date"), hcm_date(s->w));
    s->bytes_sent += blen;
}

void hcm_on_downstream_drain(pf_stream *s)
{
    router_downstream_drained(s);
}

/* ---- request path ---- */

hcm_hdr_verdict hcm_check_header(const pf_stream *s, const pf_hdrs *into, pf_str name)
{
    const cfg_hcm_options *o = &s->hcm->opts;
    /* max_headers_count is >= 1 in loaded configs; 0 (hand-built): no limit */
    if (o->max_headers_count && into->n >= o->max_headers_count)
        return HCM_HDR_TOO_MANY;
    if (o->underscores != CFG_UNDERSCORES_ALLOW && memchr(name.p, '_', name.n))
        return o->underscores == CFG_UNDERSCORES_DROP ? HCM_HDR_DROP : HCM_HDR_REJECT;
    return HCM_HDR_ADD;
}

/* 16 lower-case hex digits of v, most significant first. */
static void hex_u64(uint64_t v, char *out)
{
    static const char pairs[513] =
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
        "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
        "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
        "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
        "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
    for (int i = 7; i >= 0; i--, v >>= 8)
        memcpy(out + 2 * i, pairs + 2 * (v & 0xff), 2);
}

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
    /* 8-4-4-4-12 hex digits from the 128 random bits: a byte at a time
     * through a pair table (no snprintf, no per-digit loop: hot path). */
    char t[32];
    hex_u64(a, t);
    hex_u64(b, t + 16);
    memcpy(id, t, 8);
    id[8] = '-';
    memcpy(id + 9, t + 8, 4);
    id[13] = '-';
    memcpy(id + 14, t + 12, 4);
    id[18] = '-';
    memcpy(id + 19, t + 16, 4);
    id[23] = '-';
    memcpy(id + 24, t + 20, 12);
    pf_hdrs_add(&s->req_hdrs, &s->arena, PF_STR("x-request-id"), (pf_str){ id, 36 });
}

/* Envoy's request headers around the route's own rewrites and header
 * mutations (proxy/route_action.c), in Envoy's order: the connection
 * manager's x-forwarded-proto and x-request-id first, so %REQ()% sees them. */
static void prepare_upstream_request(pf_stream *s)
{
    const cfg_route *r = s->route;
    hcm__request_headers(s);        /* once: with filters, done before them */
    add_request_id(s);
    route_action_apply_request(s);
    pf_hdrs_remove_lit(&s->req_hdrs, "x-envoy-expected-rq-timeout-ms");
    if (r->timeout_ms)
        pf_hdrs_add(&s->req_hdrs, &s->arena, PF_STR("x-envoy-expected-rq-timeout-ms"),
                    pf_arena_u64(&s->arena, r->timeout_ms));
}

static void mark_request_end(pf_stream *s)
{
    s->req_end = true;
    s->req_end_ms = uv_now(&s->w->loop);
}

/* The request headers reached the router (directly, or as the terminal of
 * the filter chain): answer locally or forward. */
static void route_request(pf_stream *s, bool end, route_outcome outcome)
{
    const cfg_route *r;
    switch (outcome) {
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

void hcm__route_request(pf_stream *s, bool end)
{
    route_request(s, end, (route_outcome)pf_filter_route_outcome(s->fc));
}

void hcm__request_data(pf_stream *s, const char *p, size_t n, bool end)
{
    if (n)
        router_request_data(s, p, n);
    if (end) {
        router_request_end(s);
        hcm_maybe_finish(s);
    }
}

void hcm__request_trailers(pf_stream *s)
{
    router_request_trailers(s);
}

void hcm_on_request_headers(pf_stream *s, bool end)
{
    stream_touch(s);
    if (end)
        mark_request_end(s);
    if (s->hcm->n_filters > 1) {
        /* Envoy's connection manager headers come before the filters; the
         * route is chosen now (per-route filter configs) and acted on when
         * the request reaches the router. */
        route_outcome o = route_action_select(s);
        hcm__route_timeouts(s);
        hcm__request_headers(s);
        add_request_id(s);
        if ((s->fc = pf_filter_chain_new(s, (int)o)) != NULL) {
            pf_filter_decode_headers(s->fc, end);
            return;
        }
        route_request(s, end, o);
        return;
    }
    route_outcome o = route_action_select(s);
    hcm__route_timeouts(s);
    route_request(s, end, o);
}

void hcm_on_request_data(pf_stream *s, const char *p, size_t n)
{
    stream_touch(s);
    if (s->fc) {
        pf_filter_decode_data(s->fc, p, n, false);
        return;
    }
    router_request_data(s, p, n);
}

void hcm_on_request_trailers(pf_stream *s)
{
    stream_touch(s);
    mark_request_end(s);
    if (s->fc) {
        pf_filter_decode_trailers(s->fc);
        return;
    }
    router_request_trailers(s);
}

void hcm_on_request_end(pf_stream *s)
{
    stream_touch(s);
    mark_request_end(s);
    if (s->fc) {
        pf_filter_decode_data(s->fc, NULL, 0, true);
        return;
    }
    router_request_end(s);
    hcm_maybe_finish(s);
}
