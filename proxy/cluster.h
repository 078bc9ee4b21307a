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

/* pf_host_info.flags, as admin /clusters prints them. */
enum {
    PF_HOST_FAILED_ACTIVE_HC = 1 << 0,
    PF_HOST_FAILED_OUTLIER = 1 << 1,
    PF_HOST_PENDING_ACTIVE_HC = 1 << 2,
};
#define PF_HOST_UNHEALTHY (PF_HOST_FAILED_ACTIVE_HC | PF_HOST_FAILED_OUTLIER)

typedef struct pf_host_info {
    uint32_t weight;                /* load_balancing_weight (>= 1) */
    uint32_t priority;
    uint32_t locality;              /* index into cfg->lb->localities; UINT32_MAX: none */
    uint16_t hc_port;               /* health_check_config.port_value; 0: the host's port */
    uint16_t flags;                 /* PF_HOST_* */
} pf_host_info;

/* The hosts of one priority that the balancer may choose from: the healthy
 * ones, or all of them (panic).  Built on the main thread (proxy/lb.c). */
typedef struct pf_lb_list {
    uint32_t n;
    uint32_t *hosts;                /* [n] indexes into the host set */
    uint32_t *weights;              /* [n] */
    uint64_t total_weight;
    bool weighted;                  /* weights differ */
    uint64_t *ring_hash;            /* RING_HASH: [ring_n] sorted points ... */
    uint32_t *ring_host;            /* ... and the list index owning each */
    uint32_t ring_n;
    uint32_t *maglev;               /* MAGLEV: [maglev_n] list indexes */
    uint32_t maglev_n;
} pf_lb_list;

/* One locality of a priority (locality_weighted_lb_config). */
typedef struct pf_lb_locality {
    pf_lb_list healthy;             /* its healthy hosts of the priority */
    uint64_t weight;                /* effective weight: locality weight x availability
                                     * (min(10000, overprovisioning x healthy / total), 1e-4 units) */
} pf_lb_locality;

typedef struct pf_lb_prio {
    pf_lb_list healthy, all;
    uint32_t load;                  /* percent of requests sent to this priority */
    uint32_t n_healthy, n_total;
    bool panic;                     /* below healthy_panic_threshold: use `all` */
    pf_lb_locality *locs;           /* [n_locs] when locality weighted, else NULL */
    uint32_t n_locs;
    uint64_t loc_total;             /* sum of locs[].weight; 0: balance over `healthy` */
} pf_lb_prio;

typedef struct pf_hostset {
    atomic_int refs;
    size_t n;
    uint32_t *slots;                /* [n] host stats slot of each address (proxy/host_stats.h) */
    pf_host_info *info;             /* [n] weight, priority, locality, health */
    pf_lb_prio *prio;               /* [n_prio], built by pf_hostset_build_lb */
    uint32_t n_prio;
    cfg_lb_policy policy;
    uint32_t choice_count;          /* LEAST_REQUEST */
    bool fail_on_panic;             /* zone_aware_lb_config.fail_traffic_on_panic */
    struct sockaddr_storage addrs[];
} pf_hostset;

/* Returns a host set with room for n addresses (weight 1, priority 0, no
 * locality, healthy) and one reference. */
pf_hostset *pf_hostset_new(size_t n);
/* Main thread, before publishing: sets every host's weight / priority /
 * locality / health-check port from the cluster's endpoint k when its
 * address matches cfg->endpoints[k] (DNS hosts: the endpoint they came
 * from, endpoint_of[i], may be NULL for "use address match"). */
void pf_hostset_apply_endpoints(pf_hostset *hs, const cfg_cluster *cfg, const uint32_t *endpoint_of);
/* Main thread: builds the per-priority lists, loads, panic flags and
 * hash tables from hs->info.  Returns 0 or -ENOMEM. */
int pf_hostset_build_lb(pf_hostset *hs, const cfg_cluster *cfg);
/* Frees what pf_hostset_build_lb built. */
void pf_lb_free_prio(pf_hostset *hs);
/* A copy of hs (addresses, slots, info) without LB tables, one reference. */
pf_hostset *pf_hostset_clone(const pf_hostset *hs);
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
    void *tls_session;              /* SSL_SESSION * to resume with (proxy/tls.h), or NULL */
    struct pf_alpn_probe *probe;    /* auto_config: the connection learning the protocol */
    uint8_t alpn;                   /* auto_config: PF_ALPN_* the host picked */
    struct pf_breakers *breakers;   /* the cluster's (outlives orphaned pools); may be NULL */
    pf_queue cx_waiters;            /* streams waiting for a connection (proxy/router_cx_wait.c) */
} pf_pool;

/* What an auto_config pool knows of its host's protocol (proxy/upstream_auto.c). */
enum { PF_ALPN_UNKNOWN, PF_ALPN_H1, PF_ALPN_H2 };

/* Frees a pool no connection uses any more. */
void pf_pool_free(pf_pool *p);

/* A worker's mutable balancer state for its current host set.  Each
 * priority has 3 + n_locs schedules, in this order: healthy, all, the
 * locality pick, then each locality's healthy list. */
typedef struct pf_lb_rt {
    uint32_t *rr;                   /* [schedules] round-robin counters */
    int64_t *cur;                   /* smooth weighted RR current weights, per schedule entry */
    size_t *cur_off;                /* [schedules] offsets into cur */
    uint32_t *prio_base;            /* [n_prio] index of each priority's first schedule */
} pf_lb_rt;

/* What a pick needs from the request and the worker. */
typedef struct pf_lb_ctx {
    uint64_t (*random)(void *arg);
    void *arg;
    int64_t (*active)(void *arg, uint32_t host);    /* LEAST_REQUEST: requests in flight */
    bool has_hash;
    uint64_t hash;
    uint32_t skip_prio;             /* priorities to avoid (retry_priority previous_priorities) */
    bool panic;                     /* out: the chosen priority was in panic */
    uint32_t prio;                  /* out: the chosen priority */
} pf_lb_ctx;

/* Chooses a host of hs: a priority by load, then by hs->policy among its
 * healthy hosts (or all in panic).  Returns the host index or -1. */
int pf_lb_choose(const pf_hostset *hs, pf_lb_rt *rt, pf_lb_ctx *ctx);
/* (Re)allocates rt for hs; returns 0 or -ENOMEM. */
int pf_lb_rt_reset(pf_lb_rt *rt, const pf_hostset *hs);
void pf_lb_rt_free(pf_lb_rt *rt);

/* Circuit breaker counters of one cluster, shared by every worker (relaxed
 * atomics, as Envoy's ResourceManager); owned by the server. */
typedef struct pf_breakers {
    _Atomic int64_t rq_active, rq_pending, retries_active;
    _Atomic int64_t cx_open;        /* upstream connections, every worker (proxy/breakers.c) */
} pf_breakers;

typedef struct pf_cluster_rt {
    const cfg_cluster *cfg;
    size_t index;                   /* in cfg->clusters and the cluster stat ids */
    const struct pf_upstream_proto *proto;  /* HTTP/1.1 or HTTP/2 to the hosts */
    struct pf_host_table *hosts;    /* the server's per-host counters; not owned */
    pf_hostset *hs;                 /* one reference; NULL until resolved */
    pf_pool **host_pools;           /* [hs->n]: one pool per host of hs */
    size_t n_pools;
    pf_lb_rt lb;
    pf_breakers *breakers;          /* the server's; not owned; NULL: no limits */
    pf_queue pools;                 /* every pool ever made; freed at worker exit */
} pf_cluster_rt;

void pf_cluster_rt_init(pf_cluster_rt *c, const cfg_cluster *cfg, size_t index,
                        struct pf_host_table *hosts);
/* Takes ownership of one reference to hs. */
void pf_cluster_rt_set_hostset(struct pf_worker *w, pf_cluster_rt *c, pf_hostset *hs);
/* Picks a host with the cluster's lb_policy.  hash: the route's hash
 * policy result (RING_HASH, MAGLEV), or NULL.  *panic is set when the
 * chosen priority was in panic.  NULL when no host can be chosen. */
/* skip_prio: a bit per priority to avoid when another has hosts (retries);
 * *prio (may be NULL) receives the chosen host's priority. */
pf_pool *pf_cluster_pick(struct pf_worker *w, pf_cluster_rt *c, const uint64_t *hash, bool *panic,
                         uint32_t skip_prio, uint32_t *prio);
/* Closes idle connections and frees pools (worker shutdown). */
void pf_cluster_rt_destroy(pf_cluster_rt *c);

/* Builds the host set of a STATIC cluster from its literal addresses.
 * Returns NULL on allocation failure. */
pf_hostset *pf_hostset_from_static(const cfg_cluster *cfg);
/* Fills *out from an IP literal and port; returns 0 or -EINVAL. */
int pf_sockaddr_from(const char *ip, uint16_t port, struct sockaddr_storage *out);

#endif
