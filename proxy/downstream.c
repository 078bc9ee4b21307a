#include "proxy/downstream.h"

#include <stdlib.h>
#include <string.h>

#include "admin/stats.h"
#include "proxy/h1_server.h"
#include "proxy/log.h"
#include "proxy/proxy_stats.h"
#include "proxy/worker.h"

static void on_read(pf_sock *sock, const char *data, ssize_t n)
{
    pf_dconn *dc = sock->owner;
    if (n < 0)
        dc->codec->on_eof(dc->codec_ctx);
    else
        dc->codec->on_read(dc->codec_ctx, data, (size_t)n);
}

static void on_drain(pf_sock *sock)
{
    pf_dconn *dc = sock->owner;
    if (dc->codec_ctx)
        dc->codec->on_drain(dc->codec_ctx);
}

static void on_close(pf_sock *sock)
{
    pf_dconn *dc = sock->owner;
    pf_worker *w = dc->w;
    if (dc->codec_ctx)
        dc->codec->on_close(dc->codec_ctx);
    stats_gauge_add(w->stats, dc->ls->l_cx_active, -1);
    stats_gauge_add(w->stats, dc->ls->cx_active, -1);
    stats_record(w->stats, dc->ls->cx_length_ms, (uv_now(&w->loop) - dc->start_ms) * 1000);
    pf_queue_remove(&dc->link);
    free(dc);
    pf_worker_conn_closed(w);
}

static const pf_sock_cbs downstream_cbs = {
    .on_read = on_read,
    .on_drain = on_drain,
    .on_close = on_close,
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
    dc->hcm = &l->cfg->hcm;
    dc->ls = &w->ps->listeners[l->index];
    dc->start_ms = uv_now(&w->loop);
    if (pf_sock_init(&dc->sock, w, &downstream_cbs, dc) != 0) {
        free(dc);
        return;
    }
    pf_queue_insert_tail(&w->conns, &dc->link);
    w->n_conns++;
    stats_inc(w->stats, dc->ls->l_cx_total);
    stats_inc(w->stats, dc->ls->cx_total);
    stats_gauge_add(w->stats, dc->ls->l_cx_active, 1);
    stats_gauge_add(w->stats, dc->ls->cx_active, 1);
    if (pf_sock_accept(&dc->sock, (uv_stream_t *)&l->tcp) != 0) {
        pf_sock_close(&dc->sock);
        return;
    }
    int len = sizeof dc->peer;
    uv_tcp_getpeername(&dc->sock.tcp, (struct sockaddr *)&dc->peer, &len);
    len = sizeof dc->local;
    uv_tcp_getsockname(&dc->sock.tcp, (struct sockaddr *)&dc->local, &len);
    dc->codec = &h1_server_codec;
    if (!(dc->codec_ctx = dc->codec->attach(dc))) {
        pf_sock_close(&dc->sock);
        return;
    }
    pf_sock_read_start(&dc->sock);
}

void pf_downstream_drain_all(pf_worker *w)
{
    for (pf_queue *q = w->conns.next; q != &w->conns;) {
        pf_dconn *dc = pf_queue_data(q, pf_dconn, link);
        q = q->next;
        if (dc->codec_ctx && !dc->sock.closing)
            dc->codec->drain(dc->codec_ctx);
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
