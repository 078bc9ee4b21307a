/* A downstream (client) connection: the accepted socket, its transport
 * (plain or TLS, inside pf_sock), the filter chain it matched and the codec
 * that speaks on it (HTTP/1.1 or HTTP/2, chosen per connection).
 *
 * Accept path: with the tls_inspector listener filter the first bytes say
 * TLS or raw_buffer; a TLS ClientHello (SNI, ALPN) picks the filter chain
 * inside the handshake (proxy/tls.c); plaintext connections match with
 * transport_protocol raw_buffer.  The codec attaches once the chain is known
 * (for TLS: after the handshake, so ALPN can choose h2).  No matching chain:
 * the connection is closed and listener.<addr>.no_filter_chain_match counts.
 *
 * Codecs never see libuv: they get plaintext through their vtable and write
 * through pf_sock_* on dc->sock.  The connection owns the codec context and
 * frees it (codec->on_close) from the socket's close callback. */
#ifndef PF_DOWNSTREAM_H
#define PF_DOWNSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"
#include "proxy/queue.h"
#include "proxy/sock.h"

struct pf_worker;
struct pf_listener_rt;
struct pf_listener_stats;
typedef struct pf_dconn pf_dconn;

typedef struct pf_codec_vtbl {
    const char *name;
    /* Starts the codec on dc; returns its context, or NULL (dc is closed). */
    void *(*attach)(pf_dconn *dc);
    /* Plaintext from the client, valid only during the call. */
    void (*on_read)(void *ctx, const char *data, size_t n);
    /* The client closed or the socket failed: reset what is in flight. */
    void (*on_eof)(void *ctx);
    /* Output fell under the low watermark after passing the high one. */
    void (*on_drain)(void *ctx);
    /* The socket is closed: release everything, free ctx. */
    void (*on_close)(void *ctx);
    /* The server drains: finish in-flight work, accept no more (h1: close
     * when idle; h2: GOAWAY). */
    void (*drain)(void *ctx);
    /* The worker stops now: reset every stream (the socket is reset after). */
    void (*abort)(void *ctx);
    /* The connection's deadline timer fired: act on every stream whose
     * timeout passed at `now` (hcm_stream_expire) and return the earliest
     * deadline still pending (loop ms), UINT64_MAX for none. */
    uint64_t (*sweep)(void *ctx, uint64_t now);
} pf_codec_vtbl;

struct pf_dconn {
    pf_sock sock;
    struct pf_worker *w;
    const struct pf_listener_rt *l;
    const cfg_listener *listener;
    const cfg_hcm *hcm;             /* the filter chain's connection manager (NULL until chosen) */
    int chain;                      /* index in listener->chains; -1 until chosen */
    bool inspecting;                /* tls_inspector: waiting for the first bytes */
    /* The chain's stat ids once chosen; before, the listener's (listener.* only). */
    const struct pf_listener_stats *ls;
    pf_queue link;                  /* in w->conns */
    struct sockaddr_storage peer, local;
    uint64_t start_ms;
    const pf_codec_vtbl *codec;
    void *codec_ctx;
    /* One timer per connection for every connection and stream timeout
     * (Envoy's idle_timeout, max_connection_duration, and through the
     * codec's sweep the stream timeouts).  Data moving only stores a
     * timestamp; the timer is re-armed when a deadline comes nearer (a new
     * stream, a shorter route idle_timeout) or when it fires and finds the
     * next one.  Closed with the socket; its close callback frees dc. */
    uv_timer_t timer;
    uint64_t timer_due;             /* loop ms it fires; 0: stopped */
    uint64_t idle_since_ms;         /* no stream since; 0: streams active */
    bool max_duration_reached;
};

/* Arms dc's timer for `due` (loop ms) unless it fires earlier already;
 * UINT64_MAX: nothing. */
void pf_dconn_arm(pf_dconn *dc, uint64_t due);
/* Codecs: the connection has no stream from now (true) or got one (false);
 * the idle_timeout runs while idle. */
void pf_dconn_set_idle(pf_dconn *dc, bool idle);

/* Accepts one pending connection from l; failures are logged and dropped. */
void pf_downstream_accept(struct pf_listener_rt *l);
/* Drain every connection of the worker (see pf_codec_vtbl.drain). */
void pf_downstream_drain_all(struct pf_worker *w);
/* Reset every connection of the worker now. */
void pf_downstream_close_all(struct pf_worker *w);

#endif
