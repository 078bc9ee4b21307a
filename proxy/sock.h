/* The socket layer: one TCP connection on a worker loop.
 *
 * It hides libuv from the codecs: readers get bytes through on_read, writers
 * append to the socket's output queue and the worker flushes every dirty
 * socket once per loop iteration (uv_prepare), so all output a request
 * produced in one iteration leaves in one writev.  High/low watermarks on
 * the queue drive backpressure: the owner hears on_drain when a queue that
 * passed the high mark falls under the low one.  TLS will sit here too. */
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
} pf_sock_cbs;

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
static inline size_t pf_sock_pending(const pf_sock *s) { return s->out.bytes; }
/* Graceful: flushes queued output then closes.  Safe to call twice. */
void pf_sock_close(pf_sock *s);
/* Abortive: drops queued output and sends RST. */
void pf_sock_reset(pf_sock *s);
/* Flushes every dirty socket of the worker (called from uv_prepare). */
void pf_sock_flush_all(struct pf_worker *w);

#endif
