/* HTTP/2 to upstream hosts (nghttp2 client sessions).
 *
 * Streams share a connection up to the peer's SETTINGS_MAX_CONCURRENT_STREAMS
 * (capped by the cluster's max_concurrent_streams); beyond that a new
 * connection is opened.  Output of every session is produced once per loop
 * iteration (a pf_deferred), so many streams' frames leave in one write.
 * Backpressure: a stream whose downstream is full stops the connection's
 * reads (as Envoy's readDisable does), which stops window updates too; a
 * request body waits in the stream's queue and is pulled by nghttp2's data
 * provider as the flow-control window allows. */
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/stats.h"
#include "proxy/breakers.h"
#include "proxy/host_stats.h"
#include "proxy/log.h"
#include "proxy/proxy_stats.h"
#include "proxy/sock.h"
#include "proxy/tls.h"
#include "proxy/upstream.h"
#include "proxy/upstream_conn.h"
#include "proxy/worker.h"

typedef struct h2conn {
    pf_sock *sock;                  /* own allocation: an ALPN probe may hand it over */
    pf_pool *pool;
    pf_queue link;                  /* in pool->h2conns */
    pf_queue streams;               /* h2us.link: streams nghttp2 still knows */
    nghttp2_session *ng;
    pf_deferred flush;
    const pf_cluster_stats *cs;
    pf_host_counters *hc;
    uint64_t connect_start_ns;
    uint64_t sni_key;               /* auto_sni: which requests it may carry (upstream_conn.h) */
    size_t n_streams, n_blocked;    /* open streams; streams whose downstream is full */
    uint32_t max_streams;
    bool connecting, goaway, closing;
} h2conn;

typedef struct h2us {
    pf_queue link;                  /* in c->streams */
    h2conn *c;
    pf_stream *s;                   /* NULL once detached (the nghttp2 stream may live on) */
    int32_t id;
    pf_outq body;                   /* request body waiting for the flow-control window */
    nghttp2_nv *trailers;           /* request trailers (stream arena), sent after the body */
    size_t n_trailers;
    bool body_end, has_trailers, deferred, blocked, in_trailers, interim;
} h2us;

static void conn_fail(h2conn *c, uint32_t flag, const char *reason);

static pf_chunk_pool *chunks_of(h2conn *c)
{
    return &c->sock->w->chunks;
}

/* ---- output ---- */

static void on_flush(pf_deferred *d)
{
    h2conn *c = pf_queue_data(d, h2conn, flush);
    if (c->closing || c->connecting)
        return;
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->ng, &data);
        if (n < 0) {
            conn_fail(c, PF_RF_UPE, "protocol error");
            return;
        }
        if (n == 0)
            break;
        pf_sock_write(c->sock, data, (size_t)n);
    }
    if (c->goaway && c->n_streams == 0 && !nghttp2_session_want_write(c->ng)) {
        c->closing = true;
        pf_sock_close(c->sock);
    }
}

static void schedule_flush(h2conn *c)
{
    pf_worker_defer(c->sock->w, &c->flush);
}

/* ---- stream end ---- */

/* Detaches the pf_stream from its HTTP/2 stream; the h2us lives on until
 * nghttp2 closes the stream. */
static pf_stream *us_detach(h2us *us)
{
    pf_stream *s = us->s;
    if (!s)
        return NULL;
    us->s = NULL;
    if (us->blocked) {
        us->blocked = false;
        if (--us->c->n_blocked == 0)
            pf_sock_read_start(us->c->sock);
    }
    router_detached(s);
    return s;
}

static void us_free(h2us *us)
{
    pf_queue_remove(&us->link);
    pf_outq_clear(&us->body, chunks_of(us->c));
    free(us);
}

/* ---- nghttp2 callbacks ---- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    h2us *us = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (us && us->s && !us->s->resp_first_byte_ms)
        us->s->resp_first_byte_ms = uv_now(&us->c->sock->w->loop);
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    h2us *us = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!us || !us->s)
        return 0;
    pf_stream *s = us->s;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
        int st = 0;
        for (size_t i = 0; i < vlen && i < 3; i++)
            st = st * 10 + (value[i] - '0');
        s->status = st;
        us->interim = st >= 100 && st < 200;
        return 0;
    }
    if (nlen && name[0] == ':')
        return 0;
    pf_str n, v;
    if (pf_arena_dup(&s->arena, &n, (const char *)name, nlen) ||
        pf_arena_dup(&s->arena, &v, (const char *)value, vlen))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    pf_hdrs_add(us->in_trailers ? &s->resp_trailers : &s->resp_hdrs, &s->arena, n, v);
    return 0;
}

static void finish_response(h2us *us)
{
    pf_stream *s = us_detach(us);
    if (s)
        router_on_response_end(s);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    h2conn *c = ud;
    if (f->hd.type == NGHTTP2_SETTINGS && !(f->hd.flags & NGHTTP2_FLAG_ACK)) {
        uint32_t peer = nghttp2_session_get_remote_settings(ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
        uint32_t cap = c->pool->cluster ? c->pool->cluster->cfg->h2_max_concurrent_streams : 1;
        c->max_streams = peer < cap ? peer : cap;
        return 0;
    }
    if (f->hd.type == NGHTTP2_GOAWAY) {
        c->goaway = true;
        return 0;
    }
    h2us *us = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!us || !us->s)
        return 0;
    pf_stream *s = us->s;
    bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (f->hd.type == NGHTTP2_HEADERS) {
        if (us->interim) {
            if (s->status != 100)
                s->codec->encode_1xx(s, s->status, &s->resp_hdrs);
            s->resp_hdrs.n = 0;
            us->interim = false;
            return 0;
        }
        if (!us->in_trailers) {
            us->in_trailers = true;
            if (end) {                  /* headers-only: keep it one frame downstream */
                router_on_response_headers(us_detach(us), true);
                return 0;
            }
            router_on_response_headers(s, false);
            if (!us->s)
                return 0;
        }
        if (end)
            finish_response(us);
    } else if (f->hd.type == NGHTTP2_DATA && end) {
        finish_response(us);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    h2conn *c = ud;
    h2us *us = nghttp2_session_get_stream_user_data(ng, id);
    if (!us || !us->s)
        return 0;
    if (!router_on_response_data(us->s, (const char *)data, len) && us->s && !us->blocked) {
        us->blocked = true;
        if (c->n_blocked++ == 0)
            pf_sock_read_stop(c->sock);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error, void *ud)
{
    h2conn *c = ud;
    h2us *us = nghttp2_session_get_stream_user_data(ng, id);
    if (!us)
        return 0;
    c->n_streams--;
    pf_breakers_cx_idle(c->pool);   /* a stream slot is free: wake a waiter */
    pf_stream *s = us_detach(us);
    us_free(us);
    if (s) {
        const char *why = error == NGHTTP2_REFUSED_STREAM ? "remote refused stream reset"
                                                          : "remote reset";
        router_on_upstream_error(s, PF_RF_UR, why);
    }
    return 0;
}

/* Data provider: the request body as the window allows. */
static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    h2us *us = src->ptr;
    size_t n = 0;
    uv_buf_t bufs[16];
    unsigned nb = pf_outq_peek(&us->body, bufs, 16);
    for (unsigned i = 0; i < nb && n < len; i++) {
        size_t k = bufs[i].len < len - n ? bufs[i].len : len - n;
        memcpy(buf + n, bufs[i].base, k);
        n += k;
    }
    pf_outq_consume(&us->body, chunks_of(us->c), n);
    if (us->s && us->s->req_paused_by_upstream && us->body.bytes <= PF_SOCK_LOW_WATERMARK)
        router_upstream_blocked(us->s, false);
    if (us->body.bytes == 0) {
        if (us->body_end) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            /* Trailers go from here: submitted earlier, nghttp2 would send
             * their HEADERS (END_STREAM) ahead of the queued DATA. */
            if (us->has_trailers && us->s &&
                nghttp2_submit_trailer(ng, id, us->trailers, us->n_trailers) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        } else if (n == 0) {
            us->deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    return (ssize_t)n;
}

/* ---- socket events ---- */

/* Every attached stream learns of the failure; the h2us themselves are
 * freed with the session in on_close. */
static void fail_streams(h2conn *c, uint32_t flag, const char *reason)
{
    for (pf_queue *q = c->streams.next; q != &c->streams; q = q->next) {
        pf_stream *s = us_detach(pf_queue_data(q, h2us, link));
        if (s)
            router_on_upstream_error(s, flag, reason);
    }
}

static void conn_fail(h2conn *c, uint32_t flag, const char *reason)
{
    fail_streams(c, flag, reason);
    c->goaway = true;
    if (!c->closing) {
        c->closing = true;
        pf_sock_reset(c->sock);
    }
}

static void on_read(pf_sock *sock, const char *data, ssize_t n)
{
    h2conn *c = sock->owner;
    if (n < 0) {
        conn_fail(c, PF_RF_UC, "connection termination");
        return;
    }
    ssize_t r = nghttp2_session_mem_recv(c->ng, (const uint8_t *)data, (size_t)n);
    if (r < 0) {
        pf_debug("upstream h2: %s", nghttp2_strerror((int)r));
        stats_inc(c->sock->w->stats, c->cs->cx_protocol_error);
        conn_fail(c, PF_RF_UPE, "protocol error");
        return;
    }
    schedule_flush(c);
}

static void on_connect(pf_sock *sock, int status)
{
    h2conn *c = sock->owner;
    c->connecting = false;
    stats_shard *sh = c->sock->w->stats;
    if (status < 0) {
        stats_inc(sh, c->cs->cx_connect_fail);
        PF_HC_ADD(c->hc->cx_connect_fail, 1);
        conn_fail(c, PF_RF_UF, "connection failure");
        return;
    }
    stats_record(sh, c->cs->cx_connect_ms, (uv_hrtime() - c->connect_start_ns) / 1000);
    if (pf_upstream_alpn_changed(c->pool, c->sock, PF_ALPN_H2)) {
        conn_fail(c, PF_RF_UF, "connection failure");
        return;
    }
    pf_sock_read_start(c->sock);
    for (pf_queue *q = c->streams.next; q != &c->streams; q = q->next) {
        h2us *us = pf_queue_data(q, h2us, link);
        if (us->s)
            router_on_connected(us->s);
    }
    schedule_flush(c);
}

static void on_drain(pf_sock *sock)
{
    (void)sock;     /* request bodies are paced by their own queues */
}

static void on_close(pf_sock *sock)
{
    h2conn *c = sock->owner;
    pf_pool *p = c->pool;
    pf_worker_cancel_defer(c->sock->w, &c->flush);
    c->closing = true;
    fail_streams(c, PF_RF_UC, "connection termination");
    nghttp2_session_del(c->ng);     /* on_stream_close frees each h2us */
    while (!pf_queue_empty(&c->streams))  /* streams nghttp2 never opened */
        us_free(pf_queue_data(c->streams.next, h2us, link));
    pf_queue_remove(&c->link);
    pf_upstream_closed(p, c->sock, c->cs, c->hc);
    free(c);
}

static const pf_sock_cbs h2conn_cbs = {
    .on_read = on_read,
    .on_connect = on_connect,
    .on_drain = on_drain,
    .on_close = on_close,
};

/* ---- connections ---- */

/* A connection object for pool p with its nghttp2 session, without its
 * socket yet, and not yet in the pool's list. */
static h2conn *conn_alloc(pf_worker *w, pf_pool *p)
{
    const cfg_cluster *cfg = p->cluster->cfg;
    h2conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        free(c);
        return NULL;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    int rc = nghttp2_session_client_new(&c->ng, cbs, c);
    nghttp2_session_callbacks_del(cbs);
    if (rc != 0) {
        free(c);
        return NULL;
    }
    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, cfg->h2_initial_stream_window },
    };
    nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    if (cfg->h2_initial_connection_window > 65535)
        nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)cfg->h2_initial_connection_window);
    c->pool = p;
    c->max_streams = 100;   /* until the peer's SETTINGS arrive (RFC 9113 suggests >= 100) */
    if (cfg->h2_max_concurrent_streams < c->max_streams)
        c->max_streams = cfg->h2_max_concurrent_streams;
    c->cs = &w->ps->clusters[p->cluster->index];
    c->hc = pf_host_counters_of(p->cluster->hosts, w->id, p->slot);
    pf_queue_init(&c->flush.link);
    pf_queue_init(&c->streams);
    c->flush.fn = on_flush;
    stats_inc(w->stats, c->cs->cx_http2_total);
    return c;
}

static h2conn *conn_new(pf_worker *w, pf_pool *p, const pf_stream *s)
{
    h2conn *c = conn_alloc(w, p);
    if (!c)
        return NULL;
    if (!(c->sock = pf_upstream_open(w, p, &h2conn_cbs, c))) {
        nghttp2_session_del(c->ng);
        free(c);
        return NULL;
    }
    pf_queue_insert_tail(&p->h2conns, &c->link);
    c->connect_start_ns = uv_hrtime();
    c->sni_key = pf_upstream_sni_key(p, s);
    c->connecting = true;
    if (pf_upstream_connect(c->sock, p, s) != 0) {
        c->closing = true;          /* on_close follows */
        return NULL;
    }
    return c;
}

int pf_upstream_h2_adopt(pf_pool *p, pf_sock *sock, uint64_t sni_key)
{
    h2conn *c = conn_alloc(sock->w, p);
    if (!c)
        return -1;
    c->sock = sock;
    sock->cbs = &h2conn_cbs;
    sock->owner = c;
    c->sni_key = sni_key;
    pf_queue_insert_tail(&p->h2conns, &c->link);
    pf_sock_read_start(sock);
    schedule_flush(c);              /* the connection preface and SETTINGS */
    return 0;
}

static h2conn *conn_for(pf_worker *w, pf_pool *p, const pf_stream *s, bool *connecting)
{
    uint64_t key = pf_upstream_sni_key(p, s);
    for (pf_queue *q = p->h2conns.next; q != &p->h2conns; q = q->next) {
        h2conn *c = pf_queue_data(q, h2conn, link);
        if (!c->goaway && !c->closing && c->n_streams < c->max_streams && c->sni_key == key) {
            *connecting = c->connecting;
            return c;
        }
    }
    *connecting = true;
    return conn_new(w, p, s);
}

bool pf_upstream_h2_has_room(const pf_pool *p)
{
    for (const pf_queue *q = p->h2conns.next; q != &p->h2conns; q = q->next) {
        const h2conn *c = pf_queue_data(q, h2conn, link);
        if (!c->goaway && !c->closing && c->n_streams < c->max_streams)
            return true;
    }
    return false;
}

/* ---- pf_upstream_proto ---- */

static bool skip_request_header(pf_str name)
{
    /* Connection-specific headers are illegal in HTTP/2 (RFC 9113 8.2.2). */
    return pf_str_eq_lit(name, "connection") || pf_str_eq_lit(name, "keep-alive") ||
           pf_str_eq_lit(name, "proxy-connection") || pf_str_eq_lit(name, "transfer-encoding") ||
           pf_str_eq_lit(name, "upgrade") || pf_str_eq_lit(name, "host");
}

static nghttp2_nv nv_of(pf_str n, pf_str v)
{
    return (nghttp2_nv){ (uint8_t *)n.p, (uint8_t *)v.p, n.n, v.n, NGHTTP2_NV_FLAG_NO_COPY_NAME };
}

static int h2_start(pf_stream *s, pf_pool *p, bool end, bool *connecting)
{
    h2conn *c = conn_for(s->w, p, s, connecting);
    if (!c)
        return -1;
    h2us *us = calloc(1, sizeof *us);
    nghttp2_nv *nva = pf_arena_alloc(&s->arena, (s->req_hdrs.n + 4) * sizeof *nva);
    if (!us || !nva) {
        free(us);
        return -1;
    }
    us->c = c;
    us->s = s;
    pf_outq_init(&us->body);
    size_t k = 0;
    nva[k++] = nv_of(PF_STR(":method"), s->method);
    nva[k++] = nv_of(PF_STR(":scheme"), PF_STR("http"));
    nva[k++] = nv_of(PF_STR(":authority"), s->authority);
    nva[k++] = nv_of(PF_STR(":path"), s->path);
    for (uint32_t i = 0; i < s->req_hdrs.n; i++)
        if (!skip_request_header(s->req_hdrs.v[i].name))
            nva[k++] = nv_of(s->req_hdrs.v[i].name, s->req_hdrs.v[i].value);
    nghttp2_data_provider dp = { .source.ptr = us, .read_callback = read_body };
    int32_t id = nghttp2_submit_request(c->ng, NULL, nva, k, end ? NULL : &dp, us);
    if (id < 0) {
        free(us);
        return -1;
    }
    us->id = id;
    us->body_end = end;
    pf_queue_insert_tail(&c->streams, &us->link);
    c->n_streams++;
    s->up = us;
    schedule_flush(c);
    return 0;
}

static void resume_body(h2us *us)
{
    if (us->deferred) {
        us->deferred = false;
        nghttp2_session_resume_data(us->c->ng, us->id);
    }
    schedule_flush(us->c);
}

static void h2_data(pf_stream *s, const char *p, size_t n)
{
    h2us *us = s->up;
    pf_outq_append(&us->body, chunks_of(us->c), p, n);
    if (us->body.bytes >= PF_SOCK_HIGH_WATERMARK)
        router_upstream_blocked(s, true);
    resume_body(us);
}

static void h2_trailers(pf_stream *s)
{
    h2us *us = s->up;
    us->body_end = true;
    nghttp2_nv *nva = pf_arena_alloc(&s->arena, (s->req_trailers.n + 1) * sizeof *nva);
    if (!nva) {
        resume_body(us);            /* out of memory: the body ends without them */
        return;
    }
    us->has_trailers = true;
    for (uint32_t i = 0; i < s->req_trailers.n; i++)
        nva[i] = nv_of(s->req_trailers.v[i].name, s->req_trailers.v[i].value);
    us->trailers = nva;             /* read_body submits them after the last DATA */
    us->n_trailers = s->req_trailers.n;
    resume_body(us);
}

static void h2_end(pf_stream *s)
{
    h2us *us = s->up;
    us->body_end = true;
    resume_body(us);
}

static void h2_abort(pf_stream *s)
{
    h2us *us = s->up;
    us_detach(us);
    nghttp2_submit_rst_stream(us->c->ng, NGHTTP2_FLAG_NONE, us->id, NGHTTP2_CANCEL);
    schedule_flush(us->c);
}

static void h2_resume(pf_stream *s)
{
    h2us *us = s->up;
    if (us->blocked) {
        us->blocked = false;
        if (--us->c->n_blocked == 0)
            pf_sock_read_start(us->c->sock);
    }
}

static void h2_close_idle(pf_pool *p)
{
    for (pf_queue *q = p->h2conns.next; q != &p->h2conns;) {
        h2conn *c = pf_queue_data(q, h2conn, link);
        q = q->next;
        c->goaway = true;
        if (c->n_streams == 0 && !c->closing) {
            c->closing = true;
            pf_sock_close(c->sock);
        }
    }
}

const pf_upstream_proto pf_upstream_h2 = {
    .name = "http2",
    .start = h2_start,
    .data = h2_data,
    .trailers = h2_trailers,
    .end = h2_end,
    .abort = h2_abort,
    .resume = h2_resume,
    .close_idle = h2_close_idle,
};
