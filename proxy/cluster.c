#include "proxy/cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/cluster_config.h"
#include "proxy/cluster_mgr.h"
#include "proxy/host_stats.h"
#include "proxy/tls.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"

pf_hostset *pf_hostset_new(size_t n)
{
    pf_hostset *hs = calloc(1, sizeof *hs + n * sizeof hs->addrs[0]);
    if (!hs)
        return NULL;
    hs->slots = calloc(n + 1, sizeof *hs->slots);
    hs->info = calloc(n + 1, sizeof *hs->info);
    if (!hs->slots || !hs->info) {
        free(hs->slots);
        free(hs->info);
        free(hs);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        hs->info[i] = (pf_host_info){.weight = 1, .locality = UINT32_MAX};
    atomic_init(&hs->refs, 1);
    hs->n = n;
    return hs;
}

pf_hostset *pf_hostset_clone(const pf_hostset *src)
{
    pf_hostset *hs = pf_hostset_new(src->n);
    if (!hs)
        return NULL;
    memcpy(hs->addrs, src->addrs, src->n * sizeof src->addrs[0]);
    memcpy(hs->slots, src->slots, src->n * sizeof src->slots[0]);
    memcpy(hs->info, src->info, src->n * sizeof src->info[0]);
    return hs;
}

void pf_hostset_apply_endpoints(pf_hostset *hs, const cfg_cluster *cfg, const uint32_t *endpoint_of)
{
    const cfg_cluster_lb *lb = cfg->lb;
    if (!lb || !lb->endpoints)
        return;
    for (size_t i = 0; i < hs->n; i++) {
        size_t k = SIZE_MAX;
        if (endpoint_of) {
            k = endpoint_of[i];
        } else {
            for (size_t e = 0; e < cfg->n_endpoints && k == SIZE_MAX; e++) {
                struct sockaddr_storage a;
                if (pf_sockaddr_from(cfg->endpoints[e].address, cfg->endpoints[e].port, &a) == 0 &&
                    memcmp(&a, &hs->addrs[i], sizeof a) == 0)
                    k = e;
            }
        }
        if (k >= cfg->n_endpoints)
            continue;
        const cfg_lb_endpoint *m = &lb->endpoints[k];
        hs->info[i].weight = m->weight ? m->weight : 1;
        hs->info[i].priority = m->priority;
        hs->info[i].locality = m->locality;
        hs->info[i].hc_port = m->hc_port;
    }
}

pf_hostset *pf_hostset_ref(pf_hostset *hs)
{
    atomic_fetch_add_explicit(&hs->refs, 1, memory_order_relaxed);
    return hs;
}

void pf_hostset_unref(pf_hostset *hs)
{
    if (hs && atomic_fetch_sub_explicit(&hs->refs, 1, memory_order_acq_rel) == 1) {
        pf_lb_free_prio(hs);
        free(hs->slots);
        free(hs->info);
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
    pf_hostset_apply_endpoints(hs, cfg, NULL);
    return hs;
}

void pf_cluster_rt_init(pf_cluster_rt *c, const cfg_cluster *cfg, size_t index,
                        struct pf_host_table *hosts)
{
    memset(c, 0, sizeof *c);
    c->cfg = cfg;
    c->index = index;
    c->hosts = hosts;
    c->proto = cfg->http_auto || cfg->http_downstream ? &pf_upstream_auto
               : cfg->http2                           ? &pf_upstream_h2
                                                      : &pf_upstream_h1;
    pf_queue_init(&c->pools);
}

static bool addr_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    size_t n = a->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    return memcmp(a, b, n) == 0;
}

void pf_pool_free(pf_pool *p)
{
    pf_tls_session_free(p->tls_session);
    free(p);
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
    p->breakers = c->breakers;
    pf_queue_init(&p->cx_waiters);
    pf_queue_init(&p->idle);
    pf_queue_init(&p->h2conns);
    pf_queue_insert_tail(&c->pools, &p->link);
    return p;
}

void pf_cluster_rt_set_hostset(pf_worker *w, pf_cluster_rt *c, pf_hostset *hs)
{
    c->breakers = pf_cluster_mgr_breakers(w->server, c->index);
    pf_pool **pools = hs->n ? calloc(hs->n, sizeof *pools) : NULL;
    size_t k = 0;
    bool ok = pools || !hs->n;
    for (size_t i = 0; i < hs->n && ok; i++) {
        pf_pool *p = pool_find_or_add(c, &hs->addrs[i]);
        if (p) {
            p->slot = hs->slots[i];
            pools[k++] = p;
        } else {
            ok = false;
        }
    }
    if (!ok || pf_lb_rt_reset(&c->lb, hs) != 0) {
        /* Out of memory: keep the previous host set. */
        free(pools);
        pf_hostset_unref(hs);
        return;
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

static uint64_t worker_random(void *arg)
{
    return pf_worker_random(arg);
}

typedef struct pick_arg {
    pf_worker *w;
    pf_cluster_rt *c;
} pick_arg;

static uint64_t arg_random(void *arg)
{
    return worker_random(((pick_arg *)arg)->w);
}

/* Requests this worker has in flight to host i (LEAST_REQUEST). */
static int64_t arg_active(void *arg, uint32_t i)
{
    pick_arg *a = arg;
    pf_host_counters *hc = pf_host_counters_of(a->c->hosts, a->w->id, a->c->hs->slots[i]);
    return atomic_load_explicit(&hc->rq_active, memory_order_relaxed);
}

pf_pool *pf_cluster_pick(pf_worker *w, pf_cluster_rt *c, const uint64_t *hash, bool *panic,
                         uint32_t skip_prio, uint32_t *prio)
{
    if (c->n_pools == 0 || !c->hs)
        return NULL;
    pick_arg a = {w, c};
    pf_lb_ctx ctx = {.random = arg_random, .arg = &a, .active = arg_active,
                     .has_hash = hash != NULL, .hash = hash ? *hash : 0,
                     .skip_prio = skip_prio};
    int i = pf_lb_choose(c->hs, &c->lb, &ctx);
    if (panic)
        *panic = ctx.panic;
    if (prio)
        *prio = ctx.prio;
    return i < 0 ? NULL : c->host_pools[i];
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
    pf_lb_rt_free(&c->lb);
    pf_hostset_unref(c->hs);
    c->hs = NULL;
}
