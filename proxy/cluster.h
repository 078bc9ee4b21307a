/* Clusters at run time: host sets and per-worker connection pools.
 *
 * A host set is immutable and reference-counted; the main thread builds one
 * per cluster (at start for STATIC, after each DNS answer for STRICT_DNS /
 * LOGICAL_DNS) and posts it to every worker, which swaps it in between
 * requests.  Pools are per worker and per address, so no lock is taken on
 * the request path. */
#ifndef PF_CLUSTER_H
#define PF_CLUSTER_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "proxy/queue.h"

struct pf_worker;

typedef struct pf_hostset {
    atomic_int refs;
    size_t n;
    uint32_t *slots;                /* [n] host stats slot of each address (proxy/host_stats.h) */
    struct sockaddr_storage addrs[];
} pf_hostset;

/* Returns a host set with room for n addresses and one reference. */
pf_hostset *pf_hostset_new(size_t n);
pf_hostset *pf_hostset_ref(pf_hostset *hs);
void pf_hostset_unref(pf_hostset *hs);

/* A worker's idle upstream connections to one address. */
typedef struct pf_pool {
    pf_queue link;                  /* in pf_cluster_rt.pools */
    struct pf_cluster_rt *cluster;
    struct sockaddr_storage addr;
    uint32_t slot;                  /* host stats slot */
    pf_queue idle;                  /* HTTP/1.1: idle pf_uconn.link */
    pf_queue h2conns;               /* HTTP/2: every connection (proxy/upstream_h2.c) */
    size_t n_idle, n_active;        /* n_active: open connections of either protocol */
} pf_pool;

typedef struct pf_cluster_rt {
    const cfg_cluster *cfg;
    size_t index;                   /* in cfg->clusters and the cluster stat ids */
    const struct pf_upstream_proto *proto;  /* HTTP/1.1 or HTTP/2 to the hosts */
    struct pf_host_table *hosts;    /* the server's per-host counters; not owned */
    pf_hostset *hs;                 /* one reference; NULL until resolved */
    pf_pool **host_pools;           /* one pool per usable address of hs */
    size_t n_pools;
    uint32_t rr;
    pf_queue pools;                 /* every pool ever made; freed at worker exit */
} pf_cluster_rt;

void pf_cluster_rt_init(pf_cluster_rt *c, const cfg_cluster *cfg, size_t index,
                        struct pf_host_table *hosts);
/* Takes ownership of one reference to hs. */
void pf_cluster_rt_set_hostset(struct pf_worker *w, pf_cluster_rt *c, pf_hostset *hs);
/* Round robin over the current host set; NULL when it is empty. */
pf_pool *pf_cluster_pick(pf_cluster_rt *c);
/* Closes idle connections and frees pools (worker shutdown). */
void pf_cluster_rt_destroy(pf_cluster_rt *c);

/* Builds the host set of a STATIC cluster from its literal addresses.
 * Returns NULL on allocation failure. */
pf_hostset *pf_hostset_from_static(const cfg_cluster *cfg);
/* Fills *out from an IP literal and port; returns 0 or -EINVAL. */
int pf_sockaddr_from(const char *ip, uint16_t port, struct sockaddr_storage *out);

#endif
