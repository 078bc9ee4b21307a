#include "proxy/downstream.h"

#include <stdlib.h>
#include <string.h>

#include "admin/stats.h"
#include "proxy/h1_server.h"
#include "proxy/h2_server.h"
#include "proxy/log.h"
#include "proxy/proxy_stats.h"
#include "proxy/tls.h"
#include "proxy/worker.h"

static void select_chain(pf_dconn *dc, int idx, const char *data, size_t n);

/* The codec for the chosen chain: h2 for ALPN "h2" or codec_type HTTP2,
 * HTTP/1.1 otherwise; on plaintext AUTO the HTTP/2 engineer's sniffer
 * (proxy/h2_sniff.c) looks for the h2c prior-knowledge preface. */
static const pf_codec_vtbl *pick_codec(pf_dconn *dc)
{
    const char *alpn = pf_sock_is_tls(&dc->sock) ? pf_sock_alpn(&dc->sock) : NULL;
    if (alpn && !*alpn)
        alpn = NULL;
    return h2_pick_codec(dc, alpn, alpn ? strlen(alpn) : 0);
}

/* ---- connection timeouts ---- */

/* The earliest of the connection-level deadlines. */
static uint64_t conn_deadline(const pf_dconn *dc)
{
    const cfg_hcm_options *o = &dc->hcm->opts;
    uint64_t due = UINT64_MAX;
    if (dc->idle_since_ms && o->idle_timeout_ms)
        due = dc->idle_since_ms + o->idle_timeout_ms;
    if (o->max_connection_duration_ms && !dc->max_duration_reached &&
        dc->start_ms + o->max_connection_duration_ms < due)
        due = dc->start_ms + o->max_connection_duration_ms;
    return due;
}

static void on_deadline(uv_timer_t *t)
{
    pf_dconn *dc = t->data;
    pf_worker *w = dc->w;
    dc->timer_due = 0;
    if (dc->sock.closing || !dc->codec_ctx)
        return;
    const cfg_hcm_options *o = &dc->hcm->opts;
    uint64_t now = uv_now(&w->loop);
    if (o->max_connection_duration_ms && !dc->max_duration_reached &&
        now >= dc->start_ms + o->max_connection_duration_ms) {
        /* Envoy drains: h1 closes after the response in flight, h2 GOAWAYs. */
        dc->max_duration_reached = true;
        stats_inc(w->stats, dc->ls->cx_max_duration_reached);
        dc->codec->drain(dc->codec_ctx);
    }
    if (dc->idle_since_ms && o->idle_timeout_ms && now >= dc->idle_since_ms + o->idle_timeout_ms) {
        /* No stream: h1 closes now, h2 sends GOAWAY and closes once it is out. */
        dc->idle_since_ms = 0;
        stats_inc(w->stats, dc->ls->cx_idle_timeout);
        dc->codec->drain(dc->codec_ctx);
    }
    if (dc->sock.closing)
        return;
    uint64_t due = dc->codec->sweep(dc->codec_ctx, now);
    if (dc->sock.closing)
        return;
    uint64_t cd = conn_deadline(dc);
    pf_dconn_arm(dc, due < cd ? due : cd);
}

void pf_dconn_arm(pf_dconn *dc, uint64_t due)
{
    if (due == UINT64_MAX || (dc->timer_due && dc->timer_due <= due) || dc->sock.closing)
        return;
    uint64_t now = uv_now(&dc->w->loop);
    dc->timer_due = due;
    uv_timer_start(&dc->timer, on_deadline, due > now ? due - now : 0, 0);
}

void pf_dconn_set_idle(pf_dconn *dc, bool idle)
{
    if (!idle) {
        dc->idle_since_ms = 0;
        return;
    }
    dc->idle_since_ms = uv_now(&dc->w->loop);
    if (dc->hcm)
        pf_dconn_arm(dc, conn_deadline(dc));
}

/* The chain is known (and its TLS handshake done): attach the codec and
 * hand it the first plaintext bytes (data, n), if any. */
static void attach_codec(pf_dconn *dc, int idx, const char *data, size_t n)
{
    pf_worker *w = dc->w;
    const cfg_filter_chain *ch = &dc->listener->chains[idx];
    dc->chain = idx;
    dc->hcm = &ch->hcm;
    dc->ls = &w->ps->chains[ch->hcm.index];
    stats_inc(w->stats, dc->ls->cx_total);
    stats_gauge_add(w->stats, dc->ls->cx_active, 1);
    dc->codec = pick_codec(dc);
    if (!(dc->codec_ctx = dc->codec->attach(dc))) {
        pf_sock_close(&dc->sock);
        return;
    }
    pf_dconn_set_idle(dc, true);    /* Envoy's idle timer starts with the connection */
    if (n)
        dc->codec->on_read(dc->codec_ctx, data, n);
}

static void no_chain(pf_dconn *dc)
{
    stats_inc(dc->w->stats, dc->ls->no_filter_chain_match);
    pf_debug("listener %s: no filter chain matched", dc->listener->name);
    pf_sock_close(&dc->sock);
}

/* Plaintext or a fixed chain (no ClientHello selection): data, n are bytes
 * already read (ciphertext for a TLS chain). */
static void select_chain(pf_dconn *dc, int idx, const char *data, size_t n)
{
    if (idx < 0) {
        no_chain(dc);
        return;
    }
    const cfg_filter_chain *ch = &dc->listener->chains[idx];
    if (!ch->tls) {
        attach_codec(dc, idx, data, n);
        return;
    }
    SSL_CTX *ctx = pf_tls_chain_ctx(pf_tls_store_get(), ch->hcm.index);
    if (!ctx || pf_sock_tls_server(&dc->sock, ctx, idx, &dc->ls->ssl) != 0) {
        pf_sock_close(&dc->sock);
        return;
    }
    if (n)
        pf_sock_tls_feed(&dc->sock, data, n);
}

/* tls_inspector: a TLS handshake record (0x16) means transport "tls" and
 * the ClientHello picks the chain during the handshake. */
static void inspect(pf_dconn *dc, const char *data, size_t n)
{
    dc->inspecting = false;
    bool tls = n >= 1 && (unsigned char)data[0] == 0x16;
    SSL_CTX *ctx = tls ? pf_tls_listener_ctx(pf_tls_store_get(), dc->listener) : NULL;
    if (ctx) {
        if (pf_sock_tls_server(&dc->sock, ctx, -1, &dc->ls->ssl) != 0) {
            pf_sock_close(&dc->sock);
            return;
        }
        pf_sock_tls_feed(&dc->sock, data, n);
        return;
    }
    select_chain(dc, pf_tls_match_chain(dc->listener, NULL, tls, NULL, 0), data, n);
}

static void on_read(pf_sock *sock, const char *data, ssize_t n)
{
    pf_dconn *dc = sock->owner;
    if (dc->codec_ctx) {
        if (n < 0)
            dc->codec->on_eof(dc->codec_ctx);
        else
            dc->codec->on_read(dc->codec_ctx, data, (size_t)n);
        return;
    }
    if (n < 0) {
        /* EOF or a failed handshake before any codec (counted in proxy/tls.c). */
        if (sock->tls && sock->tls->fail == PF_TLS_FAIL_NO_CHAIN)
            no_chain(dc);
        else
            pf_sock_close(sock);
        return;
    }
    if (dc->inspecting)
        inspect(dc, data, (size_t)n);
}

static void on_tls_ready(pf_sock *sock)
{
    pf_dconn *dc = sock->owner;
    int idx = pf_sock_tls_chain(sock);
    if (idx < 0) {
        no_chain(dc);
        return;
    }
    attach_codec(dc, idx, NULL, 0);
}

static void on_drain(pf_sock *sock)
{
    pf_dconn *dc = sock->owner;
    if (dc->codec_ctx)
        dc->codec->on_drain(dc->codec_ctx);
}

/* The last handle of dc is closed: free it. */
static void on_timer_closed(uv_handle_t *h)
{
    pf_dconn *dc = h->data;
    pf_worker *w = dc->w;
    free(dc);
    pf_worker_conn_closed(w);
}

static void on_close(pf_sock *sock)
{
    pf_dconn *dc = sock->owner;
    pf_worker *w = dc->w;
    if (dc->codec_ctx)
        dc->codec->on_close(dc->codec_ctx);
    stats_gauge_add(w->stats, dc->ls->l_cx_active, -1);
    if (dc->hcm) {
        stats_gauge_add(w->stats, dc->ls->cx_active, -1);
        stats_record(w->stats, dc->ls->cx_length_ms, (uv_now(&w->loop) - dc->start_ms) * 1000);
    }
    pf_queue_remove(&dc->link);
    uv_timer_stop(&dc->timer);
    uv_close((uv_handle_t *)&dc->timer, on_timer_closed);
}

static const pf_sock_cbs downstream_cbs = {
    .on_read = on_read,
    .on_drain = on_drain,
    .on_close = on_close,
    .on_tls_ready = on_tls_ready,
};

void pf_downstream_accept(pf_listener_rt *l)
{
    pf_worker *w = l->w;
    pf_dconn *dc = calloc(1, sizeof *dc);
    if (!dc)
        return;
    dc->w = w;
    dc->l = l;
    dc->listener = l->cfg;
    dc->chain = -1;
    dc->ls = &w->ps->listeners[l->index];
    dc->start_ms = uv_now(&w->loop);
    if (pf_sock_init(&dc->sock, w, &downstream_cbs, dc) != 0) {
        free(dc);
        return;
    }
    uv_timer_init(&w->loop, &dc->timer);
    uv_unref((uv_handle_t *)&dc->timer);    /* the socket keeps the loop alive, not this */
    dc->timer.data = dc;
    pf_queue_insert_tail(&w->conns, &dc->link);
    w->n_conns++;
    stats_inc(w->stats, dc->ls->l_cx_total);
    stats_gauge_add(w->stats, dc->ls->l_cx_active, 1);
    if (pf_sock_accept(&dc->sock, (uv_stream_t *)&l->tcp) != 0) {
        pf_sock_close(&dc->sock);
        return;
    }
    int len = sizeof dc->peer;
    uv_tcp_getpeername(&dc->sock.tcp, (struct sockaddr *)&dc->peer, &len);
    len = sizeof dc->local;
    uv_tcp_getsockname(&dc->sock.tcp, (struct sockaddr *)&dc->local, &len);
    if (l->cfg->tls_inspector)
        dc->inspecting = true;
    else
        select_chain(dc, pf_tls_match_chain(l->cfg, NULL, false, NULL, 0), NULL, 0);
    if (!dc->sock.closing)
        pf_sock_read_start(&dc->sock);
}

void pf_downstream_drain_all(pf_worker *w)
{
    for (pf_queue *q = w->conns.next; q != &w->conns;) {
        pf_dconn *dc = pf_queue_data(q, pf_dconn, link);
        q = q->next;
        if (dc->sock.closing)
            continue;
        if (dc->codec_ctx)
            dc->codec->drain(dc->codec_ctx);
        else
            pf_sock_close(&dc->sock);   /* still inspecting or in its handshake */
    }
}

void pf_downstream_close_all(pf_worker *w)
{
    for (pf_queue *q = w->conns.next; q != &w->conns;) {
        pf_dconn *dc = pf_queue_data(q, pf_dconn, link);
        q = q->next;
        if (dc->codec_ctx)
            dc->codec->abort(dc->codec_ctx);
        pf_sock_reset(&dc->sock);
    }
}
