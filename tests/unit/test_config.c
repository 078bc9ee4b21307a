/* Unit tests for the config loader (the config directory). */
#include "config/config.h"
#include "config/yaml_node.h"

#include <dirent.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures;
static const char *current = "";

#define CHECK(cond)                                                               \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "FAIL [%s] %s:%d: %s\n", current, __FILE__, __LINE__, \
                    #cond);                                                       \
            failures++;                                                           \
        }                                                                         \
    } while (0)

/* A valid config; variants below replace a substring on one line so the
 * line numbers stay put.  Line numbers are noted on the right. */
static const char BASE[] =
    "static_resources:\n"                                                       /* 1 */
    "  listeners:\n"                                                            /* 2 */
    "  - name: l1\n"                                                            /* 3 */
    "    address:\n"                                                            /* 4 */
    "      socket_address: {address: 127.0.0.1, port_value: 8080}\n"           /* 5 */
    "    filter_chains:\n"                                                      /* 6 */
    "    - filters:\n"                                                          /* 7 */
    "      - name: envoy.filters.network.http_connection_manager\n"             /* 8 */
    "        typed_config:\n"                                                   /* 9 */
    "          \"@type\": type.googleapis.com/envoy.extensions.filters.network."
    "http_connection_manager.v3.HttpConnectionManager\n"                        /* 10 */
    "          stat_prefix: s\n"                                                /* 11 */
    "          route_config:\n"                                                 /* 12 */
    "            virtual_hosts:\n"                                              /* 13 */
    "            - name: vh\n"                                                  /* 14 */
    "              domains: [\"*\"]\n"                                          /* 15 */
    "              routes:\n"                                                   /* 16 */
    "              - match: {prefix: \"/\"}\n"                                  /* 17 */
    "                route: {cluster: c1}\n"                                    /* 18 */
    "          http_filters:\n"                                                 /* 19 */
    "          - name: envoy.filters.http.router\n"                             /* 20 */
    "            typed_config: {\"@type\": type.googleapis.com/envoy.extensions."
    "filters.http.router.v3.Router}\n"                                          /* 21 */
    "  clusters:\n"                                                             /* 22 */
    "  - name: c1\n"                                                            /* 23 */
    "    connect_timeout: 1s\n"                                                 /* 24 */
    "    load_assignment:\n"                                                    /* 25 */
    "      endpoints:\n"                                                        /* 26 */
    "      - lb_endpoints:\n"                                                   /* 27 */
    "        - endpoint: {address: {socket_address: {address: 127.0.0.1, "
    "port_value: 9000}}}\n";                                                    /* 28 */

/* BASE with the first occurrence of `from` replaced by `to` (static buffer). */
static const char *subst(const char *from, const char *to)
{
    static char buf[8192];
    const char *p = strstr(BASE, from);
    if (!p) {
        fprintf(stderr, "test bug: '%s' not in BASE\n", from);
        exit(2);
    }
    snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(p - BASE), BASE, to, p + strlen(from));
    return buf;
}

static int load(const char *text, cfg_bootstrap **b, char *err)
{
    return cfg_load_string("t.yaml", text, strlen(text), b, err, CFG_ERR_MAX);
}

/* Expect failure with an error that starts with `want`. */
static void expect_err(const char *name, const char *text, const char *want)
{
    cfg_bootstrap *b = (cfg_bootstrap *)1;
    char err[CFG_ERR_MAX];
    current = name;
    int rc = load(text, &b, err);
    CHECK(rc == -EINVAL);
    CHECK(b == NULL);
    if (rc == 0) {
        cfg_free(b);
        return;
    }
    if (strncmp(err, want, strlen(want)) != 0) {
        fprintf(stderr, "FAIL [%s]\n  want: %s\n  got:  %s\n", name, want, err);
        failures++;
    }
    CHECK(strchr(err, '\n') == NULL);
}

static cfg_bootstrap *expect_ok(const char *name, const char *text)
{
    cfg_bootstrap *b = NULL;
    char err[CFG_ERR_MAX];
    current = name;
    int rc = load(text, &b, err);
    if (rc != 0) {
        fprintf(stderr, "FAIL [%s] unexpected error: %s\n", name, err);
        failures++;
        return NULL;
    }
    return b;
}

static void test_base(void)
{
    cfg_bootstrap *b = expect_ok("base", BASE);
    if (!b)
        return;
    CHECK(!b->has_admin);
    CHECK(b->n_listeners == 1 && b->n_clusters == 1);
    const cfg_listener *l = &b->listeners[0];
    CHECK(strcmp(l->name, "l1") == 0);
    CHECK(strcmp(l->address.address, "127.0.0.1") == 0 && l->address.port == 8080);
    CHECK(strcmp(l->chains[0].hcm.stat_prefix, "s") == 0);
    CHECK(l->chains[0].hcm.codec_type == CFG_CODEC_AUTO);
    CHECK(l->chains[0].hcm.max_request_headers_kb == 60);
    CHECK(l->chains[0].hcm.route_config.name == NULL);
    const cfg_route *r = &l->chains[0].hcm.route_config.vhosts[0].routes[0];
    CHECK(r->action == CFG_ACTION_ROUTE && r->match_kind == CFG_MATCH_PREFIX);
    CHECK(strcmp(r->match_value, "/") == 0);
    CHECK(strcmp(r->cluster, "c1") == 0 && r->cluster_index == 0);
    CHECK(r->timeout_ms == 15000);
    CHECK(r->prefix_rewrite == NULL && r->host_rewrite_literal == NULL);
    const cfg_cluster *c = &b->clusters[0];
    CHECK(c->type == CFG_CLUSTER_STATIC && c->lb_policy == CFG_LB_ROUND_ROBIN);
    CHECK(c->connect_timeout_ms == 1000 && c->dns_refresh_rate_ms == 5000);
    CHECK(c->n_endpoints == 1 && c->endpoints[0].port == 9000);
    cfg_free(b);
}

static void test_default(void)
{
    cfg_bootstrap *b = NULL;
    char err[CFG_ERR_MAX];
    current = "default";
    int rc = cfg_load(NULL, NULL, &b, err, sizeof(err));
    CHECK(rc == 0);
    if (rc) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK(b->has_admin && b->admin.port == 9901 && !strcmp(b->admin.address, "0.0.0.0"));
    CHECK(b->n_listeners == 3 && b->n_clusters == 2);
    CHECK(!strcmp(b->listeners[0].name, "main") && b->listeners[0].address.port == 10000);
    CHECK(!strcmp(b->listeners[0].address.address, "0.0.0.0"));
    CHECK(!strcmp(b->listeners[0].chains[0].hcm.stat_prefix, "ingress_http"));
    const cfg_route *r = &b->listeners[0].chains[0].hcm.route_config.vhosts[0].routes[0];
    CHECK(r->action == CFG_ACTION_ROUTE && r->cluster == NULL && r->n_weighted == 2);
    CHECK(!strcmp(r->weighted[0].name, "stable") && r->weighted[0].weight == 90);
    CHECK(!strcmp(r->weighted[1].name, "canary") && r->weighted[1].weight == 10);
    CHECK(r->weighted[0].cluster_index == 0 && r->weighted[1].cluster_index == 1);
    CHECK(r->total_weight == 100);
    CHECK(!strcmp(b->listeners[1].name, "stable_demo") && b->listeners[1].address.port == 10001);
    CHECK(!strcmp(b->listeners[2].name, "canary_demo") && b->listeners[2].address.port == 10002);
    const cfg_route *d = &b->listeners[1].chains[0].hcm.route_config.vhosts[0].routes[0];
    CHECK(d->action == CFG_ACTION_DIRECT && d->direct_status == 200);
    CHECK(d->direct_body_len == 18 && !memcmp(d->direct_body, "hello from stable\n", 18));
    d = &b->listeners[2].chains[0].hcm.route_config.vhosts[0].routes[0];
    CHECK(d->direct_body && !strcmp(d->direct_body, "hello from canary\n"));
    for (size_t i = 0; i < 2; i++) {
        const cfg_cluster *c = &b->clusters[i];
        CHECK(c->type == CFG_CLUSTER_STATIC && c->connect_timeout_ms == 250);
        CHECK(c->n_endpoints == 1 && !strcmp(c->endpoints[0].address, "127.0.0.1"));
        CHECK(c->endpoints[0].port == 10001 + i);
    }
    CHECK(!strcmp(b->clusters[0].name, "stable") && !strcmp(b->clusters[1].name, "canary"));
    cfg_free(b);
}

static void test_errors(void)
{
    expect_err("unknown field",
               subst("    connect_timeout: 1s\n", "    connect_timeot: 1s\n"),
               "t.yaml:24:5: static_resources.clusters[0].connect_timeot: unknown field "
               "'connect_timeot'");
    expect_err("not supported field",
               subst("    connect_timeout: 1s\n", "    lb_subset_config: {}\n"),
               "t.yaml:24:5: static_resources.clusters[0].lb_subset_config: not supported yet");
    expect_err("locality oneof",
               subst("    connect_timeout: 1s\n", "    common_lb_config:\n"
                     "      zone_aware_lb_config: {}\n      locality_weighted_lb_config: {}\n"),
               "t.yaml:26:7: static_resources.clusters[0].common_lb_config."
               "locality_weighted_lb_config: only one of zone_aware_lb_config, "
               "locality_weighted_lb_config may be set");
    expect_err("grpc health check kinds",
               subst("    connect_timeout: 1s\n", "    health_checks: [{timeout: 1s, interval: 1s,"
                     " unhealthy_threshold: 1, healthy_threshold: 1, tcp_health_check: {},"
                     " grpc_health_check: {}}]\n"),
               "t.yaml:24:117: static_resources.clusters[0].health_checks[0].grpc_health_check: "
               "only one of http_health_check, tcp_health_check, grpc_health_check may be set");
    expect_err("not supported enum",
               subst("    connect_timeout: 1s\n", "    lb_policy: CLUSTER_PROVIDED\n"),
               "t.yaml:24:16: static_resources.clusters[0].lb_policy: not supported yet: "
               "CLUSTER_PROVIDED (supported: ROUND_ROBIN, LEAST_REQUEST, RING_HASH, RANDOM, "
               "MAGLEV)");
    expect_err("invalid enum",
               subst("    connect_timeout: 1s\n", "    type: STAITC\n"),
               "t.yaml:24:11: static_resources.clusters[0].type: invalid value 'STAITC' "
               "(valid: STATIC, STRICT_DNS, LOGICAL_DNS, EDS, ORIGINAL_DST)");
    expect_err("EDS not supported",
               subst("    connect_timeout: 1s\n", "    type: EDS\n"),
               "t.yaml:24:11: static_resources.clusters[0].type: not supported yet: EDS");
    expect_err("wrong type map",
               subst("    address:\n      socket_address: {address: 127.0.0.1, "
                     "port_value: 8080}\n", "    address: 8080\n    stat_prefix: x\n"),
               "t.yaml:4:14: static_resources.listeners[0].address: expected a map, "
               "got a scalar");
    expect_err("wrong type int",
               subst("port_value: 8080", "port_value: 80x"),
               "t.yaml:5:56: static_resources.listeners[0].address.socket_address.port_value: "
               "expected an integer, got '80x'");
    expect_err("port range",
               subst("port_value: 8080", "port_value: 70000"),
               "t.yaml:5:56: static_resources.listeners[0].address.socket_address.port_value: "
               "value 70000 out of range [0, 65535]");
    expect_err("wrong type list",
               subst("domains: [\"*\"]", "domains: \"*\"   "),
               "t.yaml:15:24: static_resources.listeners[0].filter_chains[0].filters[0]."
               "typed_config.route_config.virtual_hosts[0].domains: expected a list");
    expect_err("missing required",
               subst("          stat_prefix: s\n", "          codec_type: HTTP1\n"),
               "t.yaml:10:11: static_resources.listeners[0].filter_chains[0].filters[0]."
               "typed_config: missing required field 'stat_prefix'");
    expect_err("bad codec",
               subst("          stat_prefix: s\n",
                     "          stat_prefix: s\n          codec_type: HTTP9\n"),
               "t.yaml:12:23: static_resources.listeners[0].filter_chains[0].filters[0]."
               "typed_config.codec_type: invalid value 'HTTP9' (valid: AUTO, HTTP1, HTTP2, "
               "HTTP3)");
    expect_err("undefined cluster",
               subst("route: {cluster: c1}", "route: {cluster: c2}"),
               "t.yaml:18:34: static_resources.listeners[0].filter_chains[0].filters[0]."
               "typed_config.route_config.virtual_hosts[0].routes[0].route.cluster: "
               "unknown cluster 'c2'");
    expect_err("bad duration",
               subst("connect_timeout: 1s", "connect_timeout: 1m"),
               "t.yaml:24:22: static_resources.clusters[0].connect_timeout: invalid duration "
               "'1m'");
    expect_err("regex match",
               subst("{prefix: \"/\"}", "{safe_regex: {regex: \"a(\"}}"),
               "t.yaml:17:45: static_resources.listeners[0].filter_chains[0].filters[0]."
               "typed_config.route_config.virtual_hosts[0].routes[0].match.safe_regex.regex: "
               "invalid regex at offset 2: missing closing parenthesis");
    expect_err("wrong @type",
               subst("http_connection_manager.v3.HttpConnectionManager\n",
                     "http_connection_manager.v3.HttpConnectionManagr\n"),
               "t.yaml:10:20: static_resources.listeners[0].filter_chains[0].filters[0]."
               "typed_config.@type: not supported yet: type.googleapis.com/envoy.extensions."
               "filters.network.http_connection_manager.v3.HttpConnectionManagr (supported: "
               "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager."
               "v3.HttpConnectionManager)");
    expect_err("other http filter",
               subst("router.v3.Router}", "buffer.v3.Buffer}"),
               "t.yaml:21:37: static_resources.listeners[0].filter_chains[0].filters[0]."
               "typed_config.http_filters[0].typed_config.@type: not supported yet: "
               "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer (supported: "
               "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router, "
               "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua)");
    expect_err("lua only",
               subst("router.v3.Router}", "lua.v3.Lua}"),
               "t.yaml:20:13: static_resources.listeners[0].filter_chains[0].filters[0]."
               "typed_config.http_filters[0]: non-terminal filter named "
               "envoy.filters.http.router of type envoy.filters.http.lua is the last filter "
               "in a http filter chain");
    expect_err("static needs ip",
               subst("{address: 127.0.0.1, port_value: 9000}",
                     "{address: backend, port_value: 9000}"),
               "t.yaml:28:58: static_resources.clusters[0].load_assignment.endpoints[0]."
               "lb_endpoints[0].endpoint.address.socket_address.address: expected an IP "
               "address, got 'backend'");
    expect_err("direct status range",
               subst("route: {cluster: c1}", "direct_response: {status: 99}"),
               "t.yaml:18:43: static_resources.listeners[0].filter_chains[0].filters[0]."
               "typed_config.route_config.virtual_hosts[0].routes[0].direct_response."
               "status: value 99 out of range [100, 599]");
    expect_err("headers kb range",
               subst("          stat_prefix: s\n",
                     "          stat_prefix: s\n          max_request_headers_kb: 0\n"),
               "t.yaml:12:35: static_resources.listeners[0].filter_chains[0].filters[0]."
               "typed_config.max_request_headers_kb: value 0 out of range [1, 8192]");
    expect_err("empty filter chain",
               subst("    - filters:\n", "    - {filters: []}\n    - filters:\n"),
               "t.yaml:7:17: static_resources.listeners[0].filter_chains[0].filters: must "
               "contain the envoy.filters.network.http_connection_manager filter");
    expect_err("udp",
               subst("port_value: 8080}", "port_value: 8080, protocol: UDP}"),
               "t.yaml:5:72: static_resources.listeners[0].address.socket_address.protocol: "
               "not supported yet: UDP (supported: TCP)");
    expect_err("no router",
               subst("          http_filters:\n          - name: envoy.filters.http.router\n"
                     "            typed_config: {\"@type\": type.googleapis.com/envoy."
                     "extensions.filters.http.router.v3.Router}\n",
                     "          http_filters: []\n\n\n"),
               "t.yaml:19:25: static_resources.listeners[0].filter_chains[0].filters[0]."
               "typed_config.http_filters: must contain envoy.filters.http.router");

    /* duplicate names */
    static const char dup_listener[] =
        "static_resources:\n"
        "  listeners:\n"
        "  - name: a\n"
        "    address: {socket_address: {address: 0.0.0.0, port_value: 1}}\n"
        "    filter_chains: &fc\n"
        "    - filters:\n"
        "      - name: hcm\n"
        "        typed_config:\n"
        "          \"@type\": type.googleapis.com/envoy.extensions.filters.network."
        "http_connection_manager.v3.HttpConnectionManager\n"
        "          stat_prefix: s\n"
        "          route_config: {virtual_hosts: []}\n"
        "          http_filters:\n"
        "          - name: r\n"
        "            typed_config: {\"@type\": type.googleapis.com/envoy.extensions."
        "filters.http.router.v3.Router}\n"
        "  - name: a\n"
        "    address: {socket_address: {address: 0.0.0.0, port_value: 2}}\n"
        "    filter_chains: *fc\n";
    expect_err("duplicate listener", dup_listener,
               "t.yaml:15:11: static_resources.listeners[1].name: duplicate listener name 'a'");
    static const char dup_cluster[] =
        "static_resources:\n"
        "  clusters:\n"
        "  - name: a\n"
        "  - {name: b, type: STRICT_DNS}\n"
        "  - name: a\n";
    expect_err("duplicate cluster", dup_cluster,
               "t.yaml:5:11: static_resources.clusters[2].name: duplicate cluster name 'a'");
    expect_err("top-level not a map", "- 1\n- 2\n", "t.yaml:1:1: (root): expected a map");
    expect_err("unknown top-level", "admin: {}\nfoo: 1\n", "t.yaml:2:1: foo: unknown field 'foo'");
    expect_err("dynamic_resources", "dynamic_resources: {ads_config: {}}\n",
               "t.yaml:1:21: dynamic_resources.ads_config: not supported yet");
}

static void test_yaml_errors(void)
{
    expect_err("syntax error", "admin:\n  address: [1, 2\n  x: y\n", "t.yaml:3:4: ");
    expect_err("bad indentation", "a:\n  b: 1\n c: 2\n", "t.yaml:3:2: ");
    expect_err("multi document", "admin: {}\n---\nadmin: {}\n",
               "t.yaml:2:1: multiple YAML documents are not supported");
    expect_err("duplicate key", "admin: {}\nadmin: {}\n", "t.yaml:2:1: duplicate key 'admin'");
    expect_err("unknown alias", "admin: *nope\n", "t.yaml:1:8: unknown alias '*nope'");
    expect_err("alias bomb",
               "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
               "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
               "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
               "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
               "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
               "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
               "t.yaml:");
    char deep[2100];
    memset(deep, '[', 1000);
    memset(deep + 1000, ']', 1000);
    deep[2000] = '\0';
    expect_err("deep nesting", deep, "t.yaml:1:");
}

static void test_durations(void)
{
    current = "durations";
    static const struct {
        const char *s;
        uint64_t ms;
    } good[] = {{"0s", 0}, {"5s", 5000}, {"0.25s", 250}, {"1.500s", 1500},
                {"1.5s", 1500}, {"0.000000001s", 1}, {"0.0015s", 2},
                {"315576000000s", 315576000000000ULL}, {"10.123456789s", 10124}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint64_t ms = 12345;
        int rc = cfg_parse_duration_ms(good[i].s, &ms);
        if (rc != 0 || ms != good[i].ms) {
            fprintf(stderr, "FAIL [durations] '%s' -> rc=%d ms=%llu\n", good[i].s, rc,
                    (unsigned long long)ms);
            failures++;
        }
    }
    static const char *const bad[] = {"", "s", "5", "1m", "-1s", "1.s", ".s", "1.2.3s",
                                      "1.0000000001s", "315576000001s", " 1s", "1s ",
                                      "1e3s", "abc", "0x10s", "1,5s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t ms = 77;
        if (cfg_parse_duration_ms(bad[i], &ms) != -EINVAL || ms != 77) {
            fprintf(stderr, "FAIL [durations] '%s' should be rejected\n", bad[i]);
            failures++;
        }
    }
    CHECK(cfg_parse_duration_ms(NULL, &(uint64_t){0}) == -EINVAL);

    /* map form and route timeout */
    cfg_bootstrap *b = expect_ok(
        "duration map form",
        subst("connect_timeout: 1s", "connect_timeout: {seconds: 2, nanos: 500000000}"));
    if (b) {
        CHECK(b->clusters[0].connect_timeout_ms == 2500);
        cfg_free(b);
    }
    b = expect_ok("route timeout 0s", subst("route: {cluster: c1}",
                                            "route: {cluster: c1, timeout: 0s}"));
    if (b) {
        CHECK(b->listeners[0].chains[0].hcm.route_config.vhosts[0].routes[0].timeout_ms == 0);
        cfg_free(b);
    }
    expect_err("duration map nanos",
               subst("connect_timeout: 1s", "connect_timeout: {nanos: 1000000000}"),
               "t.yaml:24:30: static_resources.clusters[0].connect_timeout.nanos: nanos out "
               "of range");
    expect_err("duration map unknown",
               subst("connect_timeout: 1s", "connect_timeout: {secs: 1}"),
               "t.yaml:24:23: static_resources.clusters[0].connect_timeout.secs: unknown "
               "field 'secs'");
}

static void test_json(void)
{
    static const char json[] =
        "{\"admin\": {\"address\": {\"socket_address\": {\"address\": \"127.0.0.1\", "
        "\"port_value\": \"9901\"}}},\n"
        " \"static_resources\": {\n"
        "  \"listeners\": [{\"name\": \"j\", \"address\": {\"socket_address\": "
        "{\"address\": \"::1\", \"port_value\": 8080}},\n"
        "   \"filter_chains\": [{\"filters\": [{\"name\": \"hcm\", \"typed_config\": {\n"
        "     \"@type\": \"type.googleapis.com/envoy.extensions.filters.network."
        "http_connection_manager.v3.HttpConnectionManager\",\n"
        "     \"stat_prefix\": \"j\", \"codec_type\": \"HTTP2\", "
        "\"max_request_headers_kb\": \"96\",\n"
        "     \"route_config\": {\"name\": \"rc\", \"virtual_hosts\": [{\"name\": \"v\", "
        "\"domains\": [\"example.com\", \"*.example.org\"],\n"
        "       \"routes\": [{\"name\": \"r0\", \"match\": {\"path\": \"/exact\"}, "
        "\"route\": {\"cluster\": \"dns\", \"timeout\": \"2.5s\", \"prefix_rewrite\": "
        "\"/new\", \"host_rewrite_literal\": \"h.example\"}},\n"
        "                    {\"match\": {\"prefix\": \"/w\"}, \"route\": "
        "{\"weighted_clusters\": {\"clusters\": [{\"name\": \"dns\", \"weight\": 3}, "
        "{\"name\": \"logical\", \"weight\": 1}], \"total_weight\": 4}}}]}]},\n"
        "     \"http_filters\": [{\"name\": \"router\", \"typed_config\": {\"@type\": "
        "\"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\"}}]}}]}]}],\n"
        "  \"clusters\": [\n"
        "   {\"name\": \"dns\", \"type\": \"STRICT_DNS\", \"dns_refresh_rate\": \"10s\", "
        "\"dns_lookup_family\": \"V4_ONLY\", \"load_assignment\": {\"cluster_name\": \"dns\", "
        "\"endpoints\": [{\"lb_endpoints\": [\n"
        "     {\"endpoint\": {\"address\": {\"socket_address\": {\"address\": \"a.example\", "
        "\"port_value\": 80}}}},\n"
        "     {\"endpoint\": {\"address\": {\"socket_address\": {\"address\": \"b.example\", "
        "\"port_value\": 81}}}}]},\n"
        "     {\"lb_endpoints\": [{\"endpoint\": {\"address\": {\"socket_address\": "
        "{\"address\": \"10.0.0.1\", \"port_value\": 82}}}}]}]}},\n"
        "   {\"name\": \"logical\", \"type\": \"LOGICAL_DNS\", \"load_assignment\": "
        "{\"endpoints\": [{\"lb_endpoints\": [{\"endpoint\": {\"address\": "
        "{\"socket_address\": {\"address\": \"c.example\", \"port_value\": 443}}}}]}]}}]}}\n";
    cfg_bootstrap *b = expect_ok("json", json);
    if (!b)
        return;
    CHECK(b->has_admin && b->admin.port == 9901);
    const cfg_listener *l = &b->listeners[0];
    CHECK(!strcmp(l->address.address, "::1"));
    CHECK(l->chains[0].hcm.codec_type == CFG_CODEC_HTTP2 && l->chains[0].hcm.max_request_headers_kb == 96);
    CHECK(!strcmp(l->chains[0].hcm.route_config.name, "rc"));
    const cfg_virtual_host *vh = &l->chains[0].hcm.route_config.vhosts[0];
    CHECK(vh->n_domains == 2 && !strcmp(vh->domains[1], "*.example.org"));
    CHECK(vh->n_routes == 2);
    const cfg_route *r = &vh->routes[0];
    CHECK(!strcmp(r->name, "r0") && r->match_kind == CFG_MATCH_PATH);
    CHECK(!strcmp(r->match_value, "/exact") && r->timeout_ms == 2500);
    CHECK(!strcmp(r->prefix_rewrite, "/new") && !strcmp(r->host_rewrite_literal, "h.example"));
    r = &vh->routes[1];
    CHECK(r->n_weighted == 2 && r->total_weight == 4);
    CHECK(r->weighted[1].cluster_index == 1 && r->weighted[0].weight == 3);
    const cfg_cluster *c = &b->clusters[0];
    CHECK(c->type == CFG_CLUSTER_STRICT_DNS && c->dns_refresh_rate_ms == 10000);
    CHECK(c->n_endpoints == 3 && !strcmp(c->endpoints[1].address, "b.example"));
    CHECK(c->endpoints[2].port == 82);
    CHECK(b->clusters[1].type == CFG_CLUSTER_LOGICAL_DNS && b->clusters[1].n_endpoints == 1);
    cfg_free(b);

    expect_err("json type error", "{\"admin\": {\"address\": []}}",
               "t.yaml:1:23: admin.address: expected a map");
    expect_err("total_weight mismatch",
               subst("route: {cluster: c1}",
                     "route: {weighted_clusters: {clusters: [{name: c1, weight: 2}], "
                     "total_weight: 3}}"),
               "t.yaml:18:94: static_resources.listeners[0].filter_chains[0].filters[0]."
               "typed_config.route_config.virtual_hosts[0].routes[0].route."
               "weighted_clusters.total_weight: sum of weights (2) must equal total_weight (3)");
}

static void test_yaml_features(void)
{
    /* anchors, aliases and merge keys */
    static const char y[] =
        "static_resources:\n"
        "  clusters:\n"
        "  - &base\n"
        "    name: one\n"
        "    type: STRICT_DNS\n"
        "    connect_timeout: 2s\n"
        "    load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: "
        "{socket_address: {address: x.example, port_value: 1}}}}]}]}\n"
        "  - <<: *base\n"
        "    name: two\n"
        "  - <<: [{name: three}, *base]\n"
        "    connect_timeout: 3s\n";
    cfg_bootstrap *b = expect_ok("merge keys", y);
    if (b) {
        CHECK(b->n_clusters == 3);
        CHECK(!strcmp(b->clusters[1].name, "two") && b->clusters[1].connect_timeout_ms == 2000);
        CHECK(b->clusters[1].type == CFG_CLUSTER_STRICT_DNS && b->clusters[1].n_endpoints == 1);
        CHECK(!strcmp(b->clusters[2].name, "three"));
        CHECK(b->clusters[2].connect_timeout_ms == 3000);
        cfg_free(b);
    }
    /* empty document, null values */
    b = expect_ok("empty", "");
    if (b) {
        CHECK(b->n_listeners == 0 && b->n_clusters == 0 && !b->has_admin);
        cfg_free(b);
    }
    b = expect_ok("nulls", "admin:\n  access_log_path: /dev/null\nstatic_resources:\n"
                           "  listeners: ~\n  clusters:\n");
    if (b)
        cfg_free(b);
}

static void test_node_locations(void)
{
    current = "node locations";
    yn_node *n = NULL;
    char err[256];
    const char *txt = "a:\n  bb: [1, {c: d}]\n";
    CHECK(yn_parse("f", txt, strlen(txt), &n, err, sizeof(err)) == 0);
    if (!n)
        return;
    yn_node *bb = yn_map_get(yn_map_get(n, "a"), "bb");
    CHECK(bb && bb->kind == YN_SEQ && bb->line == 2 && bb->col == 7);
    CHECK(bb && bb->n == 2 && bb->items[1]->line == 2 && bb->items[1]->col == 11);
    yn_node *d = bb ? yn_map_get(bb->items[1], "c") : NULL;
    CHECK(d && d->line == 2 && d->col == 15 && !strcmp(d->str, "d") && !strcmp(d->file, "f"));
    yn_free(n);
}

static void test_merge(void)
{
    current = "merge";
    char err[256];
    yn_node *a = NULL, *o = NULL;
    const char *ta = "s: 1\nm: {x: 1, y: [a]}\nl: [1, 2]\nk: keep\n";
    const char *to = "s: 2\nm: {y: [b], z: 3}\nl: [3]\nn: new\nk: ~\n";
    CHECK(yn_parse("a", ta, strlen(ta), &a, err, sizeof(err)) == 0);
    CHECK(yn_parse("o", to, strlen(to), &o, err, sizeof(err)) == 0);
    CHECK(yn_merge(&a, o) == 0);
    CHECK(!strcmp(yn_map_get(a, "s")->str, "2"));
    CHECK(!strcmp(yn_map_get(a, "s")->file, "o"));
    yn_node *m = yn_map_get(a, "m");
    CHECK(m && m->n == 3 && !strcmp(yn_map_get(m, "x")->str, "1"));
    CHECK(yn_map_get(m, "y")->n == 2 && !strcmp(yn_map_get(m, "y")->items[1]->str, "b"));
    CHECK(!strcmp(yn_map_get(m, "z")->str, "3"));
    yn_node *l = yn_map_get(a, "l");
    CHECK(l->n == 3 && !strcmp(l->items[2]->str, "3"));
    CHECK(!strcmp(yn_map_get(a, "n")->str, "new"));
    CHECK(!strcmp(yn_map_get(a, "k")->str, "keep"));
    yn_free(a);

    /* cfg_load(path, overlay): file + --config-yaml */
    char path[] = "/tmp/pf_test_config_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    FILE *f = fdopen(fd, "w");
    fputs(BASE, f);
    fclose(f);
    const char *overlay =
        "admin: {address: {socket_address: {address: 127.0.0.1, port_value: 9999}}}\n"
        "static_resources:\n"
        "  clusters:\n"
        "  - name: c2\n"
        "    type: STRICT_DNS\n";
    cfg_bootstrap *b = NULL;
    char e[CFG_ERR_MAX];
    int rc = cfg_load(path, overlay, &b, e, sizeof(e));
    CHECK(rc == 0);
    if (rc == 0) {
        CHECK(b->has_admin && b->admin.port == 9999);
        CHECK(b->n_clusters == 2 && !strcmp(b->clusters[1].name, "c2"));
        CHECK(b->n_listeners == 1);
        cfg_free(b);
    } else {
        fprintf(stderr, "  %s\n", e);
    }
    /* Lists append, so re-defining a cluster from the overlay is a duplicate,
     * reported at the overlay's location. */
    rc = cfg_load(path, "static_resources: {clusters: [{name: c1}]}", &b, e, sizeof(e));
    CHECK(rc == -EINVAL);
    CHECK(strstr(e, "--config-yaml:1:38: static_resources.clusters[1].name: duplicate "
                    "cluster name 'c1'") == e);
    /* errors in overlay nodes name the overlay */
    rc = cfg_load(path, "static_resources: {clusters: [{name: c3, type: EDS}]}", &b, e,
                  sizeof(e));
    CHECK(rc == -EINVAL && strstr(e, "--config-yaml:1:48: ") == e);
    rc = cfg_load(path, "admin: [", &b, e, sizeof(e));
    CHECK(rc == -EINVAL && strncmp(e, "--config-yaml:2:1: did not find expected node content", 53) == 0);
    /* overlay only */
    rc = cfg_load(NULL, "admin: {address: {socket_address: {address: '::', port_value: 1}}}",
                  &b, e, sizeof(e));
    CHECK(rc == 0);
    if (rc == 0) {
        CHECK(b->has_admin && b->n_listeners == 0);
        cfg_free(b);
    }
    unlink(path);
    rc = cfg_load(path, NULL, &b, e, sizeof(e));
    CHECK(rc == -ENOENT && b == NULL);
}

/* Every example either loads or fails with "file:line:col: ". */
static int check_examples_dir(const char *dir, regex_t *re)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int count = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(p, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            count += check_examples_dir(p, re);
            continue;
        }
        size_t n = strlen(p);
        if (n < 5 || strcmp(p + n - 5, ".yaml") != 0)
            continue;
        cfg_bootstrap *b = NULL;
        char err[CFG_ERR_MAX];
        int rc = cfg_load(p, NULL, &b, err, sizeof(err));
        current = p;
        if (rc == 0) {
            CHECK(b != NULL);
            cfg_free(b);
        } else {
            CHECK(b == NULL && rc == -EINVAL);
            if (regexec(re, err, 0, NULL, 0) != 0) {
                fprintf(stderr, "FAIL [%s] error not located: %s\n", p, err);
                failures++;
            }
        }
        count++;
    }
    closedir(d);
    return count;
}

static void test_examples(void)
{
    const char *src = getenv("PF_SOURCE_DIR");
    char dir[2048];
    regex_t re;
    if (regcomp(&re, "^[^:]+:[0-9]+:[0-9]+: ", REG_EXTENDED | REG_NOSUB) != 0) {
        failures++;
        return;
    }
    snprintf(dir, sizeof(dir), "%s/tests/unit/data/envoy-examples", src ? src : ".");
    int n = check_examples_dir(dir, &re);
    current = "bundled examples";
    CHECK(n >= 4);
    snprintf(dir, sizeof(dir), "%s/../shared/envoy-examples", src ? src : ".");
    n = check_examples_dir(dir, &re);
    if (n == 0)
        printf("note: %s not present, skipped\n", dir);
    regfree(&re);
}

int main(void)
{
    test_base();
    test_default();
    test_errors();
    test_yaml_errors();
    test_durations();
    test_json();
    test_yaml_features();
    test_node_locations();
    test_merge();
    test_examples();
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("test_config: all passed\n");
    return 0;
}
