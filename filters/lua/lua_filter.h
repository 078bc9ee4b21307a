/* envoy.filters.http.lua: the runtime (filters/lua/lua_filter.c) and the
 * stream handle API (filters/lua/lua_api.c).
 *
 * Each worker owns one LuaJIT state (pf_lua_worker), created at worker start
 * with every configured script loaded once, each in its own environment
 * (globals of one script never clash with another's).  Memory is bounded by
 * a counting allocator (PF_LUA_MEM_LIMIT); the total is reported in the
 * lua.memory_allocated_bytes gauge.  Per stream and direction,
 * envoy_on_request / envoy_on_response run as a coroutine that yields while
 * it waits for the body, trailers or an httpCall.
 *
 * Per-request cost is kept low (the filter's budget is a few percent of a
 * proxied request): coroutines come from a per-worker pool of slots whose
 * Lua threads are reused when their last run ended normally; the script's
 * entry functions are looked up once at load; objects handed to the script
 * carry no finalizer and check liveness by generation (lua_slot.gen), so a
 * request allocates only its few small userdata and nothing with malloc. */
#ifndef PF_LUA_FILTER_H
#define PF_LUA_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "filters/filter.h"

#ifndef PF_LUA_MEM_LIMIT
#define PF_LUA_MEM_LIMIT (256u << 20)
#endif

struct pf_worker;
struct pf_async_call;

int pf_lua_worker_init(struct pf_worker *w);
void pf_lua_worker_destroy(struct pf_worker *w);

/* ---- shared between lua_filter.c and lua_api.c ---- */

/* Metatables of the objects handed to scripts (registry refs in
 * pf_lua_worker.mt). */
enum lua_mt {
    LMT_HANDLE, LMT_HEADERS, LMT_BUFFER, LMT_CHUNK, LMT_INFO, LMT_DYNMETA, LMT_CONN, LMT_SSL,
    LMT_META, LMT_ROUTE_HANDLE, LMT_ROUTE_HEADERS, LMT_COUNT
};

/* A script's entry functions, looked up once at load. */
enum lua_fn { LUA_FN_REQUEST, LUA_FN_RESPONSE, LUA_FN_ROUTE, LUA_FN_COUNT };

struct lua_co;

/* A coroutine slot.  Slots are allocated once and live as long as the
 * worker's Lua state (objects the script keeps point at them); between runs
 * they sit on the worker's free list, keeping their Lua thread for the next
 * run when the last one ended normally (a thread that errored or was
 * abandoned while suspended cannot be resumed again, and is dropped). */
typedef struct lua_slot {
    lua_State *th;                  /* NULL: none kept */
    int th_ref;                     /* registry ref keeping th alive */
    uint32_t gen;                   /* bumped when a run ends: older objects are dead */
    struct lua_co *co;              /* the run in progress, or NULL */
    struct lua_slot *next;          /* free list */
    struct lua_slot *all_next;      /* every slot, for freeing with the state */
} lua_slot;

typedef struct pf_lua_worker {
    struct pf_worker *w;
    lua_State *L;
    size_t mem, limit;
    int64_t mem_reported;
    struct lua_script_rt {
        const cfg_lua_script *script;
        int env_ref;                /* LUA_NOREF: failed to load */
        int fn_ref[LUA_FN_COUNT];   /* by enum lua_fn; LUA_NOREF: not defined */
    } *scripts;
    size_t n_scripts;
    int mt[LMT_COUNT];              /* registry refs of the object metatables */
    int dynmeta_ref;                /* registry ref of the dynamic metadata store */
    lua_slot *free_slots, *all_slots;
    unsigned n_free_threads;        /* threads kept on the free list (capped) */
    /* the cluster specifier call in progress (route handle liveness) */
    struct pf_stream *route_stream; /* NULL: none */
    uint32_t route_gen;             /* bumped after each call */
    uint64_t last_err_ms;           /* error log throttling */
    unsigned err_suppressed;
} pf_lua_worker;

enum lua_co_state {
    CO_NONE,                        /* never started / finished */
    CO_RUNNING,
    CO_WAIT_BODY,
    CO_WAIT_CHUNK,
    CO_WAIT_TRAILERS,
    CO_WAIT_HTTP,
    CO_RESPOND,                     /* respond() called: reply, then finish */
};

struct lua_fs;

/* One coroutine: envoy_on_request or envoy_on_response of a stream. */
typedef struct lua_co {
    struct lua_fs *fs;
    pf_filter_dir dir;
    lua_State *th;                  /* slot->th while running */
    lua_slot *slot;                 /* NULL: not running */
    enum lua_co_state state;
    bool hdrs_passed;               /* headers went on to the next filter */
    bool always_wrap;               /* body(true): an empty body is a buffer, not nil */
    struct pf_async_call *call;     /* httpCall in flight */
    char *reply_body;               /* respond(): malloc'd */
    size_t reply_len;
} lua_co;

typedef struct lua_fs {
    pf_filter_chain *fc;
    size_t index;
    const cfg_http_filter *cfg;
    pf_lua_worker *lw;
    const int *fn_ref;              /* the script's entry functions, by direction */
    lua_co co[2];
    bool end_seen[2], trailers_seen[2];
    bool dynmeta;                   /* a dynamic metadata entry exists for the stream */
} lua_fs;

/* lua_filter.c: the loaded script sc (NULL: not loaded) */
const struct lua_script_rt *pf_lua_script_rt(pf_lua_worker *lw, const cfg_lua_script *sc);
/* Logs a script error, at most once per second per worker (the rest are
 * counted into the next line). kind/name: "filter" and its name, ... */
void pf_lua_log_error(pf_lua_worker *lw, const char *kind, const char *name, const char *msg);

/* lua_cluster_specifier.c: the route handle classes */
void pf_lua_route_api_register(pf_lua_worker *lw);

/* lua_api.c */
void pf_lua_api_register(pf_lua_worker *lw);
struct luaL_Reg;
/* Creates class k's metatable (registry ref in lw->mt[k]); methods, __pairs
 * and __len are closures over it, for pf_lua_self(). */
void pf_lua_new_class(pf_lua_worker *lw, enum lua_mt k, const struct luaL_Reg *methods,
                      lua_CFunction pairs, lua_CFunction len);
/* In a method of a class: self (argument 1), or a Lua error when it is not
 * an object of the method's class. */
void *pf_lua_self(lua_State *L);
/* Pushes a new stream handle for co (a userdata bound to co's slot and run). */
void pf_lua_push_handle(lua_State *L, lua_co *co);
/* Pushes a header map object (which: 0 headers, 1 trailers). */
void pf_lua_push_headers(lua_State *L, lua_co *co, int which);
/* Pushes a buffer object over the direction's buffered body. */
void pf_lua_push_body(lua_State *L, lua_co *co);
/* Pushes a chunk buffer holding a copy of p/n. */
void pf_lua_push_chunk(lua_State *L, lua_co *co, const char *p, size_t n);
/* Pushes header k of s (direction d; which: 0 headers, 1 trailers) the way
 * headers():get() answers: values joined with ',', nil when absent. */
int pf_lua_push_header(lua_State *L, pf_stream *s, pf_filter_dir d, int which, const char *k,
                       size_t kn);
/* Drops the dynamic metadata table of stream key. */
void pf_lua_dynmeta_clear(pf_lua_worker *lw, const void *key);

/* lua_pilotfish.c: pushes the handle:pilotfish() object (a pilotfish
 * extension, not Envoy API: draining(), clusterHealthy(name)). */
int pf_lua_push_pilotfish(lua_State *L, struct pf_worker *w);

/* lua_filter.c: httpCall plumbing for lua_api.c */
int pf_lua_http_call(lua_State *L, lua_co *co);

#endif
