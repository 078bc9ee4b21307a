/* http_filters -> cfg_http_filter[] and typed_per_filter_config ->
 * cfg_per_filter[] (config/filter_config.h).
 *
 * Supported filters: envoy.filters.http.lua (Lua: inline_code,
 * default_source_code, source_codes, stat_prefix) and the terminal
 * envoy.filters.http.router.  Lua code is compiled and run once at load in a
 * throwaway LuaJIT state, so a syntax error or a failing require() is a
 * config error naming the Lua message and line.  Per-route LuaPerRoute
 * entries (disabled / name / source_code) are parsed with the route config
 * (before http_filters) and resolved against the filter list afterwards. */
#include "config/config_internal.h"
#include "config/filter_config.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#define ROUTER_TYPE "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
#define LUA_TYPE "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"
#define LUA_PER_ROUTE_TYPE \
    "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute"
#define FILTER_CONFIG_TYPE "type.googleapis.com/envoy.config.route.v3.FilterConfig"

#ifndef PF_LUA_DIR
#define PF_LUA_DIR ""
#endif
#ifndef PF_LUA_INSTALL_DIR
#define PF_LUA_INSTALL_DIR "/usr/share/pilotfish/lua"
#endif

#define PF_BUFFER_LIMIT_DEFAULT (1024u * 1024u)

static const char *const hf_handled[] = {"name", "typed_config", NULL};
static const char *const hf_unsupported[] = {"config_discovery", "is_optional", "disabled",
                                             NULL};
static const char *const router_handled[] = {"@type", NULL};
static const char *const router_unsupported[] = {
    "dynamic_stats", "start_child_span", "upstream_log", "upstream_log_options",
    "suppress_envoy_headers", "strict_check_headers", "respect_expected_rq_timeout",
    "suppress_grpc_request_failure_code_stats", "upstream_http_filters", NULL};
static const char *const lua_handled[] = {"@type", "inline_code", "default_source_code",
                                          "source_codes", "stat_prefix", NULL};
static const char *const lua_unsupported[] = {"clear_route_cache", NULL};
static const char *const lpr_handled[] = {"@type", "disabled", "name", "source_code", NULL};
static const char *const fcw_handled[] = {"@type", "config", "is_optional", "disabled", NULL};
static const char *const ds_handled[] = {"inline_string", "filename", NULL};
static const char *const ds_unsupported[] = {"inline_bytes", "environment_variable",
                                             "watched_directory", NULL};

/* ---- freeing ---- */

void cfg_lua_script_free(cfg_lua_script *s)
{
    if (!s)
        return;
    free(s->name);
    free(s->code);
    free(s->chunkname);
    free(s);
}

static void lua_cfg_free(cfg_lua *l)
{
    if (!l)
        return;
    cfg_lua_script_free(l->default_script);
    for (size_t i = 0; i < l->n_sources; i++)
        cfg_lua_script_free(l->sources[i]);
    free(l->sources);
    free(l->stat_prefix);
    free(l->dir);
    free(l);
}

void cfg_http_filters_free(cfg_http_filter *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(f[i].name);
        lua_cfg_free(f[i].lua);
    }
    free(f);
}

void cfg_per_filter_free(cfg_per_filter *pf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(pf[i].filter_name);
        free(pf[i].source_name);
        if (pf[i].owns_script)
            cfg_lua_script_free(pf[i].script);
    }
    free(pf);
}

const cfg_per_filter *cfg_per_filter_find(const cfg_route *r, const cfg_virtual_host *vh,
                                          size_t fi)
{
    if (r)
        for (size_t i = 0; i < r->n_per_filter; i++)
            if (r->per_filter[i].filter_index == (long)fi)
                return &r->per_filter[i];
    if (vh)
        for (size_t i = 0; i < vh->n_per_filter; i++)
            if (vh->per_filter[i].filter_index == (long)fi)
                return &vh->per_filter[i];
    return NULL;
}

/* ---- Lua checking ---- */

void cfg_lua_package_path(const char *dir, char *buf, size_t len)
{
    const char *d = dir && *dir ? dir : ".";
    int n = snprintf(buf, len, "%s/?.lua;%s/?/init.lua;", d, d);
    if (n < 0 || (size_t)n >= len)
        return;
    if (PF_LUA_DIR[0]) {
        int k = snprintf(buf + n, len - (size_t)n, "%s/?.lua;%s/?/init.lua;", PF_LUA_DIR,
                         PF_LUA_DIR);
        if (k < 0 || (size_t)k >= len - (size_t)n)
            return;
        n += k;
    }
    snprintf(buf + n, len - (size_t)n, "%s/?.lua;%s/?/init.lua", PF_LUA_INSTALL_DIR,
             PF_LUA_INSTALL_DIR);
}

int cfg_lua_check(const char *code, size_t len, const char *chunkname, const char *dir,
                  char *err, size_t errlen)
{
    lua_State *L = luaL_newstate();
    if (!L) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    luaL_openlibs(L);
    char path[4096];
    cfg_lua_package_path(dir, path, sizeof path);
    lua_getglobal(L, "package");
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    int rc = 0;
    if (luaL_loadbuffer(L, code, len, chunkname) != 0) {
        snprintf(err, errlen, "lua: %s", lua_tostring(L, -1));
        rc = -EINVAL;
    } else if (lua_pcall(L, 0, 0, 0) != 0) {
        snprintf(err, errlen, "lua: script load error: %s", lua_tostring(L, -1));
        rc = -EINVAL;
    }
    lua_close(L);
    return rc;
}

int cfg_lua_parse_source(cfg_ctx *c, const yn_node *n, const char *filter, const char *name,
                         const char *dir, cfg_lua_script **out)
{
    static const cfg_fields f = {ds_handled, NULL, ds_unsupported};
    int rc;
    if ((rc = cfg_check_map(c, n, &f)) != 0)
        return rc;
    const yn_node *is = cfg_get(n, "inline_string"), *fn = cfg_get(n, "filename");
    if (is && fn)
        return cfg_err(c, n, "only one of 'inline_string' and 'filename' may be set");
    if (!is && !fn)
        return cfg_err(c, n, "missing required field: one of 'inline_string', 'filename'");
    cfg_lua_script *s = calloc(1, sizeof *s);
    if (!s)
        return cfg_err(c, n, "out of memory");
    size_t m = cfg_push(c, is ? "inline_string" : "filename");
    const yn_node *v = is ? is : fn;
    if (v->kind != YN_SCALAR) {
        rc = cfg_err(c, v, "expected a string");
        goto out;
    }
    if (is) {
        if (!(s->code = malloc(v->len + 1))) {
            rc = cfg_err(c, v, "out of memory");
            goto out;
        }
        memcpy(s->code, v->str, v->len + 1);
        s->len = v->len;
    } else {
        FILE *fp = fopen(v->str, "rb");
        if (!fp) {
            rc = cfg_err(c, v, "cannot open '%s': %s", v->str, strerror(errno));
            goto out;
        }
        size_t cap = 4096, len = 0;
        char *b = malloc(cap);
        for (size_t r; b && (r = fread(b + len, 1, cap - len - 1, fp)) > 0;) {
            len += r;
            if (cap - len - 1 == 0) {
                char *nb = cap < (16u << 20) ? realloc(b, cap * 2) : NULL;
                if (!nb) {
                    free(b);
                    b = NULL;
                    break;
                }
                b = nb;
                cap *= 2;
            }
        }
        fclose(fp);
        if (!b) {
            rc = cfg_err(c, v, "'%s': out of memory or file too large", v->str);
            goto out;
        }
        b[len] = '\0';
        s->code = b;
        s->len = len;
    }
    size_t cl = strlen(filter) + strlen(name) + 3;
    if (!(s->name = strdup(name)) || !(s->chunkname = malloc(cl))) {
        rc = cfg_err(c, v, "out of memory");
        goto out;
    }
    snprintf(s->chunkname, cl, "=%s:%s", filter, name);
    char lerr[512];
    if (cfg_lua_check(s->code, s->len, s->chunkname, dir, lerr, sizeof lerr) != 0)
        rc = cfg_err(c, v, "%s", lerr);
out:
    cfg_pop(c, m);
    if (rc)
        cfg_lua_script_free(s);
    else
        *out = s;
    return rc;
}

/* typed_config["@type"] must be one of the given; returns its index. */
static int type_of(cfg_ctx *c, const yn_node *tc, const char *const *types, int *out)
{
    const yn_node *t = cfg_get(tc, "@type");
    if (!t)
        return cfg_err(c, tc, "missing required field '@type'");
    size_t m = cfg_push(c, "@type");
    int rc = -EINVAL;
    if (t->kind != YN_SCALAR) {
        rc = cfg_err(c, t, "expected a string");
    } else {
        for (int i = 0; types[i]; i++)
            if (strcmp(t->str, types[i]) == 0) {
                *out = i;
                rc = 0;
            }
        if (rc) {
            char sup[512];
            size_t k = 0;
            for (int i = 0; types[i] && k < sizeof sup; i++)
                k += (size_t)snprintf(sup + k, sizeof sup - k, "%s%s", i ? ", " : "", types[i]);
            rc = cfg_err(c, t, "not supported yet: %s (supported: %s)", t->str, sup);
        }
    }
    cfg_pop(c, m);
    return rc;
}

char *cfg_lua_dir_of(const char *file)
{
    if (!file || !strchr(file, '/'))
        return strdup(".");
    char *cp = strdup(file);
    if (!cp)
        return NULL;
    char *d = strdup(dirname(cp));
    free(cp);
    return d;
}

static int parse_lua(cfg_ctx *c, const yn_node *tc, const char *fname, cfg_lua **out)
{
    static const cfg_fields f = {lua_handled, NULL, lua_unsupported};
    int rc;
    cfg_lua *l = calloc(1, sizeof *l);
    if (!l)
        return cfg_err(c, tc, "out of memory");
    *out = l;
    if ((rc = cfg_check_map(c, tc, &f)) != 0 ||
        (rc = cfg_get_str(c, tc, "stat_prefix", false, &l->stat_prefix)) != 0)
        return rc;
    if (!(l->dir = cfg_lua_dir_of(tc->file)))
        return cfg_err(c, tc, "out of memory");
    const yn_node *ic = cfg_get(tc, "inline_code"), *dsc = cfg_get(tc, "default_source_code");
    if (ic && dsc)
        return cfg_err(c, cfg_key_node(tc, "default_source_code"),
                       "only one of 'inline_code' and 'default_source_code' may be set");
    if (ic) {
        size_t m = cfg_push(c, "inline_code");
        if (ic->kind != YN_SCALAR) {
            rc = cfg_err(c, ic, "expected a string");
        } else if (ic->len) {
            cfg_lua_script *s = calloc(1, sizeof *s);
            size_t cl = strlen(fname) + 9;
            if (!s || !(s->code = malloc(ic->len + 1)) || !(s->name = strdup("GLOBAL")) ||
                !(s->chunkname = malloc(cl))) {
                cfg_lua_script_free(s);
                rc = cfg_err(c, ic, "out of memory");
            } else {
                memcpy(s->code, ic->str, ic->len + 1);
                s->len = ic->len;
                snprintf(s->chunkname, cl, "=%s:GLOBAL", fname);
                l->default_script = s;
                char lerr[512];
                if (cfg_lua_check(s->code, s->len, s->chunkname, l->dir, lerr, sizeof lerr))
                    rc = cfg_err(c, ic, "%s", lerr);
            }
        }
        cfg_pop(c, m);
    } else if (dsc) {
        size_t m = cfg_push(c, "default_source_code");
        rc = cfg_lua_parse_source(c, dsc, fname, "GLOBAL", l->dir, &l->default_script);
        cfg_pop(c, m);
    }
    if (rc)
        return rc;
    const yn_node *sc = cfg_get(tc, "source_codes");
    if (!sc)
        return 0;
    size_t m = cfg_push(c, "source_codes");
    if (sc->kind != YN_MAP) {
        rc = cfg_err(c, sc, "expected a map");
    } else if (sc->n && !(l->sources = calloc(sc->n, sizeof *l->sources))) {
        rc = cfg_err(c, sc, "out of memory");
    }
    for (size_t i = 0; !rc && sc->kind == YN_MAP && i < sc->n; i++) {
        size_t mi = cfg_push(c, sc->keys[i]->str);
        rc = cfg_lua_parse_source(c, sc->items[i], fname, sc->keys[i]->str, l->dir,
                               &l->sources[l->n_sources]);
        if (!rc)
            l->n_sources++;
        cfg_pop(c, mi);
    }
    cfg_pop(c, m);
    return rc;
}

/* ---- per-route ---- */

static int parse_lua_per_route(cfg_ctx *c, const yn_node *v, const char *key,
                               cfg_per_filter *pf)
{
    static const cfg_fields f = {lpr_handled, NULL, NULL};
    int rc;
    if ((rc = cfg_check_map(c, v, &f)) != 0)
        return rc;
    static const char *const one_of[] = {"disabled", "name", "source_code"};
    int found;
    if ((rc = cfg_one_of(c, v, one_of, 3, true, &found)) != 0)
        return rc;
    if (found == 0) {
        if ((rc = cfg_get_bool(c, v, "disabled", &pf->disabled)) != 0)
            return rc;
        if (!pf->disabled) {
            size_t m = cfg_push(c, "disabled");
            rc = cfg_err(c, cfg_get(v, "disabled"), "must be true");
            cfg_pop(c, m);
        }
        return rc;
    }
    if (found == 1) {
        if ((rc = cfg_get_str(c, v, "name", true, &pf->source_name)) != 0)
            return rc;
        if (!pf->source_name[0]) {
            size_t m = cfg_push(c, "name");
            rc = cfg_err(c, cfg_get(v, "name"), "must not be empty");
            cfg_pop(c, m);
        }
        return rc;
    }
    char *dir = cfg_lua_dir_of(v->file);
    if (!dir)
        return cfg_err(c, v, "out of memory");
    size_t m = cfg_push(c, "source_code");
    rc = cfg_lua_parse_source(c, cfg_get(v, "source_code"), key, "route", dir, &pf->script);
    cfg_pop(c, m);
    free(dir);
    pf->owns_script = pf->script != NULL;
    return rc;
}

int cfg_parse_per_filter_config(cfg_ctx *c, const yn_node *map, cfg_per_filter **out,
                                size_t *n)
{
    const yn_node *t = cfg_get(map, "typed_per_filter_config");
    *out = NULL;
    *n = 0;
    if (!t)
        return 0;
    size_t m = cfg_push(c, "typed_per_filter_config");
    int rc = 0;
    if (t->kind != YN_MAP)
        rc = cfg_err(c, t, "expected a map");
    else if (t->n && !(*out = calloc(t->n, sizeof **out)))
        rc = cfg_err(c, t, "out of memory");
    for (size_t i = 0; !rc && i < t->n; i++) {
        const char *key = t->keys[i]->str;
        const yn_node *v = t->items[i];
        size_t mi = cfg_push(c, key);
        cfg_per_filter *pf = &(*out)[*n];
        pf->filter_index = -1;
        if (!(pf->filter_name = strdup(key))) {
            rc = cfg_err(c, v, "out of memory");
        } else {
            (*n)++;
            static const char *const types[] = {LUA_PER_ROUTE_TYPE, FILTER_CONFIG_TYPE, NULL};
            int ty = 0;
            if (v->kind != YN_MAP)
                rc = cfg_err(c, v, "expected a map");
            else if ((rc = type_of(c, v, types, &ty)) == 0) {
                if (ty == 0) {
                    rc = parse_lua_per_route(c, v, key, pf);
                } else {
                    /* envoy.config.route.v3.FilterConfig: {disabled: true} turns the
                     * filter off here; a wrapped LuaPerRoute is read as such. */
                    static const cfg_fields ff = {fcw_handled, NULL, NULL};
                    bool dis = false, opt = false;
                    if ((rc = cfg_check_map(c, v, &ff)) == 0 &&
                        (rc = cfg_get_bool(c, v, "disabled", &dis)) == 0 &&
                        (rc = cfg_get_bool(c, v, "is_optional", &opt)) == 0) {
                        const yn_node *inner = cfg_get(v, "config");
                        pf->disabled = dis;
                        if (inner && !dis) {
                            size_t mc = cfg_push(c, "config");
                            static const char *const lt[] = {LUA_PER_ROUTE_TYPE, NULL};
                            if (inner->kind != YN_MAP)
                                rc = cfg_err(c, inner, "expected a map");
                            else if ((rc = type_of(c, inner, lt, &ty)) == 0)
                                rc = parse_lua_per_route(c, inner, key, pf);
                            cfg_pop(c, mc);
                        }
                    }
                }
            }
        }
        cfg_pop(c, mi);
    }
    cfg_pop(c, m);
    return rc;
}

/* Points the per-route entries of one level at the filter list. */
static void resolve_level(cfg_per_filter *pf, size_t n, const cfg_hcm *h)
{
    for (size_t i = 0; i < n; i++) {
        pf[i].filter_index = -1;
        for (size_t j = 0; j < h->n_filters; j++) {
            if (strcmp(h->filters[j].name, pf[i].filter_name) != 0)
                continue;
            pf[i].filter_index = (long)j;
            const cfg_lua *l = h->filters[j].lua;
            if (pf[i].source_name && l) {
                pf[i].script = NULL;
                for (size_t k = 0; k < l->n_sources; k++)
                    if (strcmp(l->sources[k]->name, pf[i].source_name) == 0)
                        pf[i].script = l->sources[k];
            }
            break;
        }
    }
}

static void resolve_routes(cfg_hcm *h)
{
    cfg_route_config *rc = &h->route_config;
    for (size_t i = 0; i < rc->n_vhosts; i++) {
        cfg_virtual_host *vh = &rc->vhosts[i];
        resolve_level(vh->per_filter, vh->n_per_filter, h);
        for (size_t j = 0; j < vh->n_routes; j++)
            resolve_level(vh->routes[j].per_filter, vh->routes[j].n_per_filter, h);
    }
}

/* ---- http_filters ---- */

int cfg_parse_http_filters(cfg_ctx *c, const yn_node *hcm, cfg_hcm *h)
{
    static const cfg_fields hff = {hf_handled, NULL, hf_unsupported};
    static const cfg_fields rf = {router_handled, NULL, router_unsupported};
    static const char *const types[] = {ROUTER_TYPE, LUA_TYPE, NULL};
    h->buffer_limit = PF_BUFFER_LIMIT_DEFAULT;
    const yn_node *hfs = cfg_get(hcm, "http_filters");
    if (!hfs)
        return cfg_err(c, hcm, "missing required field 'http_filters' "
                               "(must contain envoy.filters.http.router)");
    size_t n, m = cfg_push(c, "http_filters");
    int rc = cfg_expect_seq(c, hfs, &n);
    if (!rc && n == 0)
        rc = cfg_err(c, hfs, "must contain envoy.filters.http.router");
    if (!rc && !(h->filters = calloc(n, sizeof *h->filters)))
        rc = cfg_err(c, hfs, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        const yn_node *hf = hfs->items[i];
        size_t mi = cfg_push_idx(c, i);
        cfg_http_filter *f = &h->filters[i];
        h->n_filters = i + 1;
        if ((rc = cfg_check_map(c, hf, &hff)) == 0 &&
            (rc = cfg_get_str(c, hf, "name", true, &f->name)) == 0) {
            for (size_t j = 0; j < i && !rc; j++)
                if (strcmp(h->filters[j].name, f->name) == 0) {
                    size_t mk = cfg_push(c, "name");
                    rc = cfg_err(c, cfg_get(hf, "name"), "duplicate http filter name '%s'",
                                 f->name);
                    cfg_pop(c, mk);
                }
            const yn_node *tc = cfg_get(hf, "typed_config");
            int ty = 0;
            if (rc) {
            } else if (!tc) {
                rc = cfg_err(c, hf, "missing required field 'typed_config' "
                                    "(expected @type %s)", ROUTER_TYPE);
            } else {
                size_t mt = cfg_push(c, "typed_config");
                if (tc->kind != YN_MAP)
                    rc = cfg_err(c, tc, "expected a map");
                else if ((rc = type_of(c, tc, types, &ty)) == 0) {
                    if (ty == 0) {
                        f->kind = CFG_FILTER_ROUTER;
                        rc = cfg_check_map(c, tc, &rf);
                    } else {
                        f->kind = CFG_FILTER_LUA;
                        rc = parse_lua(c, tc, f->name, &f->lua);
                    }
                }
                cfg_pop(c, mt);
            }
            if (!rc && f->kind == CFG_FILTER_ROUTER && i + 1 != n)
                rc = cfg_err(c, hf, "the router filter must be the last http filter");
            if (!rc && f->kind != CFG_FILTER_ROUTER && i + 1 == n)
                rc = cfg_err(c, hf, "non-terminal filter named %s of type "
                                    "envoy.filters.http.lua is the last filter in a http "
                                    "filter chain", f->name);
        }
        cfg_pop(c, mi);
    }
    cfg_pop(c, m);
    if (!rc)
        resolve_routes(h);
    return rc;
}
