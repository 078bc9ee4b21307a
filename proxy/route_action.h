/* What a matched route does with a request: cluster choice (cluster,
 * cluster_header, weighted_clusters with runtime weights, header-supplied
 * random values and pilotfish's sticky hashing), hash policies, path and
 * host rewrites, redirects and the request/response header mutations of
 * every level.  The connection manager (proxy/hcm.c) calls these; they work
 * on the stream and allocate only from its arena.
 *
 * Sticky canary (pilotfish's own rule): when a route has weighted_clusters
 * and a hash_policy that yields a hash, the hash, not a random number,
 * selects the cluster: the 64-bit hash h is mapped to the point
 * floor(h * total / 2^64) in [0, total) and the cluster whose cumulative
 * weight range holds that point wins.  A user keeps their cluster while
 * weights hold; when weights move only users in the moved slice change. */
#ifndef PF_ROUTE_ACTION_H
#define PF_ROUTE_ACTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"
#include "proxy/stream.h"

struct pf_runtime_snapshot;

typedef enum route_outcome {
    ROUTE_NOT_FOUND,    /* no virtual host or route: 404, NR */
    ROUTE_FORWARD,      /* s->route and s->cluster are set: go upstream */
    ROUTE_DIRECT,       /* s->route is a direct_response */
    ROUTE_REDIRECT,     /* s->redirect_location is set; status s->route->redirect.code */
    ROUTE_NO_CLUSTER,   /* no usable cluster: s->route->cluster_not_found_code, NC */
} route_outcome;

/* Matches s (authority, path, headers, runtime) against its connection
 * manager's route table and decides what happens.  Sets s->vhost,
 * s->route, and for ROUTE_FORWARD s->cluster (and s->wcluster,
 * s->route_hash, s->set_cookie). */
route_outcome route_action_select(pf_stream *s);

/* Chooses the cluster for s->route (a CFG_ACTION_ROUTE).  Returns 0 and
 * sets *out, or -ENOENT when cluster_header names no cluster. */
int route_action_pick_cluster(pf_stream *s, size_t *out);

/* Before the request goes upstream: request header mutations (weighted
 * cluster, route, virtual host, route config, in Envoy's order), host
 * rewrites and path rewrites (x-envoy-original-path keeps the old path). */
void route_action_apply_request(pf_stream *s);

/* auto_host_rewrite: the router calls this once it picked the upstream
 * host, before it writes the request head.  A no-op for other routes. */
void route_action_host_rewrite(pf_stream *s, const struct sockaddr_storage *addr);

/* On every response of a routed stream (upstream or local reply):
 * Location for redirects, the hash policy's Set-Cookie and the response
 * header mutations. */
void route_action_apply_response(pf_stream *s);

/* ---- pure pieces (unit tests) ---- */

/* xxHash64 of [p, p+n) with seed 0 (Envoy's HashUtil::xxHash64). */
uint64_t route_hash64(const void *p, size_t n);

/* Index into r->weighted for a random value (Envoy: value % total) or,
 * when hashed, a hash (multiply-shift onto [0, total)).  Weights come from
 * the runtime when the route has runtime_key_prefix.  Returns
 * r->n_weighted when every weight is 0. */
size_t route_weighted_pick(const cfg_route *r, const struct pf_runtime_snapshot *rt,
                           uint64_t value, bool hashed);

#endif
