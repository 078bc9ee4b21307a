#include "proxy/sock.h"

#include <errno.h>
#include <string.h>

#include "proxy/worker.h"

#define SOCK_MAX_IOV 64

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    pf_sock *s = h->data;
    /* One read buffer per worker: on_read consumes or copies what it needs
     * before returning, so connections never hold idle read memory. */
    if (s->w->read_buf_busy) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    s->w->read_buf_busy = true;
    buf->base = s->w->read_buf;
    buf->len = sizeof s->w->read_buf;
}

static void on_uv_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    pf_sock *s = st->data;
    if (buf->base == s->w->read_buf)
        s->w->read_buf_busy = false;
    if (n == 0 || s->closing)
        return;
    if (n == UV_ENOBUFS)
        return;
    s->cbs->on_read(s, buf->base, n);
}

int pf_sock_init(pf_sock *s, pf_worker *w, const pf_sock_cbs *cbs, void *owner)
{
    memset(s, 0, sizeof *s);
    s->w = w;
    s->cbs = cbs;
    s->owner = owner;
    pf_outq_init(&s->out);
    pf_queue_init(&s->dirty_link);
    int rc = uv_tcp_init(&w->loop, &s->tcp);
    s->tcp.data = s;
    return rc;
}

int pf_sock_accept(pf_sock *s, uv_stream_t *server)
{
    int rc = uv_accept(server, (uv_stream_t *)&s->tcp);
    if (rc == 0) {
        s->connected = true;
        uv_tcp_nodelay(&s->tcp, 1);
    }
    return rc;
}

static void on_uv_connect(uv_connect_t *req, int status)
{
    pf_sock *s = req->data;
    if (status == UV_ECANCELED || s->closing)
        return;
    if (status == 0) {
        s->connected = true;
        uv_tcp_nodelay(&s->tcp, 1);
        if (s->out.bytes)
            pf_sock_write(s, NULL, 0);  /* mark dirty: flush what was queued while connecting */
    }
    s->cbs->on_connect(s, status);
}

int pf_sock_connect(pf_sock *s, const struct sockaddr *addr)
{
    s->creq.data = s;
    return uv_tcp_connect(&s->creq, &s->tcp, addr, on_uv_connect);
}

void pf_sock_read_start(pf_sock *s)
{
    if (s->reading || s->closing)
        return;
    if (uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_uv_read) == 0)
        s->reading = true;
}

void pf_sock_read_stop(pf_sock *s)
{
    if (!s->reading)
        return;
    uv_read_stop((uv_stream_t *)&s->tcp);
    s->reading = false;
}

static void mark_dirty(pf_sock *s)
{
    if (s->dirty)
        return;
    s->dirty = true;
    pf_queue_insert_tail(&s->w->dirty, &s->dirty_link);
}

int pf_sock_write(pf_sock *s, const void *data, size_t n)
{
    if (s->closing)
        return 0;
    if (n && pf_outq_append(&s->out, &s->w->chunks, data, n) < 0)
        return -ENOMEM;
    if (s->out.bytes >= PF_SOCK_HIGH_WATERMARK)
        s->above_high = true;
    mark_dirty(s);
    return 0;
}

static void on_close(uv_handle_t *h)
{
    pf_sock *s = h->data;
    if (s->dirty) {
        s->dirty = false;
        pf_queue_remove(&s->dirty_link);
    }
    pf_outq_clear(&s->out, &s->w->chunks);
    if (s->cbs->on_close)
        s->cbs->on_close(s);
}

static void sock_close_now(pf_sock *s)
{
    if (uv_is_closing((uv_handle_t *)&s->tcp))
        return;
    s->closing = true;
    uv_close((uv_handle_t *)&s->tcp, on_close);
}

static void after_write(pf_sock *s)
{
    if (s->above_high && s->out.bytes <= PF_SOCK_LOW_WATERMARK) {
        s->above_high = false;
        if (s->cbs->on_drain)
            s->cbs->on_drain(s);
    }
    if (s->close_after_flush && s->out.bytes == 0 && !s->writing)
        sock_close_now(s);
}

static void on_uv_write(uv_write_t *req, int status)
{
    pf_sock *s = req->data;
    s->writing = false;
    pf_outq_consume(&s->out, &s->w->chunks, s->inflight);
    s->inflight = 0;
    if (status < 0 || s->closing) {
        if (!s->closing)
            pf_sock_reset(s);
        return;
    }
    if (s->out.bytes)
        mark_dirty(s);
    after_write(s);
}

/* Writes what it can now (writev via uv_try_write) and hands the rest to
 * uv_write, whose buffers stay valid in the chunks until on_uv_write. */
static void sock_flush(pf_sock *s)
{
    if (s->writing || s->closing || !s->connected || s->out.bytes == 0) {
        if (!s->writing && !s->closing && s->close_after_flush && s->out.bytes == 0)
            sock_close_now(s);
        return;
    }
    uv_buf_t bufs[SOCK_MAX_IOV];
    for (;;) {
        unsigned nb = pf_outq_peek(&s->out, bufs, SOCK_MAX_IOV);
        if (nb == 0)
            break;
        int n = uv_try_write((uv_stream_t *)&s->tcp, bufs, nb);
        if (n == UV_EAGAIN)
            n = 0;
        if (n < 0) {
            pf_sock_reset(s);
            return;
        }
        pf_outq_consume(&s->out, &s->w->chunks, (size_t)n);
        if (s->out.bytes == 0)
            break;
        size_t total = 0;
        for (unsigned i = 0; i < nb; i++)
            total += bufs[i].len;
        if ((size_t)n < total) {
            nb = pf_outq_peek(&s->out, bufs, SOCK_MAX_IOV);
            size_t left = 0;
            for (unsigned i = 0; i < nb; i++)
                left += bufs[i].len;
            s->inflight = left;
            s->writing = true;
            s->wreq.data = s;
            if (uv_write(&s->wreq, (uv_stream_t *)&s->tcp, bufs, nb, on_uv_write) < 0) {
                s->writing = false;
                s->inflight = 0;
                pf_sock_reset(s);
            }
            return;
        }
    }
    after_write(s);
}

void pf_sock_flush_all(pf_worker *w)
{
    while (!pf_queue_empty(&w->dirty)) {
        pf_queue *q = w->dirty.next;
        pf_sock *s = pf_queue_data(q, pf_sock, dirty_link);
        pf_queue_remove(q);
        s->dirty = false;
        sock_flush(s);
    }
}

void pf_sock_close(pf_sock *s)
{
    if (s->closing)
        return;
    pf_sock_read_stop(s);
    if (s->out.bytes == 0 && !s->writing) {
        sock_close_now(s);
        return;
    }
    s->close_after_flush = true;
    mark_dirty(s);
}

void pf_sock_reset(pf_sock *s)
{
    if (uv_is_closing((uv_handle_t *)&s->tcp))
        return;
    s->closing = true;
    pf_sock_read_stop(s);
    if (s->connected && !s->writing &&
        uv_tcp_close_reset(&s->tcp, on_close) == 0)
        return;
    uv_close((uv_handle_t *)&s->tcp, on_close);
}
