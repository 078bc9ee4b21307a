/* Route selection: virtual host by authority, then the first route whose
 * RouteMatch accepts the request (path, headers, query, gRPC, runtime
 * fraction).  Pure functions over the immutable config and a view of the
 * request, so unit tests call them directly.  Nothing here allocates. */
#ifndef PF_ROUTE_MATCH_H
#define PF_ROUTE_MATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "proxy/arena.h"
#include "proxy/http.h"

struct pf_runtime_snapshot;

/* What route matching looks at.  Fields may be empty; hdrs may be NULL. */
typedef struct route_req {
    pf_str method, path, authority, scheme;     /* path includes the query */
    const pf_hdrs *hdrs;                        /* lower-case names */
    const struct pf_runtime_snapshot *runtime;  /* NULL: every key absent */
    uint64_t random;                            /* for runtime_fraction */
} route_req;

/* Envoy's order: exact domain, then longest "*.suffix", then longest
 * "prefix.*", then "*".  Case-insensitive; the port is part of the host
 * unless rc->ignore_port_in_host_matching. */
const cfg_virtual_host *route_find_vhost(const cfg_route_config *rc, pf_str authority);
/* First route of vh that matches rq, or NULL. */
const cfg_route *route_match(const cfg_virtual_host *vh, const route_req *rq);
/* route_match() for a bare path (no headers, runtime or random). */
const cfg_route *route_find(const cfg_virtual_host *vh, pf_str path);

/* The pieces, for the route actions and tests. */
bool route_string_match(const cfg_string_match *m, const char *p, size_t n);
bool route_header_match(const cfg_header_match *h, const route_req *rq);
bool route_query_match(const cfg_query_match *q, pf_str path);
/* The request header `lname` (lower-case; ":authority"/"host", ":path",
 * ":method", ":scheme" read the request line).  Several values of one
 * header are joined with ',' (in a per-thread buffer valid until the next
 * call).  Returns false when absent. */
bool route_req_header(const route_req *rq, const char *lname, size_t n, pf_str *out);
/* The first value of query parameter `name` in path (not decoded, as
 * Envoy).  Returns false when absent. */
bool route_query_param(pf_str path, const char *name, size_t n, pf_str *value);

#endif
