#include "admin/admin.h"

#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/cluster.h"
#include "proxy/http.h"
#include "proxy/log.h"
#include "proxy/queue.h"
#include "proxy/server.h"

#define ADMIN_MAX_URL 2048

struct pf_admin {
    pf_server *srv;
    uv_tcp_t tcp;
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
    char buf[4096];
    bool responding;
} admin_conn;

typedef struct admin_write {
    uv_write_t req;
    admin_conn *conn;
    bool close_after;
    char data[];
} admin_write;

/* The admin is freed when its listener and every connection are closed. */
static void admin_maybe_free(pf_admin *a)
{
    if (a->listener_closed && pf_queue_empty(&a->conns))
        free(a);
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
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_written(uv_write_t *req, int status)
{
    admin_write *w = (admin_write *)req;
    if (status < 0 || w->close_after)
        conn_close(w->conn);
    free(w);
}

static void respond(admin_conn *c, int status, const char *ctype, const char *body, bool keep)
{
    size_t blen = strlen(body);
    admin_write *w = malloc(sizeof *w + blen + 256);
    if (!w) {
        conn_close(c);
        return;
    }
    int n = snprintf(w->data, 256,
                     "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
                     "cache-control: no-cache, max-age=0\r\nx-content-type-options: nosniff\r\n"
                     "server: envoy\r\n%s\r\n",
                     status, pf_http_reason(status),
                     ctype, blen, keep ? "" : "connection: close\r\n");
    memcpy(w->data + n, body, blen);
    w->conn = c;
    w->close_after = !keep;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)(n + (int)blen));
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
        free(w);
        conn_close(c);
    }
}

static const char help_text[] =
    "admin commands are:\n"
    "  /: Admin home page\n"
    "  /help: print out list of admin commands\n"
    "  /ready: print server state, return 200 if LIVE, otherwise return 503\n";

static void handle(admin_conn *c, bool keep)
{
    pf_server *srv = c->admin->srv;
    char *q = memchr(c->url, '?', c->url_len);
    size_t plen = q ? (size_t)(q - c->url) : c->url_len;
    c->url[plen] = '\0';
    if (strcmp(c->url, "/ready") == 0) {
        if (srv->draining)
            respond(c, 503, "text/plain; charset=UTF-8", "DRAINING\n", keep);
        else
            respond(c, 200, "text/plain; charset=UTF-8", "LIVE\n", keep);
    } else if (strcmp(c->url, "/") == 0 || strcmp(c->url, "/help") == 0) {
        respond(c, 200, "text/plain; charset=UTF-8", help_text, keep);
    } else {
        respond(c, 404, "text/plain; charset=UTF-8", help_text, keep);
    }
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    admin_conn *c = p->data;
    if (c->url_len + n >= ADMIN_MAX_URL)
        return HPE_USER;
    memcpy(c->url + c->url_len, at, n);
    c->url_len += n;
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    admin_conn *c = p->data;
    c->url_len = 0;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    admin_conn *c = p->data;
    handle(c, llhttp_should_keep_alive(p) && !c->admin->stopping);
    return 0;
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
    if (n > 0 && llhttp_execute(&c->parser, buf->base, (size_t)n) != HPE_OK) {
        respond(c, 400, "text/plain", "Bad Request\n", false);
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
    int rc = uv_tcp_bind(&a->tcp, (const struct sockaddr *)&ss, 0);
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
