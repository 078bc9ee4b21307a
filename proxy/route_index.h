/* Per-virtual-host route index (proxy/route_index.c): the routes that can
 * possibly match a request, in route order, so route_match() tries a few
 * instead of all.  Built once when the config is loaded; immutable. */
#ifndef PF_ROUTE_INDEX_H
#define PF_ROUTE_INDEX_H

#include <stdint.h>

#include "config/config.h"
#include "proxy/route_match.h"

#define ROUTE_INDEX_KEY_MAX 8       /* path bytes a key covers */
#define ROUTE_INDEX_MAX_NAMES 16    /* indexed header names; routes on others stay "always" */

/* The candidate lists of one request (always, one per path key length, one
 * per indexed header): walk them with route_cands_next. */
typedef struct route_cands {
    const uint32_t *cur[1 + ROUTE_INDEX_KEY_MAX + ROUTE_INDEX_MAX_NAMES];
    const uint32_t *end[1 + ROUTE_INDEX_KEY_MAX + ROUTE_INDEX_MAX_NAMES];
    uint32_t n;
} route_cands;

/* route_index_new / route_index_free are declared in config/route_config.h
 * (the loader builds the index for each virtual host). */
void route_index_candidates(const struct route_index *ix, const route_req *rq, route_cands *c);
/* The next candidate route index in ascending order, UINT32_MAX at the end. */
uint32_t route_cands_next(route_cands *c);

#endif
