/* envoy.filters.http.lua: worker states, coroutines and the filter ops.
 * The handle API itself is in filters/lua/lua_api.c. */
#include "filters/lua/lua_filter.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "admin/stats.h"
#include "config/cluster_specifier_config.h"
#include "proxy/async_client.h"
#include "proxy/log.h"
#include "proxy/proxy_stats.h"
#include "proxy/worker.h"

#define ERR_LOG_INTERVAL_MS 1000
/* Threads kept for reuse per worker beyond the ones running: enough for the
 * usual concurrency, bounded so a burst does not pin its memory forever. */
#define POOL_MAX_THREADS 256

/* ---- stats ---- */

uint32_t *pf_filter_stats_register(stats_store *st, const cfg_hcm *h)
{
    bool any = false;
    for (size_t i = 0; i < h->n_filters; i++)
        any |= h->filters[i].kind == CFG_FILTER_LUA;
    if (!any)
        return NULL;
    stat_id *ids = calloc(h->n_filters, sizeof *ids);
    if (!ids)
        return NULL;
    for (size_t i = 0; i < h->n_filters; i++) {
        const cfg_lua *l = h->filters[i].lua;
        if (!l)
            continue;
        char name[512];
        if (l->stat_prefix && l->stat_prefix[0])
            snprintf(name, sizeof name, "http.%s.lua.%s.errors", h->stat_prefix, l->stat_prefix);
        else
            snprintf(name, sizeof name, "http.%s.lua.errors", h->stat_prefix);
        ids[i] = stats_counter(st, name);
    }
    return ids;
}

/* ---- the worker's state ---- */

/* Counting allocator: refuses to grow past the limit (Lua raises "not
 * enough memory" in the script that asked). */
static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    pf_lua_worker *lw = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        lw->mem -= old;
        free(ptr);
        return NULL;
    }
    if (nsize > old && lw->mem + (nsize - old) > lw->limit)
        return NULL;
    void *np = ptr ? realloc(ptr, nsize) : malloc(nsize);   /* most are new objects */
    if (!np)
        return NULL;
    lw->mem = lw->mem - old + nsize;
    return np;
}

static int add_script(pf_lua_worker *lw, const cfg_lua_script *sc, size_t *cap)
{
    if (!sc)
        return 0;
    for (size_t i = 0; i < lw->n_scripts; i++)
        if (lw->scripts[i].script == sc)
            return 0;
    if (lw->n_scripts == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        void *p = realloc(lw->scripts, nc * sizeof *lw->scripts);
        if (!p)
            return -1;
        lw->scripts = p;
        *cap = nc;
    }
    lua_State *L = lw->L;
    int ref = LUA_NOREF;
    int fn[LUA_FN_COUNT] = { LUA_NOREF, LUA_NOREF, LUA_NOREF };
    if (luaL_loadbuffer(L, sc->code, sc->len, sc->chunkname) == 0) {
        /* its own globals, reading through to _G */
        lua_newtable(L);
        lua_newtable(L);
        lua_pushvalue(L, LUA_GLOBALSINDEX);
        lua_setfield(L, -2, "__index");
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        ref = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_setfenv(L, -2);
        if (lua_pcall(L, 0, 0, 0) != 0) {
            pf_error("lua: script load error (%s): %s", sc->chunkname + 1, lua_tostring(L, -1));
            lua_pop(L, 1);
            luaL_unref(L, LUA_REGISTRYINDEX, ref);
            ref = LUA_NOREF;
        } else {
            /* Envoy too takes the entry functions once, after loading */
            static const char *const names[LUA_FN_COUNT] = {
                "envoy_on_request", "envoy_on_response", "envoy_on_route" };
            for (int d = 0; d < LUA_FN_COUNT; d++) {
                lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
                lua_getfield(L, -1, names[d]);
                if (lua_isfunction(L, -1))
                    fn[d] = luaL_ref(L, LUA_REGISTRYINDEX);
                else
                    lua_pop(L, 1);
                lua_pop(L, 1);
            }
        }
    } else {
        pf_error("lua: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lw->scripts[lw->n_scripts++] = (struct lua_script_rt){ sc, ref, { fn[0], fn[1], fn[2] } };
    return 0;
}

static void add_route_scripts(pf_lua_worker *lw, const cfg_per_filter *pf, size_t n, size_t *cap)
{
    for (size_t i = 0; i < n; i++)
        if (pf[i].owns_script)
            add_script(lw, pf[i].script, cap);
}

/* The directory for require() (the config file's), or NULL when the
 * config has no Lua at all: no filter, no cluster specifier plugin. */
static const char *lua_dir(const cfg_bootstrap *cfg)
{
    for (size_t i = 0; i < cfg->n_listeners; i++)
        for (size_t j = 0; j < cfg->listeners[i].n_chains; j++) {
            const cfg_hcm *h = &cfg->listeners[i].chains[j].hcm;
            for (size_t k = 0; k < h->n_filters; k++)
                if (h->filters[k].lua)
                    return h->filters[k].lua->dir;
            const cfg_route_config *rc = &h->route_config;
            if (rc->n_cluster_plugins)
                return rc->cluster_plugins[0].dir;
            for (size_t v = 0; v < rc->n_vhosts; v++)
                for (size_t r = 0; r < rc->vhosts[v].n_routes; r++)
                    if (rc->vhosts[v].routes[r].cluster_plugin)
                        return rc->vhosts[v].routes[r].cluster_plugin->dir;
        }
    return NULL;
}

/* Loads every script of one connection manager: its Lua filters', the
 * per-route ones and the route config's cluster specifier plugins. */
static void add_hcm_scripts(pf_lua_worker *lw, const cfg_hcm *h, size_t *cap)
{
    for (size_t k = 0; k < h->n_filters; k++) {
        const cfg_lua *l = h->filters[k].lua;
        if (!l)
            continue;
        add_script(lw, l->default_script, cap);
        for (size_t m = 0; m < l->n_sources; m++)
            add_script(lw, l->sources[m], cap);
    }
    const cfg_route_config *rc = &h->route_config;
    for (size_t i = 0; i < rc->n_cluster_plugins; i++)
        add_script(lw, rc->cluster_plugins[i].script, cap);
    for (size_t v = 0; v < rc->n_vhosts; v++) {
        const cfg_virtual_host *vh = &rc->vhosts[v];
        add_route_scripts(lw, vh->per_filter, vh->n_per_filter, cap);
        for (size_t r = 0; r < vh->n_routes; r++) {
            const cfg_route *rt = &vh->routes[r];
            add_route_scripts(lw, rt->per_filter, rt->n_per_filter, cap);
            if (rt->cluster_plugin)
                add_script(lw, rt->cluster_plugin->script, cap);
        }
    }
}

int pf_lua_worker_init(pf_worker *w)
{
    const cfg_bootstrap *cfg = w->cfg;
    const char *dir = lua_dir(cfg);
    if (!dir)
        return 0;                   /* no Lua: no state */
    pf_lua_worker *lw = calloc(1, sizeof *lw);
    if (!lw)
        return -1;
    lw->w = w;
    lw->limit = PF_LUA_MEM_LIMIT;
    if (!(lw->L = lua_newstate(l_alloc, lw)) && !(lw->L = luaL_newstate())) {
        free(lw);
        return -1;
    }
    w->lua = lw;
    lua_State *L = lw->L;
    luaL_openlibs(L);
    char path[4096];
    cfg_lua_package_path(dir, path, sizeof path);
    lua_getglobal(L, "package");
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    pf_lua_api_register(lw);
    pf_lua_route_api_register(lw);
    size_t cap = 0;
    for (size_t i = 0; i < cfg->n_listeners; i++)
        for (size_t j = 0; j < cfg->listeners[i].n_chains; j++)
            add_hcm_scripts(lw, &cfg->listeners[i].chains[j].hcm, &cap);
    lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}

void pf_lua_worker_destroy(pf_worker *w)
{
    pf_lua_worker *lw = w->lua;
    if (!lw)
        return;
    lua_close(lw->L);
    for (lua_slot *sl = lw->all_slots, *next; sl; sl = next) {
        next = sl->all_next;
        free(sl);
    }
    free(lw->scripts);
    free(lw);
    w->lua = NULL;
}

const struct lua_script_rt *pf_lua_script_rt(pf_lua_worker *lw, const cfg_lua_script *sc)
{
    for (size_t i = 0; i < lw->n_scripts; i++)
        if (lw->scripts[i].script == sc)
            return &lw->scripts[i];
    return NULL;
}

static void report_memory(pf_lua_worker *lw)
{
    int64_t d = (int64_t)lw->mem - lw->mem_reported;
    if (d) {
        stats_gauge_add(lw->w->stats, lw->w->ps->lua_memory, d);
        lw->mem_reported = (int64_t)lw->mem;
    }
}

/* ---- coroutines ---- */

/* R_ERROR: the script failed (logged, counted, coroutine gone): the
 * stream gets a 500, or a reset when the response is on the wire. */
typedef enum run_result { R_CONTINUE, R_STOP, R_REPLY, R_ERROR } run_result;

#define SCRIPT_ERROR_MSG "lua filter: script error"

/* A slot for a new run, with a Lua thread; NULL when out of memory. */
static lua_slot *slot_get(pf_lua_worker *lw)
{
    lua_slot *sl = lw->free_slots;
    if (sl) {
        lw->free_slots = sl->next;
    } else {
        if (!(sl = calloc(1, sizeof *sl)))
            return NULL;
        sl->all_next = lw->all_slots;
        lw->all_slots = sl;
    }
    if (sl->th) {
        lw->n_free_threads--;
    } else {
        sl->th = lua_newthread(lw->L);
        sl->th_ref = luaL_ref(lw->L, LUA_REGISTRYINDEX);
    }
    return sl;
}

/* Ends co's run: its objects die (generation), its thread goes back to the
 * pool when `reusable` (the run returned normally), and any httpCall in
 * flight is cancelled. */
static void co_end(lua_co *co, bool reusable)
{
    if (co->call) {
        pf_async_call_cancel(co->call);
        co->call = NULL;
    }
    lua_slot *sl = co->slot;
    if (sl) {
        pf_lua_worker *lw = co->fs->lw;
        sl->gen++;
        sl->co = NULL;
        if (reusable && lw->n_free_threads < POOL_MAX_THREADS) {
            lua_settop(sl->th, 0);
            lw->n_free_threads++;
        } else {
            luaL_unref(lw->L, LUA_REGISTRYINDEX, sl->th_ref);
            sl->th = NULL;
        }
        sl->next = lw->free_slots;
        lw->free_slots = sl;
        co->slot = NULL;
        co->th = NULL;
    }
    co->state = CO_NONE;
}

static void co_kill(lua_co *co)
{
    co_end(co, false);
}

static void script_error(lua_co *co, const char *msg)
{
    lua_fs *fs = co->fs;
    pf_stream *s = pf_filter_stream(fs->fc);
    pf_worker *w = s->w;
    const stat_id *ids = w->ps->chains[s->hcm->index].filter_errors;
    if (ids)
        stats_inc(w->stats, ids[fs->index]);
    pf_lua_log_error(fs->lw, "filter", fs->cfg->name, msg);
}

void pf_lua_log_error(pf_lua_worker *lw, const char *kind, const char *name, const char *msg)
{
    uint64_t now = uv_now(&lw->w->loop);
    if (!lw->last_err_ms || now - lw->last_err_ms >= ERR_LOG_INTERVAL_MS) {
        if (lw->err_suppressed)
            pf_error("lua: script log: %s (%s %s; %u more errors not logged)", msg, kind, name,
                     lw->err_suppressed);
        else
            pf_error("lua: script log: %s (%s %s)", msg, kind, name);
        lw->last_err_ms = now;
        lw->err_suppressed = 0;
    } else {
        lw->err_suppressed++;
    }
}

static void push_trailers_or_nil(lua_co *co)
{
    pf_stream *s = pf_filter_stream(co->fs->fc);
    const pf_hdrs *t = co->dir == PF_DECODE ? &s->req_trailers : &s->resp_trailers;
    if (co->fs->trailers_seen[co->dir] && t->n)
        pf_lua_push_headers(co->th, co, 1);
    else
        lua_pushnil(co->th);
}

/* Resumes co with nargs values on its stack; continues for as long as what
 * it waits for is already there.  The caller acts on the result. */
static run_result co_run(lua_co *co, int nargs)
{
    lua_fs *fs = co->fs;
    for (;;) {
        co->state = CO_RUNNING;
        int rc = lua_resume(co->th, nargs);
        report_memory(fs->lw);
        if (rc == 0) {
            co_end(co, true);
            return R_CONTINUE;
        }
        if (rc != LUA_YIELD) {
            const char *m = lua_tostring(co->th, -1);
            luaL_traceback(fs->lw->L, co->th, m ? m : "(error object is not a string)", 0);
            script_error(co, lua_tostring(fs->lw->L, -1));
            lua_pop(fs->lw->L, 1);
            co_kill(co);
            return R_ERROR;
        }
        lua_settop(co->th, 0);
        bool end = fs->end_seen[co->dir];
        switch (co->state) {
        case CO_RESPOND:
            return R_REPLY;
        case CO_WAIT_BODY:
            if (!end)
                return R_STOP;
            pf_lua_push_body(co->th, co);
            nargs = 1;
            continue;
        case CO_WAIT_TRAILERS:
            if (!end)
                return R_STOP;
            push_trailers_or_nil(co);
            nargs = 1;
            continue;
        case CO_WAIT_CHUNK:
            if (!end)
                return R_STOP;
            lua_pushnil(co->th);
            nargs = 1;
            continue;
        case CO_WAIT_HTTP:
            return R_STOP;
        default:
            script_error(co, "script performed an unexpected yield");
            co_kill(co);
            return R_ERROR;
        }
    }
}

/* Acts on a run result inside a chain callback. */
static pf_filter_status settle(lua_co *co, run_result r)
{
    lua_fs *fs = co->fs;
    if (r == R_REPLY) {
        co->state = CO_NONE;
        pf_filter_local_reply(fs->fc, fs->index, co->reply_body, co->reply_len);
        co_kill(co);
        return PF_FILTER_STOP;
    }
    if (r == R_ERROR) {
        pf_filter_local_error(fs->fc, fs->index, co->dir, SCRIPT_ERROR_MSG);
        return PF_FILTER_STOP;
    }
    /* bodyChunks() does not hold the stream: headers and each chunk go on
     * while the script waits for the next chunk (Envoy) */
    if (r == R_CONTINUE || co->state == CO_WAIT_CHUNK) {
        co->hdrs_passed = true;
        return PF_FILTER_CONTINUE;
    }
    return PF_FILTER_STOP;
}

/* Acts on a run result outside the chain (an httpCall answer): the chain
 * call is the last thing done, fs may be gone after it. */
static void settle_async(lua_co *co, run_result r)
{
    lua_fs *fs = co->fs;
    pf_filter_chain *fc = fs->fc;
    size_t idx = fs->index;
    pf_filter_dir d = co->dir;
    if (r == R_REPLY) {
        co->state = CO_NONE;
        pf_filter_local_reply(fc, idx, co->reply_body, co->reply_len);
        return;
    }
    if (r == R_ERROR) {
        pf_filter_local_error(fc, idx, d, SCRIPT_ERROR_MSG);
        return;
    }
    if (r == R_CONTINUE || co->state == CO_WAIT_CHUNK) {
        co->hdrs_passed = true;
        pf_filter_continue(fc, d, idx);
    }
}

static pf_filter_status co_start(lua_fs *fs, pf_filter_dir d)
{
    lua_co *co = &fs->co[d];
    lua_State *L = fs->lw->L;
    co->fs = fs;
    co->dir = d;
    if (fs->fn_ref[d] == LUA_NOREF) {
        co->hdrs_passed = true;     /* the script does not define this direction */
        return PF_FILTER_CONTINUE;
    }
    /* close to the limit: collect first; still there -> skip the script
     * (an allocation failure outside a protected call would abort) */
    if (fs->lw->mem > fs->lw->limit / 10 * 9) {
        lua_gc(L, LUA_GCCOLLECT, 0);
        if (fs->lw->mem > fs->lw->limit / 10 * 9) {
            script_error(co, "lua state memory limit reached");
            co->hdrs_passed = true;
            return PF_FILTER_CONTINUE;
        }
    }
    lua_slot *sl = slot_get(fs->lw);
    if (!sl) {
        co->hdrs_passed = true;
        return PF_FILTER_CONTINUE;
    }
    sl->co = co;
    co->slot = sl;
    co->th = sl->th;
    lua_rawgeti(co->th, LUA_REGISTRYINDEX, fs->fn_ref[d]);
    pf_lua_push_handle(co->th, co);
    return settle(co, co_run(co, 1));
}

/* ---- httpCall ---- */

static void on_http_done(void *arg, const pf_async_response *r)
{
    lua_co *co = arg;
    co->call = NULL;
    lua_State *th = co->th;
    lua_newtable(th);
    int status = r->status ? r->status : 503;
    char st[8];
    snprintf(st, sizeof st, "%d", status);
    lua_pushstring(th, st);
    lua_setfield(th, -2, ":status");
    for (size_t i = 0; i < r->n_hdrs; i++) {
        lua_pushlstring(th, r->hdrs[i].name.p, r->hdrs[i].name.n);
        lua_pushlstring(th, r->hdrs[i].value.p, r->hdrs[i].value.n);
        lua_settable(th, -3);
    }
    if (!r->status)
        lua_pushliteral(th, "upstream failure");
    else if (r->body_len)
        lua_pushlstring(th, r->body, r->body_len);
    else
        lua_pushnil(th);
    settle_async(co, co_run(co, 2));
}

static int header_value(lua_State *L, int idx, pf_stream *s, pf_str *out)
{
    size_t n;
    const char *v = lua_tolstring(L, idx, &n);
    if (!v)
        return -1;
    return pf_arena_dup(&s->arena, out, v, n);
}

int pf_lua_http_call(lua_State *L, lua_co *co)
{
    pf_stream *ps = pf_filter_stream(co->fs->fc);
    pf_worker *w = ps->w;
    const char *cluster = luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    size_t blen = 0;
    const char *body = lua_isnoneornil(L, 4) ? NULL : luaL_checklstring(L, 4, &blen);
    lua_Integer timeout = luaL_checkinteger(L, 5);
    if (timeout < 0)
        return luaL_error(L, "http call timeout must be >= 0");
    bool async = lua_toboolean(L, 6);
    if (co->call)
        return luaL_error(L, "http call already in progress");
    ptrdiff_t ci = cfg_cluster_index(w->cfg, cluster, strlen(cluster));
    if (ci < 0)
        return luaL_error(L, "http call cluster invalid. Must be configured");
    pf_async_call *c = pf_async_call_new(w, ps->listener, (size_t)ci);
    if (!c)
        return luaL_error(L, "out of memory");
    pf_stream *s = pf_async_call_stream(c);
    lua_pushnil(L);
    while (lua_next(L, 3)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 1);
            continue;
        }
        size_t kn;
        const char *k = lua_tolstring(L, -2, &kn);
        pf_str v = { 0 };
        if (lua_istable(L, -1)) {
            /* several values for one header */
            for (int i = 1;; i++) {
                lua_rawgeti(L, -1, i);
                if (lua_isnil(L, -1)) {
                    lua_pop(L, 1);
                    break;
                }
                pf_str name, val;
                if (pf_arena_dup(&s->arena, &name, k, kn) == 0 &&
                    header_value(L, -1, s, &val) == 0) {
                    for (size_t j = 0; j < kn; j++)
                        ((char *)name.p)[j] = (char)tolower((unsigned char)name.p[j]);
                    pf_hdrs_add(&s->req_hdrs, &s->arena, name, val);
                }
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
            continue;
        }
        if (header_value(L, -1, s, &v) != 0) {
            lua_pop(L, 1);
            continue;
        }
        if (strcmp(k, ":method") == 0)
            s->method = v;
        else if (strcmp(k, ":path") == 0)
            s->path = v;
        else if (strcmp(k, ":authority") == 0)
            s->authority = v;
        else if (strcmp(k, ":scheme") == 0)
            s->scheme = v;
        else if (k[0] != ':') {
            pf_str name;
            if (pf_arena_dup(&s->arena, &name, k, kn) == 0) {
                for (size_t j = 0; j < kn; j++)
                    ((char *)name.p)[j] = (char)tolower((unsigned char)name.p[j]);
                pf_hdrs_add(&s->req_hdrs, &s->arena, name, v);
            }
        }
        lua_pop(L, 1);
    }
    if (!s->method.n || !s->path.n || !s->authority.n) {
        pf_async_call_cancel(c);
        return luaL_error(L, "http call headers must include ':path', ':method', and ':authority'");
    }
    s->is_head = pf_str_eq_lit(s->method, "HEAD");
    /* :authority is the host: the upstream codecs write it (Host for
     * HTTP/1.1), so a "host" entry would send it twice. */
    pf_hdrs_remove_lit(&s->req_hdrs, "host");
    if (async) {
        pf_async_call_send(c, body, blen, (uint64_t)timeout, NULL, NULL);
        return 0;
    }
    co->call = c;
    co->state = CO_WAIT_HTTP;
    pf_async_call_send(c, body, blen, (uint64_t)timeout, on_http_done, co);
    return lua_yield(L, 0);
}

/* ---- filter ops ---- */

static void *lua_create(pf_filter_chain *fc, size_t index, const cfg_http_filter *cfg)
{
    pf_stream *s = pf_filter_stream(fc);
    pf_lua_worker *lw = s->w->lua;
    if (!lw || !cfg->lua)
        return NULL;
    const cfg_lua_script *sc = cfg->lua->default_script;
    const cfg_per_filter *pf = cfg_per_filter_find(s->route, s->vhost, index);
    if (pf) {
        if (pf->disabled)
            return NULL;
        if (pf->source_name || pf->script)
            sc = pf->script;        /* NULL: a name not in source_codes */
    }
    if (!sc)
        return NULL;
    const struct lua_script_rt *rt = pf_lua_script_rt(lw, sc);
    if (!rt || rt->env_ref == LUA_NOREF)
        return NULL;
    lua_fs *fs = pf_arena_alloc(&s->arena, sizeof *fs);
    if (!fs)
        return NULL;
    memset(fs, 0, sizeof *fs);
    fs->fc = fc;
    fs->index = index;
    fs->cfg = cfg;
    fs->lw = lw;
    fs->fn_ref = rt->fn_ref;
    for (int d = 0; d < 2; d++) {
        fs->co[d].fs = fs;
        fs->co[d].dir = (pf_filter_dir)d;
    }
    return fs;
}

static void lua_destroy(void *f)
{
    lua_fs *fs = f;
    for (int d = 0; d < 2; d++) {
        co_kill(&fs->co[d]);
        free(fs->co[d].reply_body);
    }
    if (fs->dynmeta)
        pf_lua_dynmeta_clear(fs->lw, pf_filter_stream(fs->fc));
    /* fs lives in the stream's arena */
}

static pf_filter_status on_headers(lua_fs *fs, pf_filter_dir d, bool end)
{
    if (end)
        fs->end_seen[d] = true;
    return co_start(fs, d);
}

static pf_filter_status on_data(lua_fs *fs, pf_filter_dir d, const char *p, size_t n, bool end)
{
    lua_co *co = &fs->co[d];
    if (end)
        fs->end_seen[d] = true;
    switch (co->state) {
    case CO_WAIT_BODY:
        if (!end)
            return PF_FILTER_STOP;
        pf_lua_push_body(co->th, co);
        return settle(co, co_run(co, 1));
    case CO_WAIT_CHUNK:
        if (!n && end) {
            lua_pushnil(co->th);
            return settle(co, co_run(co, 1));
        }
        pf_lua_push_chunk(co->th, co, p, n);
        return settle(co, co_run(co, 1));
    case CO_WAIT_TRAILERS:
        if (!end)
            return PF_FILTER_STOP;
        lua_pushnil(co->th);
        return settle(co, co_run(co, 1));
    case CO_WAIT_HTTP:
    case CO_RUNNING:
    case CO_RESPOND:
        return PF_FILTER_STOP;
    case CO_NONE:
        break;
    }
    return PF_FILTER_CONTINUE;
}

static pf_filter_status on_trailers(lua_fs *fs, pf_filter_dir d)
{
    lua_co *co = &fs->co[d];
    fs->end_seen[d] = fs->trailers_seen[d] = true;
    switch (co->state) {
    case CO_WAIT_BODY:
        pf_lua_push_body(co->th, co);
        return settle(co, co_run(co, 1));
    case CO_WAIT_CHUNK:
        lua_pushnil(co->th);
        return settle(co, co_run(co, 1));
    case CO_WAIT_TRAILERS:
        push_trailers_or_nil(co);
        return settle(co, co_run(co, 1));
    case CO_WAIT_HTTP:
    case CO_RUNNING:
    case CO_RESPOND:
        return PF_FILTER_STOP;
    case CO_NONE:
        break;
    }
    return PF_FILTER_CONTINUE;
}

static pf_filter_status dec_headers(void *f, bool end) { return on_headers(f, PF_DECODE, end); }
static pf_filter_status enc_headers(void *f, bool end) { return on_headers(f, PF_ENCODE, end); }
static pf_filter_status dec_data(void *f, const char *p, size_t n, bool end) { return on_data(f, PF_DECODE, p, n, end); }
static pf_filter_status enc_data(void *f, const char *p, size_t n, bool end) { return on_data(f, PF_ENCODE, p, n, end); }
static pf_filter_status dec_trailers(void *f) { return on_trailers(f, PF_DECODE); }
static pf_filter_status enc_trailers(void *f) { return on_trailers(f, PF_ENCODE); }

const pf_http_filter_ops pf_lua_filter_ops = {
    .name = "envoy.filters.http.lua",
    .create = lua_create,
    .decode_headers = dec_headers,
    .decode_data = dec_data,
    .decode_trailers = dec_trailers,
    .encode_headers = enc_headers,
    .encode_data = enc_data,
    .encode_trailers = enc_trailers,
    .destroy = lua_destroy,
};
