/* Cluster specifier plugins (envoy.config.route.v3.ClusterSpecifierPlugin):
 * the route_config's named cluster_specifier_plugins and a route action's
 * cluster_specifier_plugin (a name) or inline_cluster_specifier_plugin.  The
 * one extension is envoy.router.cluster_specifier_plugin.lua (LuaConfig);
 * its runtime is filters/lua/lua_cluster_specifier.c.
 *
 * Built by config/config_cluster_specifier.c; owned by the route config (the
 * named list) or the route (an inline plugin); immutable after load. */
#ifndef PF_CLUSTER_SPECIFIER_CONFIG_H
#define PF_CLUSTER_SPECIFIER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct cfg_lua_script;

typedef struct cfg_cluster_specifier {
    char *name;                     /* extension.name */
    struct cfg_lua_script *script;  /* LuaConfig.source_code (envoy_on_route); owned */
    char *default_cluster;          /* LuaConfig.default_cluster, or NULL */
    char *dir;                      /* directory of the config file (require path); owned */
} cfg_cluster_specifier;

void cfg_cluster_specifier_free(cfg_cluster_specifier *p);

struct cfg_ctx;
struct yn_node;
struct cfg_route;
struct cfg_route_config;
/* rc_node.cluster_specifier_plugins into rc (absent: none). */
int cfg_parse_cluster_specifier_plugins(struct cfg_ctx *c, const struct yn_node *rc_node,
                                        struct cfg_route_config *rc);
/* The route action's plugin at v: `inline_plugin` an
 * inline_cluster_specifier_plugin, else a cluster_specifier_plugin name,
 * looked up in the route config being parsed (c->route_config). */
int cfg_parse_route_cluster_specifier(struct cfg_ctx *c, const struct yn_node *v,
                                      bool inline_plugin, struct cfg_route *r);

#endif
