/* cluster_specifier_plugins / inline_cluster_specifier_plugin ->
 * cfg_cluster_specifier (config/cluster_specifier_config.h). */
#include "config/cluster_specifier_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"
#include "config/filter_config.h"
#include "config/route_config.h"

#define LUA_SPECIFIER_TYPE \
    "type.googleapis.com/envoy.extensions.router.cluster_specifiers.lua.v3.LuaConfig"

void cfg_cluster_specifier_free(cfg_cluster_specifier *p)
{
    if (!p)
        return;
    free(p->name);
    cfg_lua_script_free(p->script);
    free(p->default_cluster);
    free(p->dir);
}

/* A TypedExtensionConfig holding a LuaConfig, into p. */
static int parse_extension(cfg_ctx *c, const yn_node *ext, cfg_cluster_specifier *p)
{
    static const char *const ext_handled[] = {"name", "typed_config", NULL};
    static const cfg_fields ef = {ext_handled, NULL, NULL};
    static const char *const lua_handled[] = {"@type", "source_code", "default_cluster", NULL};
    static const cfg_fields lf = {lua_handled, NULL, NULL};
    int rc;
    if ((rc = cfg_check_map(c, ext, &ef)) != 0 ||
        (rc = cfg_get_str(c, ext, "name", true, &p->name)) != 0)
        return rc;
    const yn_node *tc = cfg_get(ext, "typed_config");
    if (!tc)
        return cfg_err(c, ext, "missing required field 'typed_config'");
    size_t m = cfg_push(c, "typed_config");
    const yn_node *t = cfg_get(tc, "@type");
    if ((rc = cfg_check_map(c, tc, &lf)) != 0)
        goto out;
    if (!t || t->kind != YN_SCALAR || strcmp(t->str, LUA_SPECIFIER_TYPE) != 0) {
        size_t mt = cfg_push(c, "@type");
        rc = cfg_err(c, t ? t : tc, "not supported yet: %s (supported: %s)",
                     t && t->kind == YN_SCALAR ? t->str : "(missing)", LUA_SPECIFIER_TYPE);
        cfg_pop(c, mt);
        goto out;
    }
    if ((rc = cfg_get_str(c, tc, "default_cluster", false, &p->default_cluster)) != 0)
        goto out;
    if (!(p->dir = cfg_lua_dir_of(tc->file))) {
        rc = cfg_err(c, tc, "out of memory");
        goto out;
    }
    const yn_node *sc = cfg_get(tc, "source_code");
    if (!sc) {
        rc = cfg_err(c, tc, "missing required field 'source_code'");
        goto out;
    }
    size_t ms = cfg_push(c, "source_code");
    rc = cfg_lua_parse_source(c, sc, p->name, "route", p->dir, &p->script);
    cfg_pop(c, ms);
out:
    cfg_pop(c, m);
    return rc;
}

int cfg_parse_cluster_specifier_plugins(cfg_ctx *c, const yn_node *rc_node, cfg_route_config *rc)
{
    static const char *const handled[] = {"extension", NULL};
    /* is_optional only matters for extensions we would not know; we reject those */
    static const char *const ignored[] = {"is_optional", NULL};
    static const cfg_fields f = {handled, ignored, NULL};
    const yn_node *l = cfg_get(rc_node, "cluster_specifier_plugins");
    size_t n, m = cfg_push(c, "cluster_specifier_plugins");
    int rc_ = cfg_expect_seq(c, l, &n);
    if (!rc_ && n && !(rc->cluster_plugins = calloc(n, sizeof *rc->cluster_plugins)))
        rc_ = cfg_err(c, l, "out of memory");
    for (size_t i = 0; !rc_ && i < n; i++) {
        size_t mi = cfg_push_idx(c, i);
        const yn_node *e = l->items[i];
        rc->n_cluster_plugins = i + 1;
        if ((rc_ = cfg_check_map(c, e, &f)) == 0) {
            const yn_node *ext = cfg_get(e, "extension");
            if (!ext) {
                rc_ = cfg_err(c, e, "missing required field 'extension'");
            } else {
                size_t me = cfg_push(c, "extension");
                rc_ = parse_extension(c, ext, &rc->cluster_plugins[i]);
                for (size_t j = 0; !rc_ && j < i; j++)
                    if (strcmp(rc->cluster_plugins[j].name, rc->cluster_plugins[i].name) == 0)
                        rc_ = cfg_err(c, ext, "duplicate cluster specifier plugin name '%s'",
                                      rc->cluster_plugins[i].name);
                cfg_pop(c, me);
            }
        }
        cfg_pop(c, mi);
    }
    cfg_pop(c, m);
    return rc_;
}

int cfg_parse_route_cluster_specifier(cfg_ctx *c, const yn_node *v, bool inline_plugin,
                                      cfg_route *r)
{
    if (inline_plugin) {
        static const char *const handled[] = {"extension", NULL};
        static const char *const ignored[] = {"is_optional", NULL};
        static const cfg_fields f = {handled, ignored, NULL};
        int rc = cfg_check_map(c, v, &f);
        if (rc)
            return rc;
        const yn_node *ext = cfg_get(v, "extension");
        if (!ext)
            return cfg_err(c, v, "missing required field 'extension'");
        if (!(r->cluster_plugin = calloc(1, sizeof *r->cluster_plugin)))
            return cfg_err(c, v, "out of memory");
        r->owns_cluster_plugin = true;
        size_t m = cfg_push(c, "extension");
        rc = parse_extension(c, ext, r->cluster_plugin);
        cfg_pop(c, m);
        return rc;
    }
    if (v->kind != YN_SCALAR)
        return cfg_err(c, v, "expected a string");
    const cfg_route_config *rc = c->route_config;
    for (size_t i = 0; rc && i < rc->n_cluster_plugins; i++)
        if (strcmp(rc->cluster_plugins[i].name, v->str) == 0) {
            r->cluster_plugin = &rc->cluster_plugins[i];
            return 0;
        }
    return cfg_err(c, v, "no cluster_specifier_plugins entry named '%s' in the route config",
                   v->str);
}
