/* envoy.router.cluster_specifier_plugin.lua: a route's cluster chosen by a
 * Lua function, envoy_on_route(route_handle), in the worker's Lua state
 * (filters/lua/lua_cluster_specifier.c; config in
 * config/cluster_specifier_config.h). */
#ifndef PF_LUA_CLUSTER_SPECIFIER_H
#define PF_LUA_CLUSTER_SPECIFIER_H

#include <stddef.h>

#include "config/cluster_specifier_config.h"
#include "proxy/stream.h"

/* Runs cs for s (request headers complete).  The script's answer, or the
 * default_cluster when it has no envoy_on_route, fails or answers something
 * other than a string, names the cluster: 0 and its index in *out, or
 * -ENOENT when there is no such cluster (the route's cluster-not-found
 * answer, 503 NC, as Envoy). */
int pf_lua_cluster_pick(pf_stream *s, const cfg_cluster_specifier *cs, size_t *out);

#endif
