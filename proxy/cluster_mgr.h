/* Host sets on the main thread: membership (static or DNS), health state
 * per host (active health checks, outlier ejections), building each host
 * set's balancer tables, and posting it to the workers (PF_MSG_HOSTSET).
 * Also owns the clusters' circuit breaker counters shared by the workers.
 *
 * Health state is kept per host stats slot (proxy/host_stats.h), which is
 * stable for an address, so it survives DNS refreshes. */
#ifndef PF_CLUSTER_MGR_H
#define PF_CLUSTER_MGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pf_server;
struct pf_hostset;
struct pf_breakers;

/* Before any host set exists (after the stats and host tables).  Returns 0 or UV_ENOMEM. */
int pf_cluster_mgr_init(struct pf_server *srv);
/* A cluster's hosts (static, or a DNS answer); takes ownership of one
 * reference.  New hosts of a health-checked cluster start unhealthy until
 * their first check passes; publishes. */
void pf_cluster_mgr_set_members(struct pf_server *srv, size_t cluster, struct pf_hostset *hs);
/* Filesystem CDS (proxy/xds_fs.c): the endpoints of srv->cfg->clusters[idx]
 * were replaced.  STATIC: the new addresses become the membership now (and
 * are published); STRICT_DNS / LOGICAL_DNS: resolution restarts with the
 * new names, the current hosts serving until the first answer. */
void pf_cluster_mgr_endpoints_replaced(struct pf_server *srv, size_t cluster);
/* The membership host set (no reference taken), NULL before the first. */
const struct pf_hostset *pf_cluster_mgr_members(struct pf_server *srv, size_t cluster);
/* Sets / clears PF_HOST_* flags of a slot; returns true when they changed
 * (the caller publishes). */
bool pf_cluster_mgr_set_flags(struct pf_server *srv, size_t cluster, uint32_t slot,
                              uint16_t set, uint16_t clear);
uint16_t pf_cluster_mgr_flags(struct pf_server *srv, size_t cluster, uint32_t slot);
/* Builds a host set from the membership and health and posts it to every worker. */
void pf_cluster_mgr_publish(struct pf_server *srv, size_t cluster);
/* True while the first health check round of some cluster is running
 * (Envoy's cluster init waits for it). */
bool pf_cluster_mgr_initializing(struct pf_server *srv);
/* A health checker finished its first round. */
void pf_cluster_mgr_init_done(struct pf_server *srv);
/* Thread-safe: a worker saw an outlier trip; the main thread checks soon. */
void pf_cluster_mgr_wake(struct pf_server *srv);
/* The breakers of a cluster (shared, lives until pf_cluster_mgr_free). */
struct pf_breakers *pf_cluster_mgr_breakers(struct pf_server *srv, size_t cluster);
/* Closes timers and checks (the loop is ending). */
void pf_cluster_mgr_stop(struct pf_server *srv);
/* After the loop ended and workers are joined. */
void pf_cluster_mgr_free(struct pf_server *srv);

#endif
