/* Active health checking on the main thread (Envoy's HTTP, TCP and gRPC
 * health checkers).  Each host of a cluster with health_checks gets its own
 * timer; a check is a fresh connection to the host (or its
 * health_check_config port): TCP passes when it connects, HTTP when the
 * status of "GET <path>" is in expected_statuses, gRPC when
 * grpc.health.v1.Health/Check answers SERVING (proxy/health_check_grpc.c;
 * h2c only, checks do not speak TLS yet).  unhealthy_threshold failures in a
 * row mark a healthy host /failed_active_hc, healthy_threshold successes
 * clear it; a new host's first check decides at once (Envoy).  Changes
 * publish a new host set (proxy/cluster_mgr.h). */
#ifndef PF_HEALTH_CHECK_H
#define PF_HEALTH_CHECK_H

#include <stddef.h>

struct pf_server;
struct pf_hostset;
typedef struct pf_hc pf_hc;

/* NULL when the cluster has no health_checks (or no memory). */
pf_hc *pf_hc_new(struct pf_server *srv, size_t cluster);
/* The cluster's hosts are now hs: starts checking new ones, stops removed ones. */
void pf_hc_sync(pf_hc *hc, const struct pf_hostset *hs);
/* Stops every check; memory goes with the last handle close.  NULL is fine. */
void pf_hc_stop(pf_hc *hc);

#endif
