/* envoy.router.cluster_specifier_plugin.lua: envoy_on_route(route_handle)
 * returns the cluster name (filters/lua/lua_cluster_specifier.h).
 *
 * The call is synchronous (the route handle API has nothing to wait for):
 * a protected call on the worker's main Lua state, so a script that
 * yields fails like one that raises.  The route handle and its header map
 * are valid only during the call: they hold the worker's call generation
 * (pf_lua_worker.route_gen), and methods of an object kept past its call
 * raise "object used outside of proper scope". */
#include "filters/lua/lua_cluster_specifier.h"

#include <errno.h>
#include <string.h>

#include <lauxlib.h>

#include "filters/lua/lua_filter.h"
#include "proxy/worker.h"

typedef struct lroute {
    pf_lua_worker *lw;
    uint32_t gen;
} lroute;

static pf_stream *route_alive(lua_State *L)
{
    lroute *o = pf_lua_self(L);
    if (o->gen != o->lw->route_gen || !o->lw->route_stream)
        luaL_error(L, "object used outside of proper scope");
    return o->lw->route_stream;
}

static void push_route_obj(lua_State *L, pf_lua_worker *lw, enum lua_mt k)
{
    lroute *o = lua_newuserdata(L, sizeof *o);
    o->lw = lw;
    o->gen = lw->route_gen;
    lua_rawgeti(L, LUA_REGISTRYINDEX, lw->mt[k]);
    lua_setmetatable(L, -2);
}

static int rh_headers(lua_State *L)
{
    route_alive(L);
    push_route_obj(L, ((lroute *)lua_touserdata(L, 1))->lw, LMT_ROUTE_HEADERS);
    return 1;
}

static int rhh_get(lua_State *L)
{
    pf_stream *s = route_alive(L);
    size_t kn;
    const char *k = luaL_checklstring(L, 2, &kn);
    return pf_lua_push_header(L, s, PF_DECODE, 0, k, kn);
}

void pf_lua_route_api_register(pf_lua_worker *lw)
{
    static const luaL_Reg handle[] = {{"headers", rh_headers}, {NULL, NULL}};
    static const luaL_Reg headers[] = {{"get", rhh_get}, {NULL, NULL}};
    pf_lua_new_class(lw, LMT_ROUTE_HANDLE, handle, NULL, NULL);
    pf_lua_new_class(lw, LMT_ROUTE_HEADERS, headers, NULL, NULL);
}

/* Calls envoy_on_route; returns the cluster name it answered (a Lua string
 * left on the stack, popped by the caller) or NULL after logging why not. */
static const char *run_script(pf_lua_worker *lw, pf_stream *s, const cfg_cluster_specifier *cs,
                              size_t *len)
{
    const struct lua_script_rt *rt = pf_lua_script_rt(lw, cs->script);
    if (!rt || rt->fn_ref[LUA_FN_ROUTE] == LUA_NOREF)
        return NULL;                /* Envoy: no envoy_on_route -> default_cluster */
    lua_State *L = lw->L;
    if (lw->mem > lw->limit / 10 * 9) {
        lua_gc(L, LUA_GCCOLLECT, 0);
        if (lw->mem > lw->limit / 10 * 9) {
            pf_lua_log_error(lw, "cluster specifier", cs->name, "lua state memory limit reached");
            return NULL;
        }
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->fn_ref[LUA_FN_ROUTE]);
    push_route_obj(L, lw, LMT_ROUTE_HANDLE);
    lw->route_stream = s;
    int rc = lua_pcall(L, 1, 1, 0);
    lw->route_stream = NULL;
    lw->route_gen++;
    if (rc != 0) {
        const char *m = lua_tostring(L, -1);
        pf_lua_log_error(lw, "cluster specifier", cs->name,
                         m ? m : "(error object is not a string)");
        lua_pop(L, 1);
        return NULL;
    }
    if (lua_type(L, -1) != LUA_TSTRING) {
        pf_lua_log_error(lw, "cluster specifier", cs->name,
                         "envoy_on_route did not return a cluster name (a string)");
        lua_pop(L, 1);
        return NULL;
    }
    return lua_tolstring(L, -1, len);
}

static int find_cluster(const pf_worker *w, const char *name, size_t n, size_t *out)
{
    ptrdiff_t i = cfg_cluster_index(w->cfg, name, n);
    if (i < 0)
        return -ENOENT;
    *out = (size_t)i;
    return 0;
}

int pf_lua_cluster_pick(pf_stream *s, const cfg_cluster_specifier *cs, size_t *out)
{
    pf_lua_worker *lw = s->w->lua;
    size_t n = 0;
    const char *name = lw ? run_script(lw, s, cs, &n) : NULL;
    if (name) {
        int rc = find_cluster(s->w, name, n, out);
        lua_pop(lw->L, 1);
        return rc;
    }
    const char *d = cs->default_cluster;
    return find_cluster(s->w, d, d ? strlen(d) : 0, out);
}
