/* The socket layer: one TCP connection on a worker loop.
 *
 * It hides libuv from the codecs: readers get bytes through on_read, writers
 * append to the socket's output queue and the worker flushes every dirty
 * socket once per loop iteration (uv_prepare), so all output a request
 * produced in one iteration leaves in one writev.  High/low watermarks on
 * the queue drive backpressure: the owner hears on_drain when a queue that
 * passed the high mark falls under the low one.
 *
 * TLS sits here too (pf_sock_tls_server / pf_sock_tls_client): an SSL with
 * memory BIOs.  Ciphertext from libuv goes into the read BIO and plaintext
 * comes out of on_read; plaintext queued with pf_sock_write is encrypted at
 * flush time (one SSL_write per 16 KiB record) into a ciphertext queue that
 * leaves in the same single writev.  The watermarks count plaintext and
 * ciphertext pending.  Owners and codecs never see OpenSSL. */
#ifndef PF_SOCK_H
#define PF_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "proxy/outq.h"
#include "proxy/queue.h"

#define PF_SOCK_HIGH_WATERMARK (1024 * 1024)
#define PF_SOCK_LOW_WATERMARK (256 * 1024)

struct pf_worker;
typedef struct pf_sock pf_sock;

typedef struct pf_sock_cbs {
    /* n > 0: data (valid only during the call); n < 0: UV_EOF or an error. */
    void (*on_read)(pf_sock *s, const char *data, ssize_t n);
    /* Outbound connections only: status 0 or a UV error. */
    void (*on_connect)(pf_sock *s, int status);
    /* The output queue fell under the low watermark after passing the high one. */
    void (*on_drain)(pf_sock *s);
    /* The handle is closed; the owner may free itself now (never earlier). */
    void (*on_close)(pf_sock *s);
    /* TLS server sockets: the handshake completed (ALPN, SNI, peer
     * certificate are known now).  A failed handshake is reported through
     * on_read with UV_EPROTO instead.  TLS client sockets report the
     * handshake through on_connect (0 once it completed, UV_EPROTO if it
     * failed), as Envoy only calls an upstream connected after it. */
    void (*on_tls_ready)(pf_sock *s);
} pf_sock_cbs;

struct pf_sock_tls;                 /* TLS state; proxy/tls.h */

struct pf_sock {
    uv_tcp_t tcp;
    struct pf_worker *w;
    const pf_sock_cbs *cbs;
    void *owner;
    pf_outq out;
    uv_write_t wreq;
    size_t inflight;            /* bytes handed to uv_write, not yet done */
    pf_queue dirty_link;        /* in the worker's dirty list while dirty */
    bool dirty, writing, reading, closing, close_after_flush, above_high, connected;
    uv_connect_t creq;
    struct pf_sock_tls *tls;        /* NULL: plaintext; owned, freed in the close callback */
};

/* Initializes s on w's loop (the handle must be open before use). */
int pf_sock_init(pf_sock *s, struct pf_worker *w, const pf_sock_cbs *cbs, void *owner);
/* Accepts a pending connection from server into an initialized sock. */
int pf_sock_accept(pf_sock *s, uv_stream_t *server);
int pf_sock_connect(pf_sock *s, const struct sockaddr *addr);
void pf_sock_read_start(pf_sock *s);
void pf_sock_read_stop(pf_sock *s);
/* Queues bytes; returns 0 or -ENOMEM. */
int pf_sock_write(pf_sock *s, const void *data, size_t n);
static inline bool pf_sock_above_high(const pf_sock *s) { return s->above_high; }
/* Output not yet on the wire: plaintext queued plus ciphertext. */
size_t pf_sock_pending(const pf_sock *s);
/* Graceful: flushes queued output then closes.  Safe to call twice. */
void pf_sock_close(pf_sock *s);
/* Abortive: drops queued output and sends RST. */
void pf_sock_reset(pf_sock *s);
/* Flushes every dirty socket of the worker (called from uv_prepare). */
void pf_sock_flush_all(struct pf_worker *w);

/* ---- TLS (implemented in proxy/tls.c) ---- */
struct ssl_ctx_st;
struct pf_tls_stats;
/* Makes s a TLS server on ctx (built by proxy/tls.c).  chain >= 0 fixes the
 * filter chain (no ClientHello selection); -1 lets the ClientHello pick it.
 * stats: the listener's ssl.* ids.  Returns 0 or a UV error. */
int pf_sock_tls_server(pf_sock *s, struct ssl_ctx_st *ctx, int chain,
                       const struct pf_tls_stats *stats);
/* Makes s a TLS client (before or after pf_sock_connect); sni may be NULL;
 * resume: an SSL_SESSION to offer (NULL: none). */
int pf_sock_tls_client(pf_sock *s, struct ssl_ctx_st *ctx, const char *sni, void *resume,
                       const struct pf_tls_stats *stats);
/* Ciphertext that was already read from s (e.g. by a listener filter). */
void pf_sock_tls_feed(pf_sock *s, const char *data, size_t n);
static inline bool pf_sock_is_tls(const pf_sock *s) { return s->tls != NULL; }
/* After the handshake: the negotiated ALPN protocol (NUL-terminated, "" when
 * none), the SNI the client sent (NULL), whether the session was resumed,
 * the filter chain the ClientHello chose (-1: none matched). */
const char *pf_sock_alpn(const pf_sock *s);
const char *pf_sock_sni(const pf_sock *s);
bool pf_sock_session_reused(const pf_sock *s);
int pf_sock_tls_chain(const pf_sock *s);
/* The peer's leaf certificate (X509 *, borrowed), or NULL. */
void *pf_sock_peer_cert(const pf_sock *s);

#endif
