/* envoy.filters.http.lua config: filters in order, source_codes, LuaPerRoute
 * resolution, and Lua syntax / load errors reported as config errors with
 * the YAML location and the Lua line. */
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "config/filter_config.h"
#include "tests/unit/pftest.h"

static const char head[] =
    "static_resources:\n"
    "  listeners:\n"
    "  - name: l\n"
    "    address: {socket_address: {address: 127.0.0.1, port_value: 8080}}\n"
    "    filter_chains:\n"
    "    - filters:\n"
    "      - name: envoy.filters.network.http_connection_manager\n"
    "        typed_config:\n"
    "          \"@type\": type.googleapis.com/envoy.extensions.filters.network."
    "http_connection_manager.v3.HttpConnectionManager\n"
    "          stat_prefix: s\n"
    "          route_config:\n"
    "            virtual_hosts:\n"
    "            - name: v\n"
    "              domains: [\"*\"]\n"
    "              typed_per_filter_config:\n"
    "                lua2: {\"@type\": type.googleapis.com/envoy.extensions.filters.http.lua."
    "v3.LuaPerRoute, disabled: true}\n"
    "              routes:\n"
    "              - match: {prefix: \"/\"}\n"
    "                route: {cluster: c}\n"
    "                typed_per_filter_config:\n"
    "                  lua1: {\"@type\": type.googleapis.com/envoy.extensions.filters.http."
    "lua.v3.LuaPerRoute, name: hello.lua}\n"
    "          http_filters:\n"
    "          - name: lua1\n"
    "            typed_config:\n"
    "              \"@type\": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua\n"
    "              default_source_code:\n"
    "                inline_string: |\n";                                  /* line 27 */

static const char tail[] =
    "              source_codes:\n"
    "                hello.lua: {inline_string: \"function envoy_on_request(h) end\"}\n"
    "          - name: lua2\n"
    "            typed_config:\n"
    "              \"@type\": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua\n"
    "              inline_code: \"x = 1\"\n"
    "          - name: envoy.filters.http.router\n"
    "            typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters."
    "http.router.v3.Router}\n"
    "  clusters:\n"
    "  - name: c\n"
    "    load_assignment: {cluster_name: c, endpoints: [{lb_endpoints: [{endpoint: {address: "
    "{socket_address: {address: 127.0.0.1, port_value: 9000}}}}]}]}\n";

static int load(const char *script, cfg_bootstrap **b, char *err, size_t errlen)
{
    char text[8192];
    snprintf(text, sizeof text, "%s%s%s", head, script, tail);
    return cfg_load_string("t.yaml", text, strlen(text), b, err, errlen);
}

int main(void)
{
    char err[1024];
    cfg_bootstrap *b = NULL;
    int rc = load("                  function envoy_on_request(h)\n"
                  "                    h:headers():add('a', 'b')\n"
                  "                  end\n", &b, err, sizeof err);
    CHECK(rc == 0);
    if (rc)
        fprintf(stderr, "%s\n", err);
    if (b) {
        const cfg_hcm *h = &b->listeners[0].chains[0].hcm;
        CHECK(h->n_filters == 3);
        CHECK(h->filters[0].kind == CFG_FILTER_LUA && !strcmp(h->filters[0].name, "lua1"));
        CHECK(h->filters[1].kind == CFG_FILTER_LUA && h->filters[1].lua->default_script);
        CHECK(h->filters[2].kind == CFG_FILTER_ROUTER);
        CHECK(h->filters[0].lua->n_sources == 1);
        CHECK(h->buffer_limit == 1024 * 1024);
        const cfg_virtual_host *vh = &h->route_config.vhosts[0];
        const cfg_route *r = &vh->routes[0];
        const cfg_per_filter *pf = cfg_per_filter_find(r, vh, 0);
        CHECK(pf && pf->script == h->filters[0].lua->sources[0]);
        pf = cfg_per_filter_find(r, vh, 1);
        CHECK(pf && pf->disabled);
        CHECK(cfg_per_filter_find(r, vh, 2) == NULL);
        cfg_free(b);
        b = NULL;
    }

    /* a syntax error on the script's line 2 */
    rc = load("                  function envoy_on_request(h)\n"
              "                    local x = = 1\n"
              "                  end\n", &b, err, sizeof err);
    CHECK(rc != 0 && b == NULL);
    CHECK(strstr(err, "t.yaml:27:32: ") == err);
    CHECK(strstr(err, "http_filters[0].typed_config.default_source_code.inline_string: lua: "
                      "lua1:GLOBAL:2: unexpected symbol near '='") != NULL);
    if (!strstr(err, "lua1:GLOBAL:2:"))
        fprintf(stderr, "got: %s\n", err);

    /* a load-time runtime error (require of a missing module) */
    rc = load("                  local m = require('no.such.module')\n", &b, err, sizeof err);
    CHECK(rc != 0);
    CHECK(strstr(err, "lua: script load error: ") != NULL &&
          strstr(err, "module 'no.such.module' not found") != NULL);

    /* the shipped library is on the path */
    char path[8192];
    cfg_lua_package_path("/cfgdir", path, sizeof path);
    CHECK(strncmp(path, "/cfgdir/?.lua;/cfgdir/?/init.lua;", 33) == 0);
    CHECK(strstr(path, "filters/lua/lib/?.lua") != NULL);
    CHECK(strstr(path, "pilotfish/lua/?.lua") != NULL);
    return TEST_DONE();
}
