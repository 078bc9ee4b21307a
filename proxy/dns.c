#include "proxy/dns.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/cluster.h"
#include "proxy/cluster_mgr.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/server_stats.h"
#include "proxy/worker.h"

#define DNS_MAX_ADDRS 64

struct pf_dns_cluster {
    pf_server *srv;
    size_t idx;
    const cfg_cluster *cfg;
    uv_getaddrinfo_t req;
    uv_timer_t timer;
    size_t endpoint;                /* endpoint being resolved this round */
    struct sockaddr_storage addrs[DNS_MAX_ADDRS];
    uint32_t endpoint_of[DNS_MAX_ADDRS];    /* the endpoint each address came from */
    size_t n_addrs;
    bool initial, in_flight, stopped;
};

static void resolve_next(pf_dns_cluster *d);

/* Keeps IPv4 answers when there are any (Envoy's V4_PREFERRED), else IPv6.
 * LOGICAL_DNS keeps only the first address. */
static void collect(pf_dns_cluster *d, const struct addrinfo *res, uint16_t port)
{
    int family = AF_INET6;
    for (const struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET)
            family = AF_INET;
    for (const struct addrinfo *a = res; a && d->n_addrs < DNS_MAX_ADDRS; a = a->ai_next) {
        if (a->ai_family != family)
            continue;
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        memcpy(&ss, a->ai_addr, a->ai_addrlen);
        if (family == AF_INET)
            ((struct sockaddr_in *)&ss)->sin_port = htons(port);
        else
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
        bool dup = false;
        for (size_t i = 0; i < d->n_addrs && !dup; i++)
            dup = memcmp(&d->addrs[i], &ss, sizeof ss) == 0;
        if (!dup) {
            d->endpoint_of[d->n_addrs] = (uint32_t)d->endpoint;
            d->addrs[d->n_addrs++] = ss;
        }
        if (d->cfg->type == CFG_CLUSTER_LOGICAL_DNS)
            break;
    }
}

static bool same_hosts(const pf_hostset *hs, const pf_dns_cluster *d)
{
    return hs && hs->n == d->n_addrs &&
           memcmp(hs->addrs, d->addrs, d->n_addrs * sizeof d->addrs[0]) == 0;
}

static void publish(pf_dns_cluster *d)
{
    pf_server *srv = d->srv;
    if (same_hosts(srv->hostsets[d->idx], d))
        return;
    pf_hostset *hs = pf_hostset_new(d->n_addrs);
    if (!hs)
        return;
    memcpy(hs->addrs, d->addrs, d->n_addrs * sizeof d->addrs[0]);
    pf_hostset_apply_endpoints(hs, d->cfg, d->endpoint_of);
    pf_info("cluster '%s': %zu host(s) from DNS", d->cfg->name, hs->n);
    /* Health, balancer tables and posting to the workers: proxy/cluster_mgr.c. */
    pf_cluster_mgr_set_members(srv, d->idx, hs);
}

static void on_timer(uv_timer_t *t)
{
    pf_dns_cluster *d = t->data;
    d->endpoint = 0;
    d->n_addrs = 0;
    resolve_next(d);
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void round_done(pf_dns_cluster *d)
{
    if (d->stopped) {
        uv_close((uv_handle_t *)&d->timer, on_timer_closed);
        return;
    }
    publish(d);
    if (d->initial) {
        d->initial = false;
        d->srv->dns_pending--;
    }
    uint64_t every = d->cfg->dns_refresh_rate_ms ? d->cfg->dns_refresh_rate_ms : 5000;
    uv_timer_start(&d->timer, on_timer, every, 0);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    pf_dns_cluster *d = req->data;
    d->in_flight = false;
    if (d->stopped) {
        /* The cluster's endpoints may have been replaced (proxy/xds_fs.c). */
        uv_freeaddrinfo(res);
        round_done(d);
        return;
    }
    const cfg_socket_address *ep = &d->cfg->endpoints[d->endpoint];
    if (status == 0)
        collect(d, res, ep->port);
    else if (!d->stopped)
        pf_warn("cluster '%s': resolving %s: %s", d->cfg->name, ep->address, uv_strerror(status));
    uv_freeaddrinfo(res);
    d->endpoint++;
    if (d->stopped || d->endpoint >= d->cfg->n_endpoints ||
        (d->cfg->type == CFG_CLUSTER_LOGICAL_DNS && d->n_addrs))
        round_done(d);
    else
        resolve_next(d);
}

static void resolve_next(pf_dns_cluster *d)
{
    if (d->endpoint >= d->cfg->n_endpoints) {
        round_done(d);
        return;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    d->req.data = d;
    d->in_flight = true;
    int rc = uv_getaddrinfo(&d->srv->loop, &d->req, on_resolved,
                            d->cfg->endpoints[d->endpoint].address, NULL, &hints);
    if (rc != 0) {
        d->in_flight = false;
        d->endpoint++;
        resolve_next(d);
    }
}

pf_dns_cluster *pf_dns_start(pf_server *srv, size_t idx)
{
    pf_dns_cluster *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->srv = srv;
    d->idx = idx;
    d->cfg = &srv->cfg->clusters[idx];
    d->initial = true;
    uv_timer_init(&srv->loop, &d->timer);
    d->timer.data = d;
    srv->dns_pending++;
    resolve_next(d);
    return d;
}

void pf_dns_stop(pf_dns_cluster *d)
{
    if (!d)
        return;
    d->stopped = true;
    uv_timer_stop(&d->timer);
    if (!d->in_flight)
        uv_close((uv_handle_t *)&d->timer, on_timer_closed);
}
