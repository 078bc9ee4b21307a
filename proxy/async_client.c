/* Internal HTTP requests through the router (see proxy/async_client.h). */
#include "proxy/async_client.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/hcm.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"

#define ASYNC_BODY_MAX (8u << 20)

struct pf_async_call {
    pf_queue link;                  /* w->async_calls */
    pf_worker *w;
    pf_stream *s;                   /* NULL once the stream ended */
    uv_timer_t timer;
    bool timer_armed;
    pf_deferred done;
    pf_async_done cb;
    void *arg;
    bool finished;                  /* result known; callback deferred */
    int status;
    pf_hdr *hdrs;                   /* malloc'd copies */
    size_t n_hdrs;
    char *body;
    size_t body_len, body_cap;
};

static void on_timer_closed(uv_handle_t *h)
{
    pf_async_call *c = h->data;
    for (size_t i = 0; i < c->n_hdrs; i++) {
        free((char *)c->hdrs[i].name.p);
        free((char *)c->hdrs[i].value.p);
    }
    free(c->hdrs);
    free(c->body);
    free(c);
}

static void call_free(pf_async_call *c)
{
    pf_queue_remove(&c->link);
    pf_worker_cancel_defer(c->w, &c->done);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

static void on_done(pf_deferred *d)
{
    pf_async_call *c = (pf_async_call *)((char *)d - offsetof(pf_async_call, done));
    pf_async_response r = { c->status, c->hdrs, c->n_hdrs, c->body, c->body_len };
    pf_async_done cb = c->cb;
    void *arg = c->arg;
    call_free(c);
    if (cb)
        cb(arg, &r);
}

static void finish(pf_async_call *c)
{
    if (c->finished)
        return;
    c->finished = true;
    c->s = NULL;
    uv_timer_stop(&c->timer);
    pf_worker_defer(c->w, &c->done);
}

/* ---- the capturing codec ---- */

static void a_encode_headers(pf_stream *s, bool end)
{
    pf_async_call *c = s->codec_conn;
    c->status = s->status;
    c->hdrs = calloc(s->resp_hdrs.n ? s->resp_hdrs.n : 1, sizeof *c->hdrs);
    if (!c->hdrs)
        return;
    for (uint32_t i = 0; i < s->resp_hdrs.n; i++) {
        const pf_hdr *h = &s->resp_hdrs.v[i];
        char *n = strndup(h->name.p, h->name.n), *v = strndup(h->value.p, h->value.n);
        if (!n || !v) {
            free(n);
            free(v);
            break;
        }
        c->hdrs[c->n_hdrs++] = (pf_hdr){ { n, h->name.n }, { v, h->value.n } };
    }
    (void)end;
}

static void a_encode_1xx(pf_stream *s, int status, const pf_hdrs *h)
{
    (void)s, (void)status, (void)h;
}

static void a_encode_data(pf_stream *s, const char *p, size_t n, bool end)
{
    pf_async_call *c = s->codec_conn;
    (void)end;
    if (!n || c->body_len + n > ASYNC_BODY_MAX)
        return;
    if (c->body_len + n > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap * 2 : 4096;
        while (cap < c->body_len + n)
            cap *= 2;
        char *nb = realloc(c->body, cap);
        if (!nb)
            return;
        c->body = nb;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, p, n);
    c->body_len += n;
}

static void a_encode_trailers(pf_stream *s)
{
    (void)s;
}

static void a_reset(pf_stream *s)
{
    pf_async_call *c = s->codec_conn;
    c->status = 0;
    finish(c);
    hcm_on_stream_reset(s, 0);
}

static void a_pause(pf_stream *s, bool pause)
{
    (void)s, (void)pause;
}

static bool a_write_blocked(pf_stream *s)
{
    (void)s;
    return false;
}

static void a_stream_done(pf_stream *s)
{
    finish(s->codec_conn);
}

static const pf_server_codec_ops async_codec = {
    a_encode_headers, a_encode_1xx, a_encode_data, a_encode_trailers,
    a_reset, a_pause, a_write_blocked, a_stream_done,
};

/* ---- API ---- */

pf_async_call *pf_async_call_new(pf_worker *w, const cfg_listener *l, size_t cluster)
{
    pf_async_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->w = w;
    if (!(c->s = pf_stream_new(w, &async_codec, c, l))) {
        free(c);
        return NULL;
    }
    c->s->internal = true;
    c->s->cluster = cluster;
    c->s->protocol = PF_STR("HTTP/1.1");
    c->s->scheme = PF_STR("http");
    uv_timer_init(&w->loop, &c->timer);
    c->timer.data = c;
    pf_queue_init(&c->done.link);
    c->done.fn = on_done;
    pf_queue_insert_tail(&w->async_calls, &c->link);
    return c;
}

pf_stream *pf_async_call_stream(pf_async_call *c)
{
    return c->s;
}

/* Drops the internal stream (timeout, cancel). */
static void drop_stream(pf_async_call *c)
{
    pf_stream *s = c->s;
    c->status = 0;
    finish(c);
    if (s)
        hcm_on_stream_reset(s, 0);
}

static void on_timeout(uv_timer_t *t)
{
    drop_stream(t->data);
}

/* Starts the exchange.  Returns false when nothing more may be sent: the
 * request ended with its head (end) or was answered locally at once. */
static bool send_head(pf_async_call *c, bool end, uint64_t timeout_ms, pf_async_done cb,
                      void *arg)
{
    c->cb = cb;
    c->arg = arg;
    pf_stream *s = c->s;
    if (timeout_ms)
        uv_timer_start(&c->timer, on_timeout, timeout_ms, 0);
    s->req_headers_done = true;
    if (end)
        s->req_end = true;
    router_start(s, end);
    return !end && c->s;
}

/* Ends the request, with the stream's req_trailers when it has any. */
static void send_end(pf_async_call *c)
{
    pf_stream *s = c->s;
    s->req_end = true;
    if (s->req_trailers.n)
        router_request_trailers(s);
    else
        router_request_end(s);
}

void pf_async_call_send(pf_async_call *c, const char *body, size_t len, uint64_t timeout_ms,
                        pf_async_done cb, void *arg)
{
    pf_stream *s = c->s;
    if (len) {
        char cl[24];
        int n = snprintf(cl, sizeof cl, "%zu", len);
        pf_str v;
        if (pf_arena_dup(&s->arena, &v, cl, (size_t)n) == 0) {
            pf_hdrs_remove_lit(&s->req_hdrs, "content-length");
            pf_hdrs_add(&s->req_hdrs, &s->arena, PF_STR("content-length"), v);
        }
    }
    if (!send_head(c, len == 0, timeout_ms, cb, arg))
        return;
    router_request_data(s, body, len);
    if (c->s)
        send_end(c);
}

void pf_async_call_send_outq(pf_async_call *c, const pf_outq *body, uint64_t timeout_ms,
                             pf_async_done cb, void *arg)
{
    if (!send_head(c, body->bytes == 0 && c->s->req_trailers.n == 0, timeout_ms, cb, arg))
        return;
    for (const pf_chunk *ch = body->head; ch && c->s; ch = ch->next)
        if (ch->end > ch->start)
            router_request_data(c->s, ch->data + ch->start, ch->end - ch->start);
    if (c->s)
        send_end(c);
}

void pf_async_call_cancel(pf_async_call *c)
{
    c->cb = NULL;
    if (c->s)
        drop_stream(c);
}

void pf_async_calls_abort(pf_worker *w)
{
    while (!pf_queue_empty(&w->async_calls)) {
        pf_async_call *c = pf_queue_data(w->async_calls.next, pf_async_call, link);
        c->cb = NULL;
        if (c->s)
            drop_stream(c);
        call_free(c);
    }
}
