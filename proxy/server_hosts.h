/* Main-thread bookkeeping of per-host counters (proxy/host_stats.h). */
#ifndef PF_SERVER_HOSTS_H
#define PF_SERVER_HOSTS_H

#include <stddef.h>

struct pf_server;
struct pf_hostset;

/* One table per cluster, sized for its endpoints.  Returns 0 or UV_ENOMEM. */
int pf_server_hosts_init(struct pf_server *srv);
void pf_server_hosts_free(struct pf_server *srv);
/* Gives every address of a new host set its counters slot. */
void pf_server_hosts_assign(struct pf_server *srv, size_t cluster, struct pf_hostset *hs);

#endif
