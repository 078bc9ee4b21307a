/* Admin HTTP/1.1 server plumbing: accept, llhttp parsing (method, URL,
 * keep-alive, pipelining; request bodies are read and ignored), query
 * parsing, and writing responses of any size.  What each path does lives
 * in admin_endpoints.c. */
#include "admin/admin.h"

#include <arpa/inet.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin_access_log.h"
#include "admin/admin_http.h"
#include "proxy/addr.h"
#include "proxy/http.h"
#include "proxy/log.h"
#include "proxy/queue.h"
#include "proxy/server.h"
#include "proxy/cluster.h"

#define ADMIN_MAX_URL 8192

struct pf_admin {
    pf_server *srv;
    uv_tcp_t tcp;
    admin_alog *alog;               /* admin.access_log; NULL when not configured */
    pf_queue conns;                 /* admin_conn.link */
    bool stopping, listener_closed;
};

typedef struct admin_conn {
    uv_tcp_t tcp;
    pf_admin *admin;
    pf_queue link;
    llhttp_t parser;
    char url[ADMIN_MAX_URL];
    size_t url_len;
    bool url_too_long;
    bool closing;
    char buf[4096];
} admin_conn;

typedef struct admin_write {
    uv_write_t req;
    admin_conn *conn;
    pf_server *srv;
    bool close_after;
    void (*after_write)(pf_server *srv);
    char *data;                     /* head + body; owned */
} admin_write;

/* The admin is freed when its listener and every connection are closed. */
static void admin_maybe_free(pf_admin *a)
{
    if (a->listener_closed && pf_queue_empty(&a->conns)) {
        admin_alog_close(a->alog);
        free(a);
    }
}

static void on_conn_closed(uv_handle_t *h)
{
    admin_conn *c = h->data;
    pf_admin *a = c->admin;
    pf_queue_remove(&c->link);
    free(c);
    admin_maybe_free(a);
}

static void conn_close(admin_conn *c)
{
    c->closing = true;
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_written(uv_write_t *req, int status)
{
    admin_write *w = (admin_write *)req;
    if (status < 0 || w->close_after)
        conn_close(w->conn);
    if (w->after_write)
        w->after_write(w->srv);
    free(w->data);
    free(w);
}

/* Queues the response; takes the body buffer. */
static void respond(admin_conn *c, admin_response *rs, bool keep)
{
    admin_write *w = calloc(1, sizeof *w);
    char head[512];
    size_t blen = rs->body.n;
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
                     "cache-control: no-cache, max-age=0\r\nx-content-type-options: nosniff\r\n"
                     "server: envoy\r\n%s\r\n",
                     rs->status, pf_http_reason(rs->status),
                     rs->content_type ? rs->content_type : ADMIN_CT_TEXT, blen,
                     keep ? "" : "connection: close\r\n");
    if (w)
        w->data = malloc((size_t)n + blen + 1);
    if (!w || !w->data) {
        free(w);
        sbuf_free(&rs->body);
        if (rs->after_write)
            rs->after_write(c->admin->srv);
        conn_close(c);
        return;
    }
    memcpy(w->data, head, (size_t)n);
    if (blen)
        memcpy(w->data + n, rs->body.p, blen);
    sbuf_free(&rs->body);
    w->conn = c;
    w->srv = c->admin->srv;
    w->close_after = !keep;
    w->after_write = rs->after_write;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)((size_t)n + blen));
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
        if (w->after_write)
            w->after_write(w->srv);
        free(w->data);
        free(w);
        conn_close(c);
    }
}

static void respond_text(admin_conn *c, int status, const char *text, bool keep)
{
    admin_response rs = {.status = status, .content_type = ADMIN_CT_TEXT, .body = SBUF_INIT};
    sbuf_puts(&rs.body, text);
    respond(c, &rs, keep);
}

/* ---- query strings ---- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes s[0..n) into a new string; NULL on bad escape / %00 / OOM. */
static char *pct_decode(const char *s, size_t n, bool *bad)
{
    char *out = malloc(n + 1), *p = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int h, l;
            if (i + 2 >= n || (h = hexval(s[i + 1])) < 0 || (l = hexval(s[i + 2])) < 0 ||
                (h == 0 && l == 0)) {
                *bad = true;
                free(out);
                return NULL;
            }
            *p++ = (char)(h * 16 + l);
            i += 2;
        } else if (s[i] == '+') {
            *p++ = ' ';
        } else {
            *p++ = s[i];
        }
    }
    *p = '\0';
    return out;
}

void admin_params_free(admin_param *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].key);
        free(p[i].value);
    }
    free(p);
}

int admin_parse_query(const char *q, size_t len, admin_param **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += q[i] == '&';
    admin_param *v = calloc(cap, sizeof *v);
    if (!v)
        return -1;
    size_t n = 0;
    const char *p = q, *end = q + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *seg_end = amp ? amp : end;
        if (seg_end > p) {
            const char *eq = memchr(p, '=', (size_t)(seg_end - p));
            const char *kend = eq ? eq : seg_end;
            bool bad = false;
            v[n].key = pct_decode(p, (size_t)(kend - p), &bad);
            v[n].value = eq ? pct_decode(eq + 1, (size_t)(seg_end - eq - 1), &bad)
                            : pct_decode("", 0, &bad);
            n++;
            if (!v[n - 1].key || !v[n - 1].value) {
                admin_params_free(v, n);
                return -1;
            }
        }
        p = seg_end + 1;
    }
    *out = v;
    *n_out = n;
    return 0;
}

const char *admin_query(const admin_request *rq, const char *key)
{
    for (size_t i = 0; i < rq->n_params; i++)
        if (strcmp(rq->params[i].key, key) == 0)
            return rq->params[i].value;
    return NULL;
}

void admin_json_str(sbuf *b, const char *s)
{
    sbuf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': sbuf_puts(b, "\\\""); break;
        case '\\': sbuf_puts(b, "\\\\"); break;
        case '\n': sbuf_puts(b, "\\n"); break;
        case '\r': sbuf_puts(b, "\\r"); break;
        case '\t': sbuf_puts(b, "\\t"); break;
        default:
            if (*p < 0x20)
                sbuf_printf(b, "\\u%04x", *p);
            else
                sbuf_putc(b, (char)*p);
        }
    }
    sbuf_putc(b, '"');
}

void admin_fmt_addr(const void *ssp, char *buf, size_t len)
{
    if (!pf_addr_format(ssp, true, buf, len))
        snprintf(buf, len, "unknown");
}

/* ---- requests ---- */

static void handle(admin_conn *c, bool keep)
{
    if (c->url_too_long) {
        respond_text(c, 414, "URI Too Long\n", false);
        return;
    }
    c->url[c->url_len] = '\0';
    char *q = memchr(c->url, '?', c->url_len);
    size_t plen = q ? (size_t)(q - c->url) : c->url_len;
    admin_request rq = {.srv = c->admin->srv, .admin = c->admin,
                        .method = llhttp_method_name(llhttp_get_method(&c->parser)),
                        .path = c->url};
    if (q && admin_parse_query(q + 1, c->url_len - plen - 1, &rq.params, &rq.n_params) != 0) {
        respond_text(c, 400, "invalid query string\n", keep);
        return;
    }
    c->url[plen] = '\0';
    admin_response rs = {.status = 200, .content_type = ADMIN_CT_TEXT, .body = SBUF_INIT};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t start_ms = uv_now(c->tcp.loop);
    admin_dispatch(&rq, &rs);
    admin_params_free(rq.params, rq.n_params);
    if (rs.body.oom) {
        sbuf_free(&rs.body);
        rs.status = 500;
        rs.content_type = ADMIN_CT_TEXT;
        sbuf_puts(&rs.body, "out of memory\n");
    }
    int status = rs.status;
    size_t bytes = rs.body.n;
    respond(c, &rs, keep);
    if (c->admin->alog) {
        struct sockaddr_storage peer, local;
        int len = sizeof peer;
        uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &len);
        len = sizeof local;
        uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&local, &len);
        if (q)
            c->url[plen] = '?';     /* log the target with its query, as Envoy */
        admin_alog_write(c->admin->alog, rq.method, c->url, status, bytes,
                         (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u,
                         uv_now(c->tcp.loop) - start_ms, &peer, &local);
    }
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    admin_conn *c = p->data;
    if (c->url_len + n >= ADMIN_MAX_URL) {
        c->url_too_long = true;
        return 0;
    }
    memcpy(c->url + c->url_len, at, n);
    c->url_len += n;
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    admin_conn *c = p->data;
    c->url_len = 0;
    c->url_too_long = false;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    admin_conn *c = p->data;
    if (c->closing)
        return HPE_USER;
    bool keep = llhttp_should_keep_alive(p) && !c->admin->stopping && !c->url_too_long;
    handle(c, keep);
    return keep ? 0 : HPE_USER;    /* stop parsing after a closing response */
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_message_complete = on_message_complete,
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    admin_conn *c = h->data;
    buf->base = c->buf;
    buf->len = sizeof c->buf;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    admin_conn *c = st->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (n == 0 || c->closing)
        return;
    llhttp_errno_t e = llhttp_execute(&c->parser, buf->base, (size_t)n);
    if (e == HPE_PAUSED_UPGRADE)
        e = HPE_OK;
    if (e == HPE_USER) {
        uv_read_stop(st);       /* a closing response is on its way */
    } else if (e != HPE_OK) {
        respond_text(c, 400, "Bad Request\n", false);
        uv_read_stop(st);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    pf_admin *a = server->data;
    if (status < 0)
        return;
    admin_conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->admin = a;
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    pf_queue_insert_tail(&a->conns, &c->link);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    llhttp_init(&c->parser, HTTP_REQUEST, &settings);
    c->parser.data = c;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int pf_admin_start(pf_server *srv, const cfg_socket_address *addr, pf_admin **out)
{
    struct sockaddr_storage ss;
    if (pf_sockaddr_from(addr->address, addr->port, &ss) != 0)
        return UV_EINVAL;
    pf_admin *a = calloc(1, sizeof *a);
    if (!a)
        return UV_ENOMEM;
    a->srv = srv;
    pf_queue_init(&a->conns);
    uv_tcp_init(&srv->loop, &a->tcp);
    a->tcp.data = a;
    int rc = admin_alog_open(srv->cfg, &a->alog) ? UV_EACCES : 0;
    if (rc == 0)
        rc = uv_tcp_bind(&a->tcp, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&a->tcp, 128, on_connection);
    if (rc != 0) {
        pf_admin_stop(a);
        return rc;
    }
    *out = a;
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    pf_admin *a = h->data;
    a->listener_closed = true;
    admin_maybe_free(a);
}

void pf_admin_stop(pf_admin *a)
{
    if (!a || a->stopping)
        return;
    a->stopping = true;
    for (pf_queue *q = a->conns.next; q != &a->conns; q = q->next)
        conn_close(pf_queue_data(q, admin_conn, link));
    uv_close((uv_handle_t *)&a->tcp, on_listener_closed);
}
