/* pilotfish extension of the Lua stream handle -- NOT part of Envoy's API.
 *
 *   local pf = handle:pilotfish()     -- nil-safe test: `if handle.pilotfish then`
 *   pf:draining()
 *       true after admin POST /healthcheck/fail (until /healthcheck/ok) and
 *       while the server or this worker drains (SIGTERM, /quitquitquit)
 *   pf:clusterHealthy(name)
 *       healthy (boolean), healthy host count, total host count of the
 *       cluster's current host set on this worker (a host is healthy unless
 *       it failed active health checking or is ejected as an outlier);
 *       raises an error for a cluster that is not configured
 *
 * One object per worker Lua state (cached in the registry); it reads only
 * worker-owned state, plus the server's health-check-failed and draining
 * flags, which the main thread writes (read with relaxed atomic loads).
 * Envoy's own handle methods are untouched.  Used by
 * filters/lua/lib/pilotfish/health.lua. */
#include "filters/lua/lua_filter.h"

#include <stdatomic.h>
#include <string.h>

#include <lauxlib.h>

#include "proxy/cluster.h"
#include "proxy/server.h"
#include "proxy/worker.h"

#define PF_OBJ_KEY "pf.lua.pilotfish"

static pf_worker *worker_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

static int p_draining(lua_State *L)
{
    pf_worker *w = worker_of(L);
    bool d = w->draining;
    if (w->server)
        d = d || atomic_load_explicit(&w->server->hc_failed, memory_order_relaxed) ||
            atomic_load_explicit(&w->server->draining, memory_order_relaxed);
    lua_pushboolean(L, d);
    return 1;
}

static int p_cluster_healthy(lua_State *L)
{
    pf_worker *w = worker_of(L);
    const char *name = luaL_checkstring(L, 2);
    size_t ci = 0;
    for (; ci < w->cfg->n_clusters; ci++)
        if (strcmp(w->cfg->clusters[ci].name, name) == 0)
            break;
    if (ci == w->cfg->n_clusters)
        return luaL_error(L, "cluster '%s' is not configured", name);
    const pf_hostset *hs = w->clusters ? w->clusters[ci].hs : NULL;
    lua_Integer healthy = 0, total = hs ? (lua_Integer)hs->n : 0;
    for (size_t i = 0; hs && i < hs->n; i++)
        healthy += !(hs->info[i].flags & PF_HOST_UNHEALTHY);
    lua_pushboolean(L, healthy > 0);
    lua_pushinteger(L, healthy);
    lua_pushinteger(L, total);
    return 3;
}

int pf_lua_push_pilotfish(lua_State *L, struct pf_worker *w)
{
    lua_getfield(L, LUA_REGISTRYINDEX, PF_OBJ_KEY);
    if (!lua_isnil(L, -1))
        return 1;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushlightuserdata(L, w);
    lua_pushcclosure(L, p_draining, 1);
    lua_setfield(L, -2, "draining");
    lua_pushlightuserdata(L, w);
    lua_pushcclosure(L, p_cluster_healthy, 1);
    lua_setfield(L, -2, "clusterHealthy");
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, PF_OBJ_KEY);
    return 1;
}
