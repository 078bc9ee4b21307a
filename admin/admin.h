/* The admin listener, on the main thread (never on a worker).
 * Serves Envoy's admin paths (admin/admin_endpoints.c has the table). */
#ifndef PF_ADMIN_H
#define PF_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "config/config.h"

struct pf_server;
typedef struct pf_admin pf_admin;

/* Binds and listens; returns 0 and sets *out, or a UV error. */
int pf_admin_start(struct pf_server *srv, const cfg_socket_address *addr, pf_admin **out);
/* Closes the listener and every admin connection; frees itself when done. */
void pf_admin_stop(pf_admin *a);

/* One upstream host of a cluster, as /clusters shows it.  Counters are the
 * sums over workers (Envoy's per-host stats). */
typedef struct pf_admin_host_stats {
    struct sockaddr_storage addr;
    uint64_t cx_active, cx_total, rq_total, rq_active;
    uint64_t cx_connect_fail, rq_error, rq_success, rq_timeout;
    uint32_t weight, priority;
    unsigned flags;                 /* PF_HOST_* (proxy/cluster.h) */
    const char *region, *zone, *sub_zone;   /* the config's; never NULL */
} pf_admin_host_stats;

/* Implemented by proxy/ (proxy/server_hosts.c), main thread only: fills out
 * with up to max hosts of cluster index `cluster` and returns the total
 * number of hosts (which may exceed max). */
size_t pf_server_cluster_hosts(struct pf_server *srv, size_t cluster, pf_admin_host_stats *out,
                               size_t max);

#endif
