#include "proxy/cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/upstream.h"
#include "proxy/worker.h"

pf_hostset *pf_hostset_new(size_t n)
{
    pf_hostset *hs = calloc(1, sizeof *hs + n * sizeof hs->addrs[0]);
    if (!hs)
        return NULL;
    if (!(hs->slots = calloc(n + 1, sizeof *hs->slots))) {
        free(hs);
        return NULL;
    }
    atomic_init(&hs->refs, 1);
    hs->n = n;
    return hs;
}

pf_hostset *pf_hostset_ref(pf_hostset *hs)
{
    atomic_fetch_add_explicit(&hs->refs, 1, memory_order_relaxed);
    return hs;
}

void pf_hostset_unref(pf_hostset *hs)
{
    if (hs && atomic_fetch_sub_explicit(&hs->refs, 1, memory_order_acq_rel) == 1) {
        free(hs->slots);
        free(hs);
    }
}

int pf_sockaddr_from(const char *ip, uint16_t port, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        return 0;
    }
    return -EINVAL;
}

pf_hostset *pf_hostset_from_static(const cfg_cluster *cfg)
{
    pf_hostset *hs = pf_hostset_new(cfg->n_endpoints);
    if (!hs)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < cfg->n_endpoints; i++)
        if (pf_sockaddr_from(cfg->endpoints[i].address, cfg->endpoints[i].port, &hs->addrs[k]) == 0)
            k++;
    hs->n = k;
    return hs;
}

void pf_cluster_rt_init(pf_cluster_rt *c, const cfg_cluster *cfg, size_t index,
                        struct pf_host_table *hosts)
{
    memset(c, 0, sizeof *c);
    c->cfg = cfg;
    c->index = index;
    c->hosts = hosts;
    c->proto = cfg->http2 ? &pf_upstream_h2 : &pf_upstream_h1;
    pf_queue_init(&c->pools);
}

static bool addr_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    size_t n = a->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    return memcmp(a, b, n) == 0;
}

static pf_pool *pool_find_or_add(pf_cluster_rt *c, const struct sockaddr_storage *addr)
{
    for (pf_queue *q = c->pools.next; q != &c->pools; q = q->next) {
        pf_pool *p = pf_queue_data(q, pf_pool, link);
        if (addr_eq(&p->addr, addr))
            return p;
    }
    pf_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->cluster = c;
    p->addr = *addr;
    pf_queue_init(&p->idle);
    pf_queue_init(&p->h2conns);
    pf_queue_insert_tail(&c->pools, &p->link);
    return p;
}

void pf_cluster_rt_set_hostset(pf_worker *w, pf_cluster_rt *c, pf_hostset *hs)
{
    (void)w;
    pf_pool **pools = hs->n ? calloc(hs->n, sizeof *pools) : NULL;
    size_t k = 0;
    for (size_t i = 0; i < hs->n && pools; i++) {
        pf_pool *p = pool_find_or_add(c, &hs->addrs[i]);
        if (p) {
            p->slot = hs->slots[i];
            pools[k++] = p;
        }
    }
    /* Hosts that left the set keep no idle connections. */
    for (pf_queue *q = c->pools.next; q != &c->pools; q = q->next) {
        pf_pool *p = pf_queue_data(q, pf_pool, link);
        bool kept = false;
        for (size_t i = 0; i < k && !kept; i++)
            kept = pools[i] == p;
        if (!kept)
            c->proto->close_idle(p);
    }
    free(c->host_pools);
    pf_hostset_unref(c->hs);
    c->host_pools = pools;
    c->hs = hs;
    c->n_pools = k;
}

pf_pool *pf_cluster_pick(pf_cluster_rt *c)
{
    if (c->n_pools == 0)
        return NULL;
    return c->host_pools[c->rr++ % c->n_pools];
}

void pf_cluster_rt_destroy(pf_cluster_rt *c)
{
    while (!pf_queue_empty(&c->pools)) {
        pf_pool *p = pf_queue_data(c->pools.next, pf_pool, link);
        c->proto->close_idle(p);
        pf_queue_remove(&p->link);
        pf_uconn_orphan_pool(p);
    }
    free(c->host_pools);
    c->host_pools = NULL;
    c->n_pools = 0;
    pf_hostset_unref(c->hs);
    c->hs = NULL;
}
