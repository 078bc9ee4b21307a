/* The main thread's side of stats: creating the store and ids before the
 * workers start, the periodic flush (interval histograms, server.* gauges),
 * and cluster membership gauges. */
#ifndef PF_SERVER_STATS_H
#define PF_SERVER_STATS_H

#include <stddef.h>

struct pf_server;

/* Creates srv->stats and srv->ps and starts the flush timer.  Returns 0 or a UV error. */
int pf_server_stats_init(struct pf_server *srv);
struct pf_hostset;

/* A cluster has a new host set (main thread): assigns its host stats slots
 * and updates the membership gauges.  Call before posting it to workers. */
void pf_server_stats_membership(struct pf_server *srv, size_t cluster, struct pf_hostset *hs);
/* Stops the flush timer (the loop is closing). */
void pf_server_stats_stop(struct pf_server *srv);
/* Frees the store after the workers have been joined. */
void pf_server_stats_free(struct pf_server *srv);

#endif
