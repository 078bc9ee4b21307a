/* HTTP/1.1 to upstream hosts: one exchange at a time per connection, idle
 * connections pooled per host and checked before reuse.  A pf_upstream_proto
 * (proxy/upstream.h); the router above it is protocol-neutral. */
#include <ctype.h>
#include <errno.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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

struct pf_uconn {
    pf_sock *sock;                  /* own allocation: an ALPN probe may hand it over */
    pf_pool *pool;
    pf_queue link;                  /* in pool->idle while idle */
    llhttp_t parser;
    pf_stream *s;                   /* the stream being served, or NULL when idle */
    const pf_cluster_stats *cs;     /* the cluster's stat ids (connection stats) */
    pf_host_counters *hc;           /* this worker's counters for the host */
    uint64_t connect_start_ns;
    uint64_t sni_key;               /* auto_sni: which requests it may carry (upstream_conn.h) */
    pf_str field, value;            /* response header being parsed (stream arena) */
    uint64_t idle_since_ms;
    bool idle, connecting, req_chunked, req_done, in_trailers, resp_1xx;
};

#define UCONN_CHECK_AFTER_MS 2

static void uconn_close(pf_uconn *u, bool abort);

/* Ends u's service of its stream.  The connection is kept for reuse only if
 * the exchange ended cleanly on a keep-alive connection. */
static pf_stream *uconn_detach(pf_uconn *u, bool reusable)
{
    pf_stream *s = u->s;
    u->s = NULL;
    if (s)
        router_detached(s);
    if (!reusable || !u->req_done || u->pool->cluster == NULL) {
        uconn_close(u, !reusable);
        return s;
    }
    u->idle = true;
    u->req_done = u->req_chunked = false;
    pf_queue_insert_tail(&u->pool->idle, &u->link);
    u->pool->n_idle++;
    u->idle_since_ms = uv_now(&u->sock->w->loop);
    pf_sock_read_start(u->sock);      /* notice the peer closing while idle */
    pf_breakers_cx_idle(u->pool);
    return s;
}

static void upstream_fail(pf_uconn *u, uint32_t flag, const char *reason)
{
    pf_stream *s = uconn_detach(u, false);
    if (s)
        router_on_upstream_error(s, flag, reason);
}

/* ---- response parsing ---- */

static int on_message_begin(llhttp_t *p)
{
    pf_uconn *u = p->data;
    if (!u->s)
        return HPE_USER;
    u->field = u->value = (pf_str){ NULL, 0 };
    u->in_trailers = false;
    u->s->resp_hdrs.n = 0;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    pf_uconn *u = p->data;
    return pf_arena_append(&u->s->arena, &u->field, at, n) ? HPE_USER : 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    pf_uconn *u = p->data;
    return pf_arena_append(&u->s->arena, &u->value, at, n) ? HPE_USER : 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    pf_uconn *u = p->data;
    pf_stream *s = u->s;
    char *name = (char *)u->field.p;
    for (size_t i = 0; i < u->field.n; i++)
        name[i] = (char)tolower((unsigned char)name[i]);
    pf_str value = u->value.p ? u->value : PF_STR("");
    int rc = pf_hdrs_add(u->in_trailers ? &s->resp_trailers : &s->resp_hdrs, &s->arena,
                         u->field, value);
    u->field = u->value = (pf_str){ NULL, 0 };
    return rc ? HPE_USER : 0;
}

static int on_headers_complete(llhttp_t *p)
{
    pf_uconn *u = p->data;
    pf_stream *s = u->s;
    int st = p->status_code;
    u->in_trailers = true;
    if (st >= 100 && st < 200) {
        /* Envoy answered any Expect itself, so 100 is dropped; 101 needs an
         * upgrade we refused.  Other interim responses pass through. */
        u->resp_1xx = true;
        if (st != 100 && st != 101) {
            pf_hdrs_strip_hop_by_hop(&s->resp_hdrs);
            s->codec->encode_1xx(s, st, &s->resp_hdrs);
        }
        s->resp_hdrs.n = 0;
        return 0;
    }
    s->status = st;
    router_on_response_headers(s, false);
    if (!u->s)
        return HPE_USER;
    return s->is_head ? 1 : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    pf_uconn *u = p->data;
    bool more = router_on_response_data(u->s, at, n);
    if (!u->s)
        return HPE_USER;
    if (!more)
        pf_sock_read_stop(u->sock);    /* the downstream is full: backpressure */
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    pf_uconn *u = p->data;
    if (u->resp_1xx) {
        u->resp_1xx = false;
        u->in_trailers = false;
        return 0;
    }
    pf_stream *s = uconn_detach(u, llhttp_should_keep_alive(p));
    router_on_response_end(s);
    return HPE_PAUSED;
}

static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- socket events ---- */

static void on_read(pf_sock *sock, const char *data, ssize_t n)
{
    pf_uconn *u = sock->owner;
    if (!u->s) {
        /* Idle: a close (or stray bytes) means the connection is done. */
        uconn_close(u, n > 0);
        return;
    }
    if (n < 0) {
        if (n == UV_EOF && llhttp_message_needs_eof(&u->parser)) {
            llhttp_finish(&u->parser);      /* a close-delimited body ends here */
            if (!u->s)
                return;
        }
        upstream_fail(u, PF_RF_UC, "connection termination");
        return;
    }
    if (!u->s->resp_first_byte_ms)
        u->s->resp_first_byte_ms = uv_now(&u->sock->w->loop);
    llhttp_errno_t err = llhttp_execute(&u->parser, data, (size_t)n);
    if (err == HPE_PAUSED) {
        const char *pos = llhttp_get_error_pos(&u->parser);
        llhttp_resume(&u->parser);
        if (pos != data + n && u->idle)
            uconn_close(u, true);      /* bytes after the response: not reusable */
        return;
    }
    if (err != HPE_OK && u->s) {
        pf_debug("upstream: bad response: %s", llhttp_errno_name(err));
        stats_inc(u->sock->w->stats, u->cs->cx_protocol_error);
        upstream_fail(u, PF_RF_UPE, "protocol error");
    }
}

static void on_connect(pf_sock *sock, int status)
{
    pf_uconn *u = sock->owner;
    u->connecting = false;
    stats_shard *sh = u->sock->w->stats;
    if (status < 0) {
        stats_inc(sh, u->cs->cx_connect_fail);
        PF_HC_ADD(u->hc->cx_connect_fail, 1);
        pf_debug("upstream: connect failed: %s", uv_strerror(status));
        upstream_fail(u, PF_RF_UF, "connection failure");
        return;
    }
    stats_record(sh, u->cs->cx_connect_ms, (uv_hrtime() - u->connect_start_ns) / 1000);
    if (pf_upstream_alpn_changed(u->pool, u->sock, PF_ALPN_H1)) {
        upstream_fail(u, PF_RF_UF, "connection failure");
        return;
    }
    pf_sock_read_start(u->sock);
    if (u->s)
        router_on_connected(u->s);
}

static void on_drain(pf_sock *sock)
{
    pf_uconn *u = sock->owner;
    if (u->s)
        router_upstream_blocked(u->s, false);
}

static void on_close(pf_sock *sock)
{
    pf_uconn *u = sock->owner;
    pf_pool *p = u->pool;
    if (u->s)
        upstream_fail(u, PF_RF_UC, "connection termination");
    if (u->idle) {
        pf_queue_remove(&u->link);
        p->n_idle--;
    }
    pf_upstream_closed(p, u->sock, u->cs, u->hc);
    free(u);
}

static const pf_sock_cbs uconn_cbs = {
    .on_read = on_read,
    .on_connect = on_connect,
    .on_drain = on_drain,
    .on_close = on_close,
};

/* abort: RST instead of FIN (the exchange was cut short). */
static void uconn_close(pf_uconn *u, bool abort)
{
    if (u->idle) {
        pf_queue_remove(&u->link);
        u->pool->n_idle--;
        u->idle = false;
    }
    if (abort)
        pf_sock_reset(u->sock);
    else
        pf_sock_close(u->sock);
}

/* ---- connection acquisition ---- */

/* A pooled connection is usable if the peer has neither closed it nor sent
 * anything since the last response (peek without blocking).  A connection
 * idle for less than UCONN_CHECK_AFTER_MS skips the syscall: the loop has
 * just polled it, and under load that is every reuse. */
static bool uconn_alive(pf_uconn *u)
{
    if (uv_now(&u->sock->w->loop) - u->idle_since_ms < UCONN_CHECK_AFTER_MS)
        return true;
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&u->sock->tcp, &fd) != 0)
        return false;
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* An idle connection for a request with SNI key `key` (others stay idle). */
static pf_uconn *pool_take_idle(pf_pool *p, uint64_t key)
{
    for (pf_queue *q = p->idle.next; q != &p->idle;) {
        pf_uconn *u = pf_queue_data(q, pf_uconn, link);
        q = q->next;
        if (u->sni_key != key)
            continue;
        pf_queue_remove(&u->link);
        p->n_idle--;
        u->idle = false;
        if (uconn_alive(u))
            return u;
        uconn_close(u, false);
    }
    return NULL;
}

/* A connection object for pool p, without its socket yet. */
static pf_uconn *uconn_alloc(pf_worker *w, pf_pool *p)
{
    pf_uconn *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->pool = p;
    u->cs = &w->ps->clusters[p->cluster->index];
    u->hc = pf_host_counters_of(p->cluster->hosts, w->id, p->slot);
    pf_queue_init(&u->link);
    llhttp_init(&u->parser, HTTP_RESPONSE, &parser_settings);
    u->parser.data = u;
    stats_inc(w->stats, u->cs->cx_http1_total);
    return u;
}

static pf_uconn *uconn_new(pf_worker *w, pf_pool *p, const pf_stream *s)
{
    pf_uconn *u = uconn_alloc(w, p);
    if (!u)
        return NULL;
    if (!(u->sock = pf_upstream_open(w, p, &uconn_cbs, u))) {
        free(u);
        return NULL;
    }
    u->connect_start_ns = uv_hrtime();
    u->sni_key = pf_upstream_sni_key(p, s);
    u->connecting = true;
    int rc = pf_upstream_connect(u->sock, p, s);
    if (rc != 0) {
        pf_debug("upstream: connect: %s", uv_strerror(rc));
        u->connecting = false;
        return NULL;
    }
    return u;
}

int pf_upstream_h1_adopt(pf_pool *p, pf_sock *sock, uint64_t sni_key)
{
    pf_uconn *u = uconn_alloc(sock->w, p);
    if (!u)
        return -1;
    u->sock = sock;
    sock->cbs = &uconn_cbs;
    sock->owner = u;
    u->sni_key = sni_key;
    u->req_done = true;             /* as after a finished exchange */
    uconn_detach(u, true);          /* into the idle list, reading */
    return 0;
}

/* ---- request encoding ---- */

static void write_str(pf_uconn *u, pf_str a)
{
    pf_sock_write(u->sock, a.p, a.n);
}

static void write_headers(pf_uconn *u, const pf_hdrs *h)
{
    for (uint32_t i = 0; i < h->n; i++) {
        write_str(u, h->v[i].name);
        pf_sock_write(u->sock, ": ", 2);
        write_str(u, h->v[i].value);
        pf_sock_write(u->sock, "\r\n", 2);
    }
}

static void encode_request_head(pf_uconn *u, pf_stream *s, bool end)
{
    write_str(u, s->method);
    pf_sock_write(u->sock, " ", 1);
    write_str(u, s->path);
    pf_sock_write(u->sock, " HTTP/1.1\r\nhost: ", 17);
    write_str(u, s->authority);
    pf_sock_write(u->sock, "\r\n", 2);
    write_headers(u, &s->req_hdrs);
    if (!end && !pf_hdrs_get_lit(&s->req_hdrs, "content-length")) {
        pf_sock_write(u->sock, "transfer-encoding: chunked\r\n", 28);
        u->req_chunked = true;
    }
    pf_sock_write(u->sock, "\r\n", 2);
}

/* ---- pf_upstream_proto ---- */

static int h1_start(pf_stream *s, pf_pool *p, bool end, bool *connecting)
{
    pf_uconn *u = pool_take_idle(p, pf_upstream_sni_key(p, s));
    if (!u) {
        if (!(u = uconn_new(s->w, p, s)))
            return -1;
        *connecting = true;
    }
    u->s = s;
    s->up = u;
    u->req_done = false;
    u->req_chunked = false;
    encode_request_head(u, s, end);
    return 0;
}

static void h1_data(pf_stream *s, const char *p, size_t n)
{
    pf_uconn *u = s->up;
    if (u->req_chunked) {
        char size[24];
        int k = snprintf(size, sizeof size, "%zx\r\n", n);
        pf_sock_write(u->sock, size, (size_t)k);
        pf_sock_write(u->sock, p, n);
        pf_sock_write(u->sock, "\r\n", 2);
    } else {
        pf_sock_write(u->sock, p, n);
    }
    if (pf_sock_above_high(u->sock))
        router_upstream_blocked(s, true);
}

static void h1_trailers(pf_stream *s)
{
    pf_uconn *u = s->up;
    if (u->req_chunked) {
        pf_sock_write(u->sock, "0\r\n", 3);
        write_headers(u, &s->req_trailers);
        pf_sock_write(u->sock, "\r\n", 2);
    }
    u->req_done = true;
}

static void h1_end(pf_stream *s)
{
    pf_uconn *u = s->up;
    if (u->req_chunked)
        pf_sock_write(u->sock, "0\r\n\r\n", 5);
    u->req_done = true;
}

static void h1_abort(pf_stream *s)
{
    pf_uconn *u = s->up;
    u->s = NULL;
    router_detached(s);
    uconn_close(u, true);
}

static void h1_resume(pf_stream *s)
{
    pf_uconn *u = s->up;
    pf_sock_read_start(u->sock);
}

static void h1_close_idle(pf_pool *p)
{
    while (!pf_queue_empty(&p->idle)) {
        pf_uconn *u = pf_queue_data(p->idle.next, pf_uconn, link);
        uconn_close(u, false);
    }
}

const pf_upstream_proto pf_upstream_h1 = {
    .name = "http1",
    .start = h1_start,
    .data = h1_data,
    .trailers = h1_trailers,
    .end = h1_end,
    .abort = h1_abort,
    .resume = h1_resume,
    .close_idle = h1_close_idle,
};
