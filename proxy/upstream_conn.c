/* What every kind of upstream connection shares: HTTP/1.1 (upstream_h1.c),
 * HTTP/2 (upstream_h2.c) and the auto_config ALPN probe (upstream_auto.c).
 *
 * The socket is its own allocation, not part of the connection object, so
 * that a probe can hand a connected (TLS) socket to the protocol its ALPN
 * chose.  Connection counts (cluster and host cx_total / cx_active, the
 * pool's n_active) follow the socket: counted when it is opened, uncounted
 * when it closes, whoever owns it then. */
#include "proxy/upstream_conn.h"

#include <ctype.h>
#include <stdlib.h>

#include "admin/stats.h"
#include "proxy/breakers.h"
#include "proxy/host_stats.h"
#include "proxy/proxy_stats.h"
#include "config/tls_config.h"
#include "proxy/tls.h"
#include "proxy/worker.h"

pf_sock *pf_upstream_open(pf_worker *w, pf_pool *p, const pf_sock_cbs *cbs, void *owner)
{
    pf_sock *sock = calloc(1, sizeof *sock);
    if (!sock)
        return NULL;
    if (pf_sock_init(sock, w, cbs, owner) != 0) {
        free(sock);
        return NULL;
    }
    const pf_cluster_stats *cs = &w->ps->clusters[p->cluster->index];
    pf_host_counters *hc = pf_host_counters_of(p->cluster->hosts, w->id, p->slot);
    p->n_active++;
    pf_breakers_cx_opened(p);
    stats_inc(w->stats, cs->cx_total);
    stats_gauge_add(w->stats, cs->cx_active, 1);
    PF_HC_ADD(hc->cx_total, 1);
    PF_HC_ADD(hc->cx_active, 1);
    return sock;
}

int pf_upstream_connect(pf_sock *sock, pf_pool *p, const pf_stream *s)
{
    const pf_cluster_rt *c = p->cluster;
    int rc = pf_sock_connect(sock, (const struct sockaddr *)&p->addr);
    if (rc == 0)    /* no-op for plaintext; on_connect follows the handshake */
        rc = pf_upstream_tls_start(sock, c->cfg, c->index, s ? s->authority.p : NULL,
                                   s ? s->authority.n : 0, &p->tls_session);
    if (rc != 0)
        pf_sock_close(sock);
    return rc;
}

void pf_upstream_closed(pf_pool *p, pf_sock *sock, const pf_cluster_stats *cs,
                        pf_host_counters *hc)
{
    stats_shard *sh = sock->w->stats;
    stats_gauge_add(sh, cs->cx_active, -1);
    stats_inc(sh, cs->cx_destroy);
    PF_HC_ADD(hc->cx_active, -1);
    free(sock);
    p->n_active--;
    pf_breakers_cx_closed(p);       /* may hand a waiting request its turn */
    if (!p->cluster && p->n_active == 0)
        pf_pool_free(p);
}

uint64_t pf_upstream_sni_key(const pf_pool *p, const pf_stream *s)
{
    const cfg_cluster *cfg = p->cluster ? p->cluster->cfg : NULL;
    if (!cfg || !cfg->auto_sni || !cfg->tls || cfg->tls->sni || !s)
        return 0;
    /* FNV-1a over the lower-cased name: connections are shared per SNI. */
    size_t n = pf_tls_auto_sni_len(s->authority.p, s->authority.n);
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)tolower((unsigned char)s->authority.p[i])) * 1099511628211ull;
    return h | 1;       /* never 0, the key of "no per-request SNI" */
}
