/* A cluster's protocol chosen per host or per request, as Envoy's
 * HttpProtocolOptions allow:
 *
 * - use_downstream_protocol_config: HTTP/2 for requests that came over
 *   HTTP/2 (when the cluster has HTTP/2 options), HTTP/1.1 otherwise.
 * - auto_config: whatever the host's TLS ALPN picks (h2 or http/1.1).
 *
 * An auto_config pool starts not knowing its host's protocol.  The first
 * request opens one probe connection (ALPN h2,http/1.1); requests that come
 * while it connects wait on it, their body queued (pausing the downstream
 * above the socket high watermark).  When the handshake ends the pool
 * remembers the answer, the probe's socket becomes a connection of that
 * protocol (so the handshake is not wasted), and the waiting requests start
 * as on any pool of that protocol: HTTP/2 multiplexes them on the adopted
 * connection; HTTP/1.1 gives it to the first and opens more for the rest.
 * Later requests go straight to the known protocol.  If a later handshake
 * picks the other protocol (the host was upgraded or replaced), that
 * connection fails as a connect failure and the pool probes again.
 *
 * A pf_upstream_proto: after the choice, s->uproto is the chosen protocol,
 * so the router talks to upstream_h1.c / upstream_h2.c directly. */
#include <stdlib.h>
#include <string.h>

#include "admin/stats.h"
#include "proxy/host_stats.h"
#include "proxy/log.h"
#include "proxy/proxy_stats.h"
#include "proxy/upstream.h"
#include "proxy/upstream_conn.h"
#include "proxy/worker.h"

typedef struct pf_alpn_probe {
    pf_sock *sock;
    pf_pool *pool;
    pf_queue waiting;               /* alpn_waiter.link, in arrival order */
    const pf_cluster_stats *cs;
    pf_host_counters *hc;
    uint64_t connect_start_ns;
    uint64_t sni_key;
} pf_alpn_probe;

/* A request waiting for its pool's protocol: what the router sent so far. */
typedef struct alpn_waiter {
    pf_queue link;
    pf_stream *s;
    pf_outq body;
    bool end_at_start, ended, has_trailers, blocked;   /* ended: end() came */
} alpn_waiter;

static void waiter_free(alpn_waiter *aw)
{
    pf_queue_remove(&aw->link);
    pf_outq_clear(&aw->body, &aw->s->w->chunks);
    free(aw);
}

/* Starts aw's request on proto as if it had chosen it at first, replaying
 * the calls the router made meanwhile. */
static void waiter_dispatch(alpn_waiter *aw, pf_pool *p, const pf_upstream_proto *proto)
{
    pf_stream *s = aw->s;
    s->uproto = proto;
    s->up = NULL;
    bool blocked = aw->blocked, connecting = false;
    if (proto->start(s, p, aw->end_at_start, &connecting) != 0) {
        waiter_free(aw);
        stats_inc(s->w->stats, s->ucs->cx_connect_fail);
        router_detached(s);
        router_on_upstream_error(s, PF_RF_UF, "connection failure");
        return;
    }
    if (!connecting)
        router_on_connected(s);
    if (blocked)
        router_upstream_blocked(s, false);  /* the chosen protocol paces it now */
    while (s->up && aw->body.bytes) {
        uv_buf_t bufs[16];
        unsigned n = pf_outq_peek(&aw->body, bufs, 16);
        size_t sent = 0;
        for (unsigned i = 0; i < n && s->up; i++) {
            proto->data(s, bufs[i].base, bufs[i].len);
            sent += bufs[i].len;
        }
        pf_outq_consume(&aw->body, &s->w->chunks, sent);
    }
    /* The router ends every request with end() or trailers(), after start()
     * even when start() was told the request has no body. */
    bool trailers = aw->has_trailers, ended = aw->ended;
    waiter_free(aw);
    if (s->up && trailers)
        proto->trailers(s);
    else if (s->up && ended)
        proto->end(s);
}

static void waiters_fail(pf_alpn_probe *pr, uint32_t flag, const char *reason)
{
    while (!pf_queue_empty(&pr->waiting)) {
        alpn_waiter *aw = pf_queue_data(pr->waiting.next, alpn_waiter, link);
        pf_stream *s = aw->s;
        waiter_free(aw);
        router_detached(s);
        router_on_upstream_error(s, flag, reason);
    }
}

/* ---- the probe's socket ---- */

static void probe_on_connect(pf_sock *sock, int status)
{
    pf_alpn_probe *pr = sock->owner;
    pf_pool *p = pr->pool;
    stats_shard *sh = sock->w->stats;
    p->probe = NULL;                /* requests from now on do not wait on it */
    if (status < 0) {
        stats_inc(sh, pr->cs->cx_connect_fail);
        PF_HC_ADD(pr->hc->cx_connect_fail, 1);
        waiters_fail(pr, PF_RF_UF, "connection failure");
        pf_sock_close(sock);
        return;
    }
    stats_record(sh, pr->cs->cx_connect_ms, (uv_hrtime() - pr->connect_start_ns) / 1000);
    bool h2 = strcmp(pf_sock_alpn(sock), "h2") == 0;
    pf_debug("upstream: ALPN picked %s", h2 ? "h2" : "http/1.1");
    if (p->cluster)
        p->alpn = h2 ? PF_ALPN_H2 : PF_ALPN_H1;
    int rc = !p->cluster ? -1
             : h2        ? pf_upstream_h2_adopt(p, sock, pr->sni_key)
                         : pf_upstream_h1_adopt(p, sock, pr->sni_key);
    if (rc != 0) {
        waiters_fail(pr, PF_RF_UF, "connection failure");
        pf_sock_close(sock);
        return;
    }
    const pf_upstream_proto *proto = h2 ? &pf_upstream_h2 : &pf_upstream_h1;
    while (!pf_queue_empty(&pr->waiting))
        waiter_dispatch(pf_queue_data(pr->waiting.next, alpn_waiter, link), p, proto);
    free(pr);                       /* the socket has a new owner */
}

static void probe_on_read(pf_sock *sock, const char *data, ssize_t n)
{
    (void)data;
    (void)n;
    pf_sock_close(sock);            /* nothing is read before the handshake ends */
}

static void probe_on_close(pf_sock *sock)
{
    pf_alpn_probe *pr = sock->owner;
    pf_pool *p = pr->pool;
    if (p->probe == pr)
        p->probe = NULL;
    waiters_fail(pr, PF_RF_UF, "connection failure");
    pf_upstream_closed(p, sock, pr->cs, pr->hc);
    free(pr);
}

static void probe_on_drain(pf_sock *sock)
{
    (void)sock;
}

static const pf_sock_cbs probe_cbs = {
    .on_read = probe_on_read,
    .on_connect = probe_on_connect,
    .on_drain = probe_on_drain,
    .on_close = probe_on_close,
};

static pf_alpn_probe *probe_new(pf_pool *p, const pf_stream *s)
{
    pf_worker *w = s->w;
    pf_alpn_probe *pr = calloc(1, sizeof *pr);
    if (!pr)
        return NULL;
    if (!(pr->sock = pf_upstream_open(w, p, &probe_cbs, pr))) {
        free(pr);
        return NULL;
    }
    pr->pool = p;
    pf_queue_init(&pr->waiting);
    pr->cs = &w->ps->clusters[p->cluster->index];
    pr->hc = pf_host_counters_of(p->cluster->hosts, w->id, p->slot);
    pr->connect_start_ns = uv_hrtime();
    pr->sni_key = pf_upstream_sni_key(p, s);
    p->probe = pr;
    if (pf_upstream_connect(pr->sock, p, s) != 0)
        return NULL;                /* probe_on_close frees it */
    return pr;
}

bool pf_upstream_alpn_changed(pf_pool *p, const pf_sock *sock, int expected)
{
    if (!p->cluster || !p->cluster->cfg->http_auto)
        return false;
    int got = strcmp(pf_sock_alpn(sock), "h2") == 0 ? PF_ALPN_H2 : PF_ALPN_H1;
    if (got == expected)
        return false;
    pf_debug("upstream: host switched protocol (ALPN); probing again");
    p->alpn = PF_ALPN_UNKNOWN;
    return true;
}

/* ---- pf_upstream_proto ---- */

static const pf_upstream_proto *known_proto(const pf_stream *s, const pf_pool *p)
{
    const cfg_cluster *cfg = p->cluster->cfg;
    if (cfg->http_downstream)
        return cfg->http2 && s->protocol.n == 6 && memcmp(s->protocol.p, "HTTP/2", 6) == 0
                   ? &pf_upstream_h2
                   : &pf_upstream_h1;
    return p->alpn == PF_ALPN_H2 ? &pf_upstream_h2
           : p->alpn == PF_ALPN_H1 ? &pf_upstream_h1
                                   : NULL;
}

static int auto_start(pf_stream *s, pf_pool *p, bool end, bool *connecting)
{
    const pf_upstream_proto *proto = known_proto(s, p);
    if (proto) {
        s->uproto = proto;
        return proto->start(s, p, end, connecting);
    }
    /* One probe per pool; it serves requests of any SNI (auto_sni pools
     * then open per-SNI connections once the protocol is known). */
    alpn_waiter *aw = calloc(1, sizeof *aw);
    if (!aw)
        return -1;
    if (!p->probe && !probe_new(p, s)) {
        free(aw);
        return -1;
    }
    aw->s = s;
    aw->end_at_start = end;
    pf_outq_init(&aw->body);
    pf_queue_insert_tail(&p->probe->waiting, &aw->link);
    s->up = aw;
    *connecting = true;
    return 0;
}

static void auto_data(pf_stream *s, const char *p, size_t n)
{
    alpn_waiter *aw = s->up;
    if (pf_outq_append(&aw->body, &s->w->chunks, p, n) != 0) {
        waiter_free(aw);
        router_detached(s);
        router_on_upstream_error(s, PF_RF_UF, "out of memory");
        return;
    }
    if (!aw->blocked && aw->body.bytes >= PF_SOCK_HIGH_WATERMARK) {
        aw->blocked = true;
        router_upstream_blocked(s, true);
    }
}

static void auto_trailers(pf_stream *s)
{
    alpn_waiter *aw = s->up;
    aw->has_trailers = true;
}

static void auto_end(pf_stream *s)
{
    alpn_waiter *aw = s->up;
    aw->ended = true;
}

static void auto_abort(pf_stream *s)
{
    waiter_free(s->up);
    router_detached(s);
}

static void auto_resume(pf_stream *s)
{
    (void)s;                        /* no response yet */
}

static void auto_close_idle(pf_pool *p)
{
    pf_upstream_h1.close_idle(p);
    pf_upstream_h2.close_idle(p);
}

const pf_upstream_proto pf_upstream_auto = {
    .name = "auto",
    .start = auto_start,
    .data = auto_data,
    .trailers = auto_trailers,
    .end = auto_end,
    .abort = auto_abort,
    .resume = auto_resume,
    .close_idle = auto_close_idle,
};
