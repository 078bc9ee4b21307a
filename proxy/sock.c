#include "proxy/sock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "proxy/tls.h"
#include "proxy/tls_mem.h"
#include "proxy/worker.h"

#define SOCK_MAX_IOV 64
/* One TLS record's worth of plaintext: reads decrypt into it, writes
 * coalesce small chunks into it so each SSL_write makes a full record. */
#define TLS_RECORD 16384

static _Thread_local char tls_buf[TLS_RECORD];

static void mark_dirty(pf_sock *s);
static void tls_pump(pf_sock *s);


/* ---- TLS engine ---- */

static pf_outq *wire_q(pf_sock *s)
{
    return s->tls ? &s->tls->cout : &s->out;
}

size_t pf_sock_pending(const pf_sock *s)
{
    return s->out.bytes + (s->tls ? s->tls->cout.bytes : 0);
}

/* Moves what OpenSSL wrote into the write BIO to the ciphertext queue. */
static int tls_drain_wbio(pf_sock *s)
{
    pf_sock_tls *t = s->tls;
    char *p;
    size_t n = pf_tls_mem_out(t->ssl, &p);
    if (!n)
        return 0;
    int rc = pf_outq_append(&t->cout, &s->w->chunks, p, n);
    pf_tls_mem_out_clear(t->ssl);
    if (rc == 0)
        mark_dirty(s);
    return rc;
}

/* The handshake failed: count it, send the alert OpenSSL produced, tell the
 * owner and close.  Nothing else on the worker is affected. */
static void tls_fail(pf_sock *s)
{
    pf_sock_tls *t = s->tls;
    if (t->failed)
        return;
    t->failed = true;
    pf_tls__handshake_failed(s);
    ERR_clear_error();
    tls_drain_wbio(s);
    pf_outq_clear(&s->out, &s->w->chunks);     /* plaintext never goes out now */
    s->close_after_flush = true;
    mark_dirty(s);
    pf_sock_read_stop(s);
    if (!t->server && s->cbs->on_connect)
        s->cbs->on_connect(s, UV_EPROTO);
    else
        s->cbs->on_read(s, NULL, UV_EPROTO);
}

/* Drives the handshake; returns true once it is done (and the owner was told). */
static bool tls_handshake(pf_sock *s)
{
    pf_sock_tls *t = s->tls;
    if (t->hs_done)
        return true;
    t->started = true;
    int r = pf_tls_mem_handshake(t->ssl);
    if (tls_drain_wbio(s) != 0) {
        pf_sock_reset(s);
        return false;
    }
    if (r != 1) {
        if (r < 0)
            tls_fail(s);
        return false;
    }
    t->hs_done = true;
    pf_tls__handshake_done(s);
    mark_dirty(s);                  /* plaintext queued during the handshake */
    if (t->server) {
        if (s->cbs->on_tls_ready)
            s->cbs->on_tls_ready(s);
    } else if (s->cbs->on_connect) {
        s->cbs->on_connect(s, 0);
    }
    return !s->closing && !t->failed;
}

/* Decrypts what the read BIO holds and hands plaintext to the owner while
 * it keeps reading.  Plaintext left in OpenSSL when the owner stops reading
 * is delivered by pf_sock_read_start (deferred). */
static void tls_pump(pf_sock *s)
{
    pf_sock_tls *t = s->tls;
    if (s->closing || t->failed || !tls_handshake(s))
        return;
    while (s->reading && !s->closing && !t->eof) {
        int k = pf_tls_mem_read(t->ssl, tls_buf, sizeof tls_buf);
        if (k > 0) {
            s->cbs->on_read(s, tls_buf, k);
            continue;
        }
        if (tls_drain_wbio(s) != 0) {
            pf_sock_reset(s);
            return;
        }
        if (k == 0)
            break;
        t->eof = true;
        s->cbs->on_read(s, NULL, k);
        return;
    }
    if (!s->closing && tls_drain_wbio(s) != 0)
        pf_sock_reset(s);
}

static void on_tls_pump(pf_deferred *d)
{
    pf_sock_tls *t = pf_queue_data(d, pf_sock_tls, pump);
    tls_pump(t->sock);
}

void pf_sock_tls_feed(pf_sock *s, const char *data, size_t n)
{
    pf_sock_tls *t = s->tls;
    if (!t || t->failed || s->closing)
        return;
    if (pf_tls_mem_feed(t->ssl, data, n) != 0) {
        pf_sock_reset(s);
        return;
    }
    tls_pump(s);
}

static void tls_on_eof(pf_sock *s, ssize_t n)
{
    pf_sock_tls *t = s->tls;
    if (t->failed)
        return;
    if (!t->hs_done) {
        /* The peer went away mid-handshake: not a TLS error. */
        t->failed = true;
        pf_sock_read_stop(s);
        if (!t->server && s->cbs->on_connect)
            s->cbs->on_connect(s, (int)n);
        else
            s->cbs->on_read(s, NULL, n);
        return;
    }
    if (t->eof)
        return;
    t->eof = true;
    s->cbs->on_read(s, NULL, n);
}

/* Starts the client handshake once connected (the ClientHello). */
static void tls_client_start(pf_sock *s)
{
    if (s->tls && !s->tls->server && !s->tls->started && s->connected)
        tls_handshake(s);
}

/* Encrypts queued plaintext (after the handshake) and, when closing
 * gracefully, appends close_notify.  Returns 0 or -1 (reset). */
static int tls_encrypt(pf_sock *s)
{
    pf_sock_tls *t = s->tls;
    if (!t->hs_done || t->failed)
        return 0;
    uv_buf_t bufs[SOCK_MAX_IOV];
    while (s->out.bytes) {
        unsigned nb = pf_outq_peek(&s->out, bufs, SOCK_MAX_IOV);
        const char *p = bufs[0].base;
        size_t len = bufs[0].len;
        if (len < TLS_RECORD && nb > 1) {
            len = 0;
            for (unsigned i = 0; i < nb && len < TLS_RECORD; i++) {
                size_t k = bufs[i].len < TLS_RECORD - len ? bufs[i].len : TLS_RECORD - len;
                memcpy(tls_buf + len, bufs[i].base, k);
                len += k;
            }
            p = tls_buf;
        } else if (len > TLS_RECORD) {
            len = TLS_RECORD;
        }
        ERR_clear_error();
        int k = SSL_write(t->ssl, p, (int)len);
        if (k <= 0)
            return -1;
        pf_outq_consume(&s->out, &s->w->chunks, (size_t)k);
        if (tls_drain_wbio(s) != 0)
            return -1;
    }
    if (s->close_after_flush && !t->shutdown_sent) {
        t->shutdown_sent = true;
        ERR_clear_error();
        SSL_shutdown(t->ssl);
        ERR_clear_error();
        if (tls_drain_wbio(s) != 0)
            return -1;
    }
    return 0;
}

static void tls_free(pf_sock *s)
{
    pf_sock_tls *t = s->tls;
    if (!t)
        return;
    pf_worker_cancel_defer(s->w, &t->pump);
    pf_outq_clear(&t->cout, &s->w->chunks);
    SSL_free(t->ssl);
    free(t);
    s->tls = NULL;
}

static int tls_new(pf_sock *s, SSL_CTX *ctx, bool server, const struct pf_tls_stats *stats)
{
    if (s->tls || !ctx)
        return UV_EINVAL;
    pf_sock_tls *t = calloc(1, sizeof *t);
    if (!t)
        return UV_ENOMEM;
    if (!(t->ssl = pf_tls_mem_new(ctx, server, &t->fail))) {
        free(t);
        return UV_ENOMEM;
    }
    SSL_set_app_data(t->ssl, s);
    pf_outq_init(&t->cout);
    pf_queue_init(&t->pump.link);
    t->pump.fn = on_tls_pump;
    t->sock = s;
    t->stats = stats;
    t->server = server;
    t->chain = -1;
    s->tls = t;
    return 0;
}

int pf_sock_tls_server(pf_sock *s, SSL_CTX *ctx, int chain, const struct pf_tls_stats *stats)
{
    int rc = tls_new(s, ctx, true, stats);
    if (rc == 0)
        s->tls->chain = chain;
    return rc;
}

int pf_sock_tls_client(pf_sock *s, SSL_CTX *ctx, const char *sni, void *resume,
                       const struct pf_tls_stats *stats)
{
    int rc = tls_new(s, ctx, false, stats);
    if (rc)
        return rc;
    if ((sni && *sni && !SSL_set_tlsext_host_name(s->tls->ssl, sni)) ||
        (resume && !SSL_set_session(s->tls->ssl, resume))) {
        tls_free(s);
        return UV_EINVAL;
    }
    tls_client_start(s);
    return 0;
}

const char *pf_sock_alpn(const pf_sock *s)
{
    static _Thread_local char alpn[256];
    const unsigned char *p = NULL;
    unsigned n = 0;
    alpn[0] = '\0';
    if (s->tls && s->tls->hs_done) {
        SSL_get0_alpn_selected(s->tls->ssl, &p, &n);
        if (p && n < sizeof alpn) {
            memcpy(alpn, p, n);
            alpn[n] = '\0';
        }
    }
    return alpn;
}

const char *pf_sock_sni(const pf_sock *s)
{
    return s->tls ? SSL_get_servername(s->tls->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}

bool pf_sock_session_reused(const pf_sock *s)
{
    return s->tls && s->tls->hs_done && SSL_session_reused(s->tls->ssl);
}

int pf_sock_tls_chain(const pf_sock *s)
{
    return s->tls ? s->tls->chain : -1;
}

void *pf_sock_peer_cert(const pf_sock *s)
{
    return s->tls && s->tls->hs_done ? SSL_get0_peer_certificate(s->tls->ssl) : NULL;
}

/* ---- plain socket ---- */

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
    if (s->tls) {
        if (n > 0)
            pf_sock_tls_feed(s, buf->base, (size_t)n);
        else
            tls_on_eof(s, n);
        return;
    }
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
        if (s->tls) {
            /* The owner hears on_connect when the handshake is done. */
            pf_sock_read_start(s);
            tls_client_start(s);
            return;
        }
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
    /* Plaintext OpenSSL already holds would otherwise wait for more bytes
     * from the peer, which may never come. */
    if (s->reading && s->tls && s->tls->hs_done &&
        (SSL_pending(s->tls->ssl) > 0 || BIO_ctrl_pending(SSL_get_rbio(s->tls->ssl)) > 0))
        pf_worker_defer(s->w, &s->tls->pump);
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
    if (pf_sock_pending(s) >= PF_SOCK_HIGH_WATERMARK)
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
    tls_free(s);
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
    if (s->above_high && pf_sock_pending(s) <= PF_SOCK_LOW_WATERMARK) {
        s->above_high = false;
        if (s->cbs->on_drain)
            s->cbs->on_drain(s);
    }
    if (s->close_after_flush && !s->writing && !s->closing && wire_q(s)->bytes == 0 &&
        (s->out.bytes == 0 || (s->tls && (s->tls->failed || !s->tls->hs_done))))
        sock_close_now(s);
}

static void on_uv_write(uv_write_t *req, int status)
{
    pf_sock *s = req->data;
    s->writing = false;
    pf_outq_consume(wire_q(s), &s->w->chunks, s->inflight);
    s->inflight = 0;
    if (status < 0 || s->closing) {
        if (!s->closing)
            pf_sock_reset(s);
        return;
    }
    if (pf_sock_pending(s))
        mark_dirty(s);
    after_write(s);
}

/* Writes what it can now (writev via uv_try_write) and hands the rest to
 * uv_write, whose buffers stay valid in the chunks until on_uv_write. */
static void sock_flush(pf_sock *s)
{
    if (s->tls && !s->closing && s->connected && tls_encrypt(s) != 0) {
        pf_sock_reset(s);
        return;
    }
    pf_outq *q = wire_q(s);
    if (s->writing || s->closing || !s->connected || q->bytes == 0) {
        if (!s->writing && !s->closing && s->close_after_flush)
            after_write(s);
        return;
    }
    uv_buf_t bufs[SOCK_MAX_IOV];
    for (;;) {
        unsigned nb = pf_outq_peek(q, bufs, SOCK_MAX_IOV);
        if (nb == 0)
            break;
        int n = uv_try_write((uv_stream_t *)&s->tcp, bufs, nb);
        if (n == UV_EAGAIN)
            n = 0;
        if (n < 0) {
            pf_sock_reset(s);
            return;
        }
        pf_outq_consume(q, &s->w->chunks, (size_t)n);
        if (q->bytes == 0)
            break;
        size_t total = 0;
        for (unsigned i = 0; i < nb; i++)
            total += bufs[i].len;
        if ((size_t)n < total) {
            nb = pf_outq_peek(q, bufs, SOCK_MAX_IOV);
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
    if (pf_sock_pending(s) == 0 && !s->writing) {
        pf_sock_tls *t = s->tls;
        if (t && t->hs_done && !t->failed && !t->shutdown_sent && s->connected) {
            /* close_notify now, best effort: nothing else is queued, and a
             * stopping loop may not run another flush. */
            t->shutdown_sent = true;
            ERR_clear_error();
            SSL_shutdown(t->ssl);
            ERR_clear_error();
            char *p;
            size_t n = pf_tls_mem_out(t->ssl, &p);
            if (n) {
                uv_buf_t b = uv_buf_init(p, (unsigned)n);
                (void)uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
            }
            pf_tls_mem_out_clear(t->ssl);
        }
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
