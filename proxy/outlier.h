/* Passive outlier detection (Envoy's consecutive_5xx,
 * consecutive_gateway_failure and consecutive_local_origin_failure).
 *
 * Workers count each host's consecutive failures in their own row of the
 * per-host counters table (proxy/host_stats.h, no lock) and bump a "trip"
 * counter when one reaches its threshold, waking the main thread.  The main
 * thread reads the trips (on wake-up and every `interval`), ejects and
 * un-ejects hosts and publishes new host sets (proxy/cluster_mgr.h).
 * Consecutive failures are counted per worker: a host trips when one worker
 * sees the threshold in a row. */
#ifndef PF_OUTLIER_H
#define PF_OUTLIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pf_worker;
struct pf_cluster_rt;
struct pf_host_counters;
struct pf_server;
typedef struct pf_outlier pf_outlier;

/* Local-origin results for pf_outlier_report (HTTP statuses are positive). */
enum { PF_OD_CONNECT_FAILED = -1, PF_OD_RESET = -2, PF_OD_TIMEOUT = -3 };

/* Worker: one result of a request to the host whose counters are hc. */
void pf_outlier_report(struct pf_worker *w, struct pf_cluster_rt *c, struct pf_host_counters *hc,
                       int result);

/* Main thread.  NULL when the cluster has no outlier_detection (or no memory). */
pf_outlier *pf_outlier_start(struct pf_server *srv, size_t cluster);
/* Reads the workers' trips and ejects; called on wake-up. */
void pf_outlier_check(pf_outlier *od);
/* Closes the timer; frees itself in the close callback. */
void pf_outlier_stop(pf_outlier *od);

#endif
