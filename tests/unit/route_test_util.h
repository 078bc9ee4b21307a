/* Shared by the route unit tests: load a bootstrap whose only listener has
 * the given virtual_hosts (YAML flow text) and clusters c1, c2, c3. */
#ifndef PF_ROUTE_TEST_UTIL_H
#define PF_ROUTE_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

static const char *ROUTE_TEST_HEAD =
    "static_resources:\n"
    "  listeners:\n"
    "  - name: l1\n"
    "    address: {socket_address: {address: 127.0.0.1, port_value: 8080}}\n"
    "    filter_chains:\n"
    "    - filters:\n"
    "      - name: envoy.filters.network.http_connection_manager\n"
    "        typed_config:\n"
    "          \"@type\": type.googleapis.com/envoy.extensions.filters.network."
    "http_connection_manager.v3.HttpConnectionManager\n"
    "          stat_prefix: s\n"
    "          http_filters:\n"
    "          - name: envoy.filters.http.router\n"
    "            typed_config: {\"@type\": type.googleapis.com/envoy.extensions."
    "filters.http.router.v3.Router}\n"
    "          route_config:\n";

static const char *ROUTE_TEST_TAIL =
    "  clusters:\n"
    "  - {name: c1, connect_timeout: 1s, load_assignment: {endpoints: [{lb_endpoints: "
    "[{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 9001}}}}]}]}}\n"
    "  - {name: c2, connect_timeout: 1s, load_assignment: {endpoints: [{lb_endpoints: "
    "[{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 9002}}}}]}]}}\n"
    "  - {name: c3, connect_timeout: 1s, load_assignment: {endpoints: [{lb_endpoints: "
    "[{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 9003}}}}]}]}}\n";

/* rc_body: lines of the route_config map, each indented by 12 spaces.
 * Returns the bootstrap (caller frees) or NULL with err filled. */
static inline cfg_bootstrap *route_test_load(const char *rc_body, char *err)
{
    size_t n = strlen(ROUTE_TEST_HEAD) + strlen(rc_body) + strlen(ROUTE_TEST_TAIL) + 1;
    char *text = malloc(n);
    snprintf(text, n, "%s%s%s", ROUTE_TEST_HEAD, rc_body, ROUTE_TEST_TAIL);
    cfg_bootstrap *b = NULL;
    err[0] = '\0';
    if (cfg_load_string("r.yaml", text, strlen(text), &b, err, CFG_ERR_MAX) != 0)
        b = NULL;
    free(text);
    return b;
}

/* The connection manager of the only filter chain. */
static inline const cfg_hcm *route_test_hcm(const cfg_bootstrap *b)
{
    return &b->listeners[0].chains[0].hcm;
}

static inline const cfg_route_config *route_test_rc(const cfg_bootstrap *b)
{
    return &route_test_hcm(b)->route_config;
}

#endif
