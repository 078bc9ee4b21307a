/* Shared by the upstream connection kinds (proxy/upstream_conn.c). */
#ifndef PF_UPSTREAM_CONN_H
#define PF_UPSTREAM_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/cluster.h"
#include "proxy/sock.h"
#include "proxy/stream.h"

struct pf_cluster_stats;
struct pf_host_counters;

/* A new socket for a connection to p's host, owned by `owner` (its
 * callbacks cbs), counted as a connection of p.  NULL when out of memory. */
pf_sock *pf_upstream_open(struct pf_worker *w, pf_pool *p, const pf_sock_cbs *cbs, void *owner);
/* Connects sock and starts TLS: SNI from s's authority under auto_sni (s may
 * be NULL), the pool's TLS session offered for resumption.  On an error the
 * socket is closing and the owner's on_close follows. */
int pf_upstream_connect(pf_sock *sock, pf_pool *p, const pf_stream *s);
/* From the owner's on_close: uncounts the connection, frees sock, and frees
 * p when it is orphaned and this was its last connection. */
void pf_upstream_closed(pf_pool *p, pf_sock *sock, const struct pf_cluster_stats *cs,
                        struct pf_host_counters *hc);
/* Which connections of p may carry s: 0 unless the cluster sets auto_sni,
 * then a hash of the SNI s would send (Envoy pools per SNI). */
uint64_t pf_upstream_sni_key(const pf_pool *p, const pf_stream *s);

/* ---- auto_config (proxy/upstream_auto.c) ---- */

/* A connection of a known protocol (PF_ALPN_H1/H2) finished its handshake:
 * true when p is an auto_config pool and the host's ALPN picked the other
 * protocol this time.  The pool then forgets what it knew (the next request
 * probes again) and the caller fails the connection as a connect failure. */
bool pf_upstream_alpn_changed(pf_pool *p, const pf_sock *sock, int expected);
/* The probe's connected socket becomes an idle HTTP/1.1 connection, or an
 * HTTP/2 connection, of p.  Returns 0, or -1 (out of memory: the caller
 * still owns sock). */
int pf_upstream_h1_adopt(pf_pool *p, pf_sock *sock, uint64_t sni_key);
int pf_upstream_h2_adopt(pf_pool *p, pf_sock *sock, uint64_t sni_key);

#endif
