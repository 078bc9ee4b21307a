#include "proxy/h1_server.h"

#include <ctype.h>
#include <errno.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/stats.h"
#include "proxy/hcm.h"
#include "proxy/log.h"
#include "proxy/proxy_stats.h"
#include "proxy/sock.h"
#include "proxy/stream.h"
#include "proxy/worker.h"

#define H1_PENDING_MAX 65536

typedef struct h1conn {
    pf_dconn *dc;                   /* the connection; owns this codec context */
    pf_worker *w;
    pf_deferred resume;             /* parse pipelined input after a response */
    llhttp_t parser;
    pf_stream *stream;              /* current request, or NULL */
    pf_str field, value;            /* header being parsed (in the stream's arena) */
    size_t header_bytes, header_limit;
    char *pending;                  /* unparsed input held while a response is pending */
    size_t pending_len;
    int error_status;               /* set by callbacks that reject the request */
    const pf_listener_stats *ls;
    const char *input;              /* start of the buffer being parsed */
    char input_prev;                /* last byte of the previous buffer */
    bool in_trailers, in_execute, paused, read_paused, close_after, resp_chunked,
         resp_close_delimited, resp_drop_body, dead;
} h1conn;

static const pf_server_codec_ops h1_ops;
static void conn_process(h1conn *c, const char *data, size_t n);
static void conn_error(h1conn *c, int status);

/* ---- llhttp callbacks: build the request into the stream ---- */

static int count_header_bytes(h1conn *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > c->header_limit) {
        c->error_status = 431;
        return HPE_USER;
    }
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    h1conn *c = p->data;
    c->stream = pf_stream_new(c->w, &h1_ops, c, c->dc->listener);
    if (!c->stream) {
        c->error_status = 503;
        return HPE_USER;
    }
    stats_inc(c->w->stats, c->ls->rq_total);
    stats_inc(c->w->stats, c->ls->rq_http1_total);
    stats_gauge_add(c->w->stats, c->ls->rq_active, 1);
    c->stream->hcm = c->dc->hcm;
    c->stream->downstream_remote = &c->dc->peer;
    c->stream->downstream_local = &c->dc->local;
    hcm_stream_started(c->stream, c->dc);
    c->field = c->value = (pf_str){ NULL, 0 };
    c->header_bytes = 0;
    c->in_trailers = false;
    c->resp_chunked = c->resp_close_delimited = c->resp_drop_body = false;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    h1conn *c = p->data;
    if (count_header_bytes(c, n))
        return HPE_USER;
    return pf_arena_append(&c->stream->arena, &c->stream->path, at, n) ? HPE_USER : 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    h1conn *c = p->data;
    if (count_header_bytes(c, n))
        return HPE_USER;
    return pf_arena_append(&c->stream->arena, &c->field, at, n) ? HPE_USER : 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    h1conn *c = p->data;
    if (count_header_bytes(c, n))
        return HPE_USER;
    /* llhttp 8 accepts obs-fold, handing the continuation line over as a
     * further piece of the value.  RFC 9112 5.2 lets a proxy reject it, and
     * request smuggling is why Envoy does: a piece that follows a line break
     * is a fold. */
    if (c->value.p) {
        char before = at > c->input ? at[-1] : c->input_prev;
        if (before == '\n')
            return HPE_USER;
    }
    return pf_arena_append(&c->stream->arena, &c->value, at, n) ? HPE_USER : 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    h1conn *c = p->data;
    pf_stream *s = c->stream;
    /* Names are kept lower-case; the arena copy is ours to modify.  llhttp
     * lets "Name : v" through; a name must be a token (RFC 9110 5.1). */
    char *name = (char *)c->field.p;
    if (c->field.n == 0)
        return HPE_USER;
    for (size_t i = 0; i < c->field.n; i++) {
        if (!pf_http_is_tchar((unsigned char)name[i]))
            return HPE_USER;
        name[i] = (char)tolower((unsigned char)name[i]);
    }
    pf_str value = c->value.p ? c->value : PF_STR("");
    pf_hdrs *h = c->in_trailers ? &s->req_trailers : &s->req_hdrs;
    int rc = 0;
    switch (hcm_check_header(s, h, c->field)) {
    case HCM_HDR_ADD:
        rc = pf_hdrs_add(h, &s->arena, c->field, value);
        break;
    case HCM_HDR_DROP:
        stats_inc(c->w->stats, c->w->ps->http1_hdrs.dropped_underscores);
        break;
    case HCM_HDR_REJECT:
        stats_inc(c->w->stats, c->w->ps->http1_hdrs.rejected_underscores);
        c->error_status = 400;
        return HPE_USER;
    case HCM_HDR_TOO_MANY:
        c->error_status = 431;
        return HPE_USER;
    }
    c->field = c->value = (pf_str){ NULL, 0 };
    return rc ? HPE_USER : 0;
}

/* Splits an absolute-form target ("http://host/path") into authority and path. */
static void split_absolute_uri(pf_stream *s)
{
    pf_str u = s->path;
    const char *sep = u.n > 7 ? memchr(u.p, ':', u.n < 8 ? u.n : 8) : NULL;
    if (!sep || sep + 3 > u.p + u.n || sep[1] != '/' || sep[2] != '/')
        return;
    const char *host = sep + 3, *end = u.p + u.n;
    const char *slash = memchr(host, '/', (size_t)(end - host));
    if (!slash)
        slash = end;
    s->authority = (pf_str){ host, (size_t)(slash - host) };
    s->path = slash < end ? (pf_str){ slash, (size_t)(end - slash) } : PF_STR("/");
}

static int on_headers_complete(llhttp_t *p)
{
    h1conn *c = p->data;
    pf_stream *s = c->stream;
    c->in_trailers = true;          /* header fields from now on are trailers */

    if (p->upgrade || p->method == HTTP_CONNECT) {
        c->error_status = 403;      /* Envoy: upgrade_failed without upgrade_configs */
        return HPE_USER;
    }
    const char *m = llhttp_method_name(p->method);
    s->method = (pf_str){ m, strlen(m) };
    s->is_head = p->method == HTTP_HEAD;
    s->protocol = p->http_minor >= 1 ? PF_STR("HTTP/1.1") : PF_STR("HTTP/1.0");
    s->scheme = PF_STR("http");
    if (s->path.n && s->path.p[0] != '/' && !pf_str_eq_lit(s->path, "*"))
        split_absolute_uri(s);
    pf_hdr *host = pf_hdrs_get_lit(&s->req_hdrs, "host");
    if (host && !s->authority.p)
        s->authority = host->value;
    pf_hdrs_remove_lit(&s->req_hdrs, "host");
    if (!s->authority.p && p->http_minor >= 1) {
        c->error_status = 400;      /* HTTP/1.1 requires Host */
        return HPE_USER;
    }
    if (!s->authority.p)
        s->authority = PF_STR("");

    /* Envoy answers Expect: 100-continue itself and does not forward it. */
    pf_hdr *expect = pf_hdrs_get_lit(&s->req_hdrs, "expect");
    if (expect && pf_str_ieq(expect->value, "100-continue", 12)) {
        pf_hdrs_remove_lit(&s->req_hdrs, "expect");
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        pf_sock_write(&c->dc->sock, cont, sizeof cont - 1);
    }
    if (!llhttp_should_keep_alive(p) || c->w->draining)
        c->close_after = true;
    pf_hdrs_strip_hop_by_hop(&s->req_hdrs);

    bool has_body = (p->flags & F_CHUNKED) || p->content_length > 0;
    s->req_headers_done = true;
    hcm_on_request_headers(s, !has_body);
    return c->dead ? HPE_USER : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    h1conn *c = p->data;
    if (c->stream)
        c->stream->bytes_received += n;
    if (c->stream && !c->stream->resp_end)
        hcm_on_request_data(c->stream, at, n);
    return c->dead ? HPE_USER : 0;
}

static int on_message_complete(llhttp_t *p)
{
    h1conn *c = p->data;
    pf_stream *s = c->stream;
    if (!s)
        return 0;                   /* answered and finished before its end */
    if (!s->req_end) {
        if (s->req_trailers.n)
            hcm_on_request_trailers(s);
        else
            hcm_on_request_end(s);
    }
    if (c->dead)
        return HPE_USER;
    /* Hold any pipelined request until this response has ended. */
    return c->stream ? HPE_PAUSED : 0;
}

static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- input ---- */

/* Holds input that arrived while a response is pending.  Reading goes on
 * (stopping and restarting it would cost two epoll_ctl calls per request)
 * until H1_PENDING_MAX bytes wait, then the socket is paused. */
static void keep_pending(h1conn *c, const char *data, size_t n)
{
    if (!n)
        return;
    char *p = realloc(c->pending, c->pending_len + n);
    if (!p) {
        conn_error(c, 503);
        return;
    }
    memcpy(p + c->pending_len, data, n);
    c->pending = p;
    c->pending_len += n;
    if (c->pending_len >= H1_PENDING_MAX)
        pf_sock_read_stop(&c->dc->sock);
}

/* Parses data; what follows a paused message is kept for later. */
static void conn_process(h1conn *c, const char *data, size_t n)
{
    c->in_execute = true;
    c->input = data;
    llhttp_errno_t err = llhttp_execute(&c->parser, data, n);
    c->in_execute = false;
    if (n)
        c->input_prev = data[n - 1];
    if (c->dead)
        return;
    if (err == HPE_PAUSED) {
        const char *pos = llhttp_get_error_pos(&c->parser);
        c->paused = true;
        keep_pending(c, pos, (size_t)(data + n - pos));
        return;
    }
    if (err != HPE_OK) {
        pf_debug("h1: bad request: %s (%s)", llhttp_errno_name(err),
                 llhttp_get_error_reason(&c->parser));
        conn_error(c, c->error_status ? c->error_status : 400);
    }
}

static void h1_on_eof(void *ctx)
{
    h1conn *c = ctx;
    if (c->stream)
        hcm_on_stream_reset(c->stream, PF_RF_DC);
    c->stream = NULL;
    c->dead = true;
    pf_sock_close(&c->dc->sock);
}

static void h1_on_read(void *ctx, const char *data, size_t n)
{
    h1conn *c = ctx;
    if (c->paused)
        keep_pending(c, data, n);
    else
        conn_process(c, data, n);
}

/* Runs from the worker's deferred queue once a response ended: parses any
 * pipelined input, then reads again. */
static void on_resume(pf_deferred *d)
{
    h1conn *c = pf_queue_data(d, h1conn, resume);
    if (c->dead)
        return;
    c->paused = false;
    llhttp_resume(&c->parser);
    if (c->pending) {
        char *buf = c->pending;
        size_t len = c->pending_len;
        c->pending = NULL;
        c->pending_len = 0;
        conn_process(c, buf, len);
        free(buf);
    }
    if (!c->dead && !c->paused && !c->read_paused)
        pf_sock_read_start(&c->dc->sock);
}

/* ---- errors ---- */

/* Answers a request the codec rejected (400, 431, 403) and closes. */
static void conn_error(h1conn *c, int status)
{
    pf_stream *s = c->stream;
    if (s && s->resp_headers_sent) {
        pf_stream *dead = s;
        c->stream = NULL;
        hcm_on_stream_reset(dead, PF_RF_DPE);
        c->dead = true;
        pf_sock_reset(&c->dc->sock);
        return;
    }
    if (s) {
        c->stream = NULL;
        hcm_on_stream_reset(s, PF_RF_DPE);
    }
    stats_inc(c->w->stats, c->ls->cx_protocol_error);
    const char *reason = pf_http_reason(status);
    pf_str date = hcm_date(c->w);
    pf_str server = hcm_server_name(c->dc->hcm, false);
    char buf[512];
    int len = snprintf(buf, sizeof buf,
                       "HTTP/1.1 %d %s\r\ncontent-length: %zu\r\ncontent-type: text/plain\r\n"
                       "date: %.*s\r\n%s%.*s%sconnection: close\r\n\r\n%s",
                       status, reason, strlen(reason), (int)date.n, date.p,
                       server.p ? "server: " : "", (int)server.n, server.p ? server.p : "",
                       server.p ? "\r\n" : "", reason);
    if (len < 0 || (size_t)len >= sizeof buf)
        len = snprintf(buf, sizeof buf, "HTTP/1.1 %d %s\r\ncontent-length: 0\r\n"
                       "connection: close\r\n\r\n", status, reason);
    pf_sock_write(&c->dc->sock, buf, (size_t)len);
    c->dead = true;
    pf_sock_close(&c->dc->sock);
}

/* ---- codec ops: the connection manager writes the response ---- */

static h1conn *conn_of(pf_stream *s) { return s->codec_conn; }

static void write_headers(h1conn *c, const pf_hdrs *h)
{
    for (uint32_t i = 0; i < h->n; i++) {
        pf_sock_write(&c->dc->sock, h->v[i].name.p, h->v[i].name.n);
        pf_sock_write(&c->dc->sock, ": ", 2);
        pf_sock_write(&c->dc->sock, h->v[i].value.p, h->v[i].value.n);
        pf_sock_write(&c->dc->sock, "\r\n", 2);
    }
}

static void write_status_line(h1conn *c, int status)
{
    char line[64] = "HTTP/1.1 ";
    size_t n = 9 + pf_u64_dec((uint64_t)status, line + 9);
    const char *reason = pf_http_reason(status);
    size_t rn = strlen(reason);
    line[n++] = ' ';
    memcpy(line + n, reason, rn);        /* reasons are short: fits */
    n += rn;
    line[n++] = '\r';
    line[n++] = '\n';
    pf_sock_write(&c->dc->sock, line, n);
}

static void h1_encode_headers(pf_stream *s, bool end)
{
    h1conn *c = conn_of(s);
    int st = s->status;
    bool no_body = s->is_head || st == 204 || st == 304 || (st >= 100 && st < 200);
    write_status_line(c, st);
    write_headers(c, &s->resp_hdrs);
    bool has_cl = pf_hdrs_get_lit(&s->resp_hdrs, "content-length") != NULL;
    if (!has_cl && !no_body) {
        if (end) {
            pf_sock_write(&c->dc->sock, "content-length: 0\r\n", 19);
        } else if (c->parser.http_minor >= 1) {
            pf_sock_write(&c->dc->sock, "transfer-encoding: chunked\r\n", 28);
            c->resp_chunked = true;
        } else {
            c->resp_close_delimited = true;
            c->close_after = true;
        }
    }
    c->resp_drop_body = no_body;
    /* Envoy: a response that starts before the request is complete ends an
     * HTTP/1 connection (the rest of the request is not waited for). */
    if (!s->req_end)
        c->close_after = true;
    if (c->close_after || c->w->draining) {
        c->close_after = true;
        pf_sock_write(&c->dc->sock, "connection: close\r\n", 19);
    } else if (c->parser.http_minor == 0) {
        pf_sock_write(&c->dc->sock, "connection: keep-alive\r\n", 24);
    }
    pf_sock_write(&c->dc->sock, "\r\n", 2);
}

static void h1_encode_1xx(pf_stream *s, int status, const pf_hdrs *h)
{
    h1conn *c = conn_of(s);
    if (c->parser.http_minor == 0)
        return;                     /* HTTP/1.0 clients do not understand 1xx */
    write_status_line(c, status);
    write_headers(c, h);
    pf_sock_write(&c->dc->sock, "\r\n", 2);
}

static void h1_encode_data(pf_stream *s, const char *p, size_t n, bool end)
{
    h1conn *c = conn_of(s);
    if (c->resp_drop_body)
        return;
    if (c->resp_chunked) {
        if (n) {
            char size[24];
            int k = snprintf(size, sizeof size, "%zx\r\n", n);
            pf_sock_write(&c->dc->sock, size, (size_t)k);
            pf_sock_write(&c->dc->sock, p, n);
            pf_sock_write(&c->dc->sock, "\r\n", 2);
        }
        if (end)
            pf_sock_write(&c->dc->sock, "0\r\n\r\n", 5);
        return;
    }
    if (n)
        pf_sock_write(&c->dc->sock, p, n);
}

static void h1_encode_trailers(pf_stream *s)
{
    h1conn *c = conn_of(s);
    if (!c->resp_chunked || c->resp_drop_body)
        return;                     /* HTTP/1.1 carries trailers only when chunked */
    pf_sock_write(&c->dc->sock, "0\r\n", 3);
    write_headers(c, &s->resp_trailers);
    pf_sock_write(&c->dc->sock, "\r\n", 2);
}

static void h1_reset(pf_stream *s)
{
    h1conn *c = conn_of(s);
    c->stream = NULL;
    c->dead = true;
    hcm_on_stream_reset(s, 0);
    pf_sock_reset(&c->dc->sock);
}

static void h1_pause_request(pf_stream *s, bool pause)
{
    h1conn *c = conn_of(s);
    c->read_paused = pause;
    if (pause)
        pf_sock_read_stop(&c->dc->sock);
    else if (!c->paused && !c->dead)
        pf_sock_read_start(&c->dc->sock);
}

static bool h1_write_blocked(pf_stream *s)
{
    return pf_sock_above_high(&conn_of(s)->dc->sock);
}

static void h1_stream_done(pf_stream *s)
{
    h1conn *c = conn_of(s);
    c->stream = NULL;
    c->read_paused = false;
    if (s->req_abandoned)
        c->close_after = true;      /* the rest of the request is still on the wire */
    if (c->close_after || c->dead) {
        c->dead = true;
        pf_sock_close(&c->dc->sock);
        return;
    }
    pf_dconn_set_idle(c->dc, true);
    /* Inside llhttp_execute, on_message_complete continues the parse itself. */
    if (!c->in_execute)
        pf_worker_defer(c->w, &c->resume);
}

static const pf_server_codec_ops h1_ops = {
    .encode_headers = h1_encode_headers,
    .encode_1xx = h1_encode_1xx,
    .encode_data = h1_encode_data,
    .encode_trailers = h1_encode_trailers,
    .reset = h1_reset,
    .pause_request = h1_pause_request,
    .write_blocked = h1_write_blocked,
    .stream_done = h1_stream_done,
};

/* ---- connection life: the pf_codec_vtbl ---- */

static void h1_on_drain(void *ctx)
{
    h1conn *c = ctx;
    if (c->stream)
        hcm_on_downstream_drain(c->stream);
}

static void h1_on_close(void *ctx)
{
    h1conn *c = ctx;
    if (c->stream)
        hcm_on_stream_reset(c->stream, PF_RF_DC);
    pf_worker_cancel_defer(c->w, &c->resume);
    free(c->pending);
    free(c);
}

static void *h1_attach(pf_dconn *dc)
{
    h1conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->dc = dc;
    c->w = dc->w;
    c->ls = dc->ls;
    c->header_limit = (size_t)dc->hcm->max_request_headers_kb * 1024;
    pf_queue_init(&c->resume.link);
    c->resume.fn = on_resume;
    stats_inc(c->w->stats, c->ls->cx_http1_total);
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
    c->parser.data = c;
    return c;
}

/* Closes the connection now if idle, else after its current response. */
static void h1_drain(void *ctx)
{
    h1conn *c = ctx;
    c->close_after = true;
    if (!c->stream && !c->dead) {
        c->dead = true;
        pf_sock_close(&c->dc->sock);
    }
}

/* The connection's timer: the one stream's timeouts (proxy/hcm_timeout.c). */
static uint64_t h1_sweep(void *ctx, uint64_t now)
{
    h1conn *c = ctx;
    pf_stream *s = c->stream;
    if (c->dead || !s)
        return UINT64_MAX;
    uint64_t due = hcm_stream_deadline(s);
    if (due > now)
        return due;
    /* The reply closes the connection if the request was still arriving
     * (h1_encode_headers). */
    hcm_stream_expire(s, now);
    /* Still here (a filter holds the reply): look again at its deadline. */
    return c->stream && !c->dead ? hcm_stream_deadline(c->stream) : UINT64_MAX;
}

static void h1_abort(void *ctx)
{
    h1conn *c = ctx;
    if (c->stream) {
        pf_stream *s = c->stream;
        c->stream = NULL;
        hcm_on_stream_reset(s, PF_RF_DC);
    }
    c->dead = true;
}

const pf_codec_vtbl h1_server_codec = {
    .name = "http1",
    .attach = h1_attach,
    .on_read = h1_on_read,
    .on_eof = h1_on_eof,
    .on_drain = h1_on_drain,
    .on_close = h1_on_close,
    .drain = h1_drain,
    .abort = h1_abort,
    .sweep = h1_sweep,
};
