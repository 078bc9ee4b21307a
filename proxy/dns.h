/* DNS for STRICT_DNS / LOGICAL_DNS clusters, on the main thread.
 *
 * Each cluster's endpoints are resolved with uv_getaddrinfo (libuv's thread
 * pool, never a worker) and again every dns_refresh_rate; each changed
 * answer becomes a new host set posted to the workers. */
#ifndef PF_DNS_H
#define PF_DNS_H

#include <stddef.h>

struct pf_server;
typedef struct pf_dns_cluster pf_dns_cluster;

/* Starts resolving cluster idx; bumps server->dns_pending until the first
 * answer (or failure) is in.  Returns NULL on allocation failure. */
pf_dns_cluster *pf_dns_start(struct pf_server *srv, size_t idx);
/* Stops refreshing; frees itself once any lookup in flight has returned. */
void pf_dns_stop(pf_dns_cluster *d);

#endif
