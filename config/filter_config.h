/* Typed HTTP filter configuration: the connection manager's http_filters
 * list (cfg_hcm.filters) and the per-route typed_per_filter_config entries
 * (cfg_route.per_filter, cfg_virtual_host.per_filter).
 *
 * Built by config/config_http_filters.c, owned by the cfg_bootstrap (freed
 * with cfg_http_filters_free / cfg_per_filter_free), immutable after load.
 * The Lua runtime lives in filters/lua/; this header is all it reads. */
#ifndef PF_FILTER_CONFIG_H
#define PF_FILTER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum cfg_filter_kind {
    CFG_FILTER_ROUTER,              /* envoy.filters.http.router: always the last one */
    CFG_FILTER_LUA,                 /* envoy.filters.http.lua */
} cfg_filter_kind;

/* One Lua chunk: the default source code, a named source_codes entry or a
 * per-route inline source_code.  Compiled (and run once) at load in a
 * throwaway state, so syntax and load errors are config errors. */
typedef struct cfg_lua_script {
    char *name;                     /* "GLOBAL", the source_codes key, or "<route>" */
    char *code;                     /* owned, NUL-terminated */
    size_t len;
    char *chunkname;                /* "=<filter>:<name>", for Lua messages */
} cfg_lua_script;

/* envoy.extensions.filters.http.lua.v3.Lua */
typedef struct cfg_lua {
    cfg_lua_script *default_script; /* inline_code or default_source_code; owned; may be NULL */
    cfg_lua_script **sources;       /* source_codes, sorted as written; owned */
    size_t n_sources;
    char *stat_prefix;              /* Lua.stat_prefix, or NULL */
    char *dir;                      /* directory of the config file (require path); owned */
} cfg_lua;

typedef struct cfg_http_filter {
    char *name;                     /* the filter's name in http_filters (per-route key) */
    cfg_filter_kind kind;
    cfg_lua *lua;                   /* CFG_FILTER_LUA; owned */
} cfg_http_filter;

/* One typed_per_filter_config entry (route or virtual host level). */
typedef struct cfg_per_filter {
    char *filter_name;              /* the key: a name in http_filters */
    bool disabled;                  /* LuaPerRoute.disabled */
    char *source_name;              /* LuaPerRoute.name (a source_codes key), or NULL */
    cfg_lua_script *script;         /* LuaPerRoute.source_code, or the resolved source_codes
                                       entry (then not owned: see owns_script) */
    bool owns_script;
    long filter_index;              /* index in cfg_hcm.filters; -1: no such filter */
} cfg_per_filter;

void cfg_lua_script_free(cfg_lua_script *s);
void cfg_http_filters_free(struct cfg_http_filter *f, size_t n);
void cfg_per_filter_free(cfg_per_filter *pf, size_t n);

/* The per-route entry of filter index fi for a route (route level wins over
 * its virtual host), or NULL. */
struct cfg_route;
struct cfg_virtual_host;
const cfg_per_filter *cfg_per_filter_find(const struct cfg_route *r,
                                          const struct cfg_virtual_host *vh, size_t fi);

/* Compiles code and runs it once in a fresh state with package.path from
 * dir; fills err with the Lua message on failure.  Returns 0 or -EINVAL. */
int cfg_lua_check(const char *code, size_t len, const char *chunkname, const char *dir,
                  char *err, size_t errlen);

/* package.path for a Lua state whose config came from dir (may be NULL):
 * dir/?.lua;dir/?/init.lua;<shipped library dirs>.  Writes into buf. */
void cfg_lua_package_path(const char *dir, char *buf, size_t len);

/* ---- loader entry points (config/config_http_filters.c) ---- */
struct cfg_ctx;
struct yn_node;
struct cfg_hcm;
/* hcm.http_filters (path of the HCM typed_config pushed): fills h->filters,
 * then resolves the per-route entries of h->route_config against them. */
int cfg_parse_http_filters(struct cfg_ctx *c, const struct yn_node *hcm, struct cfg_hcm *h);
/* Reads a DataSource (inline_string | filename) at n into a new script
 * named `name` (chunkname "=<filter>:<name>"), compiled and run once with
 * package.path from dir: a Lua error is a config error at n. */
int cfg_lua_parse_source(struct cfg_ctx *c, const struct yn_node *n, const char *filter,
                         const char *name, const char *dir, cfg_lua_script **out);
/* The directory of a config file (for require()); malloc'd, NULL on ENOMEM. */
char *cfg_lua_dir_of(const char *file);
/* map.typed_per_filter_config of a route or virtual host (absent: *n = 0). */
int cfg_parse_per_filter_config(struct cfg_ctx *c, const struct yn_node *map,
                                cfg_per_filter **out, size_t *n);

#endif
