/* Route selection: virtual host by authority, then the first matching route.
 * Pure functions over the immutable config, so unit tests call them directly. */
#ifndef PF_ROUTE_MATCH_H
#define PF_ROUTE_MATCH_H

#include "config/config.h"
#include "proxy/arena.h"

/* Envoy's order: exact domain, then longest "*.suffix", then longest
 * "prefix.*", then "*".  Case-insensitive; the port is part of the host. */
const cfg_virtual_host *route_find_vhost(const cfg_route_config *rc, pf_str authority);
/* First route whose match accepts path (the query string is ignored). */
const cfg_route *route_find(const cfg_virtual_host *vh, pf_str path);

#endif
