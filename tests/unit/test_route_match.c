/* Virtual host and route selection in Envoy's order; every RouteMatch
 * matcher; config errors of the route matchers. */
#include <string.h>

#include "admin/runtime.h"
#include "proxy/http.h"
#include "proxy/route_match.h"
#include "tests/unit/pftest.h"
#include "tests/unit/route_test_util.h"

static pf_str S(const char *s) { return (pf_str){ s, strlen(s) }; }

static void test_domains(void)
{
    char *d_exact[] = { "api.example.com" };
    char *d_suffix[] = { "*.example.com" };
    char *d_longer_suffix[] = { "*.b.example.com" };
    char *d_prefix[] = { "api.*" };
    char *d_any[] = { "*" };
    char *d_port[] = { "host:8080" };
    char *d_v6[] = { "[::1]" };
    cfg_virtual_host vh[] = {
        { .name = "any", .domains = d_any, .n_domains = 1 },
        { .name = "prefix", .domains = d_prefix, .n_domains = 1 },
        { .name = "suffix", .domains = d_suffix, .n_domains = 1 },
        { .name = "longer", .domains = d_longer_suffix, .n_domains = 1 },
        { .name = "exact", .domains = d_exact, .n_domains = 1 },
        { .name = "port", .domains = d_port, .n_domains = 1 },
        { .name = "v6", .domains = d_v6, .n_domains = 1 },
    };
    cfg_route_config rc = { .vhosts = vh, .n_vhosts = 7 };

    CHECK(strcmp(route_find_vhost(&rc, S("api.example.com"))->name, "exact") == 0);
    CHECK(strcmp(route_find_vhost(&rc, S("API.Example.COM"))->name, "exact") == 0);
    CHECK(strcmp(route_find_vhost(&rc, S("x.example.com"))->name, "suffix") == 0);
    CHECK(strcmp(route_find_vhost(&rc, S("x.b.example.com"))->name, "longer") == 0);
    CHECK(strcmp(route_find_vhost(&rc, S("api.other.org"))->name, "prefix") == 0);
    CHECK(strcmp(route_find_vhost(&rc, S("example.com"))->name, "any") == 0);
    CHECK(strcmp(route_find_vhost(&rc, S(".example.com"))->name, "any") == 0);
    CHECK(strcmp(route_find_vhost(&rc, S("host:8080"))->name, "port") == 0);
    CHECK(strcmp(route_find_vhost(&rc, S("host:9090"))->name, "any") == 0);
    /* the port is part of the host by default */
    CHECK(strcmp(route_find_vhost(&rc, S("api.example.com:80"))->name, "prefix") == 0);
    rc.ignore_port_in_host_matching = true;
    CHECK(strcmp(route_find_vhost(&rc, S("api.example.com:80"))->name, "exact") == 0);
    CHECK(strcmp(route_find_vhost(&rc, S("[::1]:8080"))->name, "v6") == 0);
    CHECK(strcmp(route_find_vhost(&rc, S("host:8080"))->name, "any") == 0);
}

static const char *route_name(const cfg_route_config *rc, const route_req *rq)
{
    const cfg_virtual_host *vh = route_find_vhost(rc, rq->authority);
    const cfg_route *r = vh ? route_match(vh, rq) : NULL;
    return r ? (r->name ? r->name : "?") : "NONE";
}

static const char MATCH_RC[] =
    "            virtual_hosts:\n"
    "            - name: vh\n"
    "              domains: [\"*\"]\n"
    "              routes:\n"
    "              - {name: exact, match: {path: /exact}, route: {cluster: c1}}\n"
    "              - {name: ci, match: {prefix: /CaSe, case_sensitive: false}, route: {cluster: c1}}\n"
    "              - {name: sep, match: {path_separated_prefix: /sep}, route: {cluster: c1}}\n"
    "              - {name: re, match: {safe_regex: {google_re2: {}, regex: \"/re/[0-9]+\"}}, route: {cluster: c1}}\n"
    "              - {name: canary, match: {prefix: /app, headers: [{name: X-Canary, string_match: {exact: always}}]}, route: {cluster: c2}}\n"
    "              - {name: hprefix, match: {prefix: /h, headers: [{name: x-a, prefix_match: ab}, {name: x-b, string_match: {suffix: YZ, ignore_case: true}}]}, route: {cluster: c2}}\n"
    "              - {name: hcontains, match: {prefix: /hc, headers: [{name: x-c, string_match: {contains: mid}}]}, route: {cluster: c2}}\n"
    "              - {name: hregex, match: {prefix: /hr, headers: [{name: x-r, safe_regex_match: {regex: \"v[0-9]\"}}]}, route: {cluster: c2}}\n"
    "              - {name: hpresent, match: {prefix: /hp, headers: [{name: x-p, present_match: true}]}, route: {cluster: c2}}\n"
    "              - {name: habsent, match: {prefix: /hp, headers: [{name: x-p, present_match: false}]}, route: {cluster: c3}}\n"
    "              - {name: hinvert, match: {prefix: /hi, headers: [{name: x-i, exact_match: no, invert_match: true}]}, route: {cluster: c2}}\n"
    "              - {name: hrange, match: {prefix: /rg, headers: [{name: x-n, range_match: {start: -5, end: 10}}]}, route: {cluster: c2}}\n"
    "              - {name: hbare, match: {prefix: /hb, headers: [{name: x-bare}]}, route: {cluster: c2}}\n"
    "              - {name: hmissing, match: {prefix: /hm, headers: [{name: x-m, string_match: {exact: \"\"}, treat_missing_header_as_empty: true}]}, route: {cluster: c2}}\n"
    "              - {name: hmethod, match: {prefix: /meth, headers: [{name: \":method\", exact_match: POST}]}, route: {cluster: c2}}\n"
    "              - {name: q, match: {prefix: /q, query_parameters: [{name: debug, string_match: {exact: \"1\"}}, {name: user, present_match: true}]}, route: {cluster: c2}}\n"
    "              - {name: qp, match: {prefix: /qp, query_parameters: [{name: flag}]}, route: {cluster: c2}}\n"
    "              - {name: grpc, match: {prefix: /svc, grpc: {}}, route: {cluster: c2}}\n"
    "              - {name: rf, match: {prefix: /rf, runtime_fraction: {default_value: {numerator: 30, denominator: HUNDRED}, runtime_key: routing.rf}}, route: {cluster: c2}}\n"
    "              - {name: rf0, match: {prefix: /rf0, runtime_fraction: {default_value: {numerator: 0}}}, route: {cluster: c2}}\n"
    "              - {name: fallback, match: {prefix: /}, route: {cluster: c3}}\n";

static void test_matchers(void)
{
    char err[CFG_ERR_MAX];
    cfg_bootstrap *b = route_test_load(MATCH_RC, err);
    CHECK(b != NULL);
    if (!b) {
        fprintf(stderr, "load: %s\n", err);
        return;
    }
    const cfg_route_config *rc = route_test_rc(b);
    pf_arena a;
    pf_arena_init(&a);
    pf_hdrs h = { 0 };
    route_req rq = { .authority = S("example.com"), .method = S("GET"), .hdrs = &h };
#define P(x) (rq.path = S(x), route_name(rc, &rq))
#define HDR(n, v) pf_hdrs_add(&h, &a, S(n), S(v))
#define CLEAR() (h = (pf_hdrs){ 0 })
    CHECK(!strcmp(P("/exact"), "exact"));
    CHECK(!strcmp(P("/exact?x=1"), "exact"));
    CHECK(!strcmp(P("/exactly"), "fallback"));
    CHECK(!strcmp(P("/Exact"), "fallback"));        /* case-sensitive by default */
    CHECK(!strcmp(P("/case/x"), "ci"));
    CHECK(!strcmp(P("/CASE"), "ci"));
    CHECK(!strcmp(P("/sep"), "sep"));
    CHECK(!strcmp(P("/sep/x"), "sep"));
    CHECK(!strcmp(P("/sep?q"), "sep"));
    CHECK(!strcmp(P("/sepx"), "fallback"));
    CHECK(!strcmp(P("/re/123"), "re"));
    CHECK(!strcmp(P("/re/123?a=b"), "re"));         /* the query is not matched */
    CHECK(!strcmp(P("/re/12a"), "fallback"));       /* full match */
    CHECK(!strcmp(P("/x/re/1"), "fallback"));

    CHECK(!strcmp(P("/app"), "fallback"));
    HDR("x-canary", "always");
    CHECK(!strcmp(P("/app/x"), "canary"));
    CLEAR();
    HDR("x-canary", "Always");
    CHECK(!strcmp(P("/app/x"), "fallback"));
    CLEAR();
    HDR("x-a", "abc");
    HDR("x-b", "xxyz");
    CHECK(!strcmp(P("/h"), "hprefix"));
    CLEAR();
    HDR("x-a", "abc");
    CHECK(!strcmp(P("/h"), "fallback"));
    CLEAR();
    HDR("x-c", "amidst");
    CHECK(!strcmp(P("/hc"), "hcontains"));
    CLEAR();
    HDR("x-r", "v1");
    CHECK(!strcmp(P("/hr"), "hregex"));
    CLEAR();
    HDR("x-r", "v12");
    CHECK(!strcmp(P("/hr"), "fallback"));
    CLEAR();
    HDR("x-p", "");
    CHECK(!strcmp(P("/hp"), "hpresent"));
    CLEAR();
    CHECK(!strcmp(P("/hp"), "habsent"));
    HDR("x-i", "yes");
    CHECK(!strcmp(P("/hi"), "hinvert"));
    CLEAR();
    HDR("x-i", "no");
    CHECK(!strcmp(P("/hi"), "fallback"));
    CLEAR();
    CHECK(!strcmp(P("/hi"), "fallback"));           /* missing never matches, even inverted */
    HDR("x-n", "-5");
    CHECK(!strcmp(P("/rg"), "hrange"));
    CLEAR();
    HDR("x-n", "10");
    CHECK(!strcmp(P("/rg"), "fallback"));
    CLEAR();
    HDR("x-n", "9x");
    CHECK(!strcmp(P("/rg"), "fallback"));
    CLEAR();
    CHECK(!strcmp(P("/hb"), "fallback"));
    HDR("x-bare", "1");
    CHECK(!strcmp(P("/hb"), "hbare"));
    CLEAR();
    CHECK(!strcmp(P("/hm"), "hmissing"));
    rq.method = S("POST");
    CHECK(!strcmp(P("/meth"), "hmethod"));
    rq.method = S("GET");
    CHECK(!strcmp(P("/meth"), "fallback"));
    /* repeated headers are joined with ',' */
    HDR("x-c", "a");
    HDR("x-c", "mid");
    CHECK(!strcmp(P("/hc"), "hcontains"));
    CLEAR();

    CHECK(!strcmp(P("/q?debug=1&user=bob"), "q"));
    CHECK(!strcmp(P("/q?user&debug=1"), "q"));
    CHECK(!strcmp(P("/q?debug=2&user=bob"), "fallback"));
    CHECK(!strcmp(P("/q?debug=1"), "fallback"));
    CHECK(!strcmp(P("/qp?flag"), "qp"));
    CHECK(!strcmp(P("/qp?flags=1"), "fallback"));

    CHECK(!strcmp(P("/svc/M"), "fallback"));
    HDR("content-type", "application/grpc");
    CHECK(!strcmp(P("/svc/M"), "grpc"));
    CLEAR();
    HDR("content-type", "application/grpc+proto");
    CHECK(!strcmp(P("/svc/M"), "grpc"));
    CLEAR();
    HDR("content-type", "application/grpcx");
    CHECK(!strcmp(P("/svc/M"), "fallback"));
    CLEAR();

    /* runtime_fraction: default 30% of random % 100 */
    int hits = 0;
    for (uint64_t r = 0; r < 1000; r++) {
        rq.random = r;
        hits += !strcmp(P("/rf"), "rf");
    }
    CHECK(hits == 300);
    /* a fake runtime snapshot overriding the key with 75 */
    runtime_entry e = { .key = "routing.rf", .value = "75" };
    runtime_entry_resolve(&e);
    pf_runtime_snapshot snap = { .entries = &e, .n = 1 };
    rq.runtime = &snap;
    hits = 0;
    for (uint64_t r = 0; r < 1000; r++) {
        rq.random = r;
        hits += !strcmp(P("/rf"), "rf");
    }
    CHECK(hits == 750);
    rq.runtime = NULL;
    CHECK(!strcmp(P("/rf0"), "fallback"));
#undef P
#undef HDR
#undef CLEAR
    pf_arena_reset(&a);
    cfg_free(b);
}

static void expect_err(const char *routes, const char *want)
{
    char body[4096], err[CFG_ERR_MAX];
    snprintf(body, sizeof body,
             "            virtual_hosts:\n"
             "            - name: vh\n"
             "              domains: [\"*\"]\n"
             "              routes:\n"
             "              - %s\n", routes);
    cfg_bootstrap *b = route_test_load(body, err);
    CHECK(b == NULL);
    if (b)
        cfg_free(b);
    if (!strstr(err, want)) {
        fprintf(stderr, "want '%s'\n got '%s'\n", want, err);
        pf_test_failures++;
    }
}

static void test_errors(void)
{
    /* the regex error names the file, line and column of the regex */
    expect_err("{match: {safe_regex: {regex: \"/a(b\"}}, route: {cluster: c1}}",
               "r.yaml:19:46: static_resources.listeners[0].filter_chains[0].filters[0]."
               "typed_config.route_config.virtual_hosts[0].routes[0].match.safe_regex.regex: "
               "invalid regex at offset 4: missing closing parenthesis");
    expect_err("{match: {prefix: /, headers: [{name: x, safe_regex_match: {regex: \"[\"}}]}, "
               "route: {cluster: c1}}",
               "match.headers[0].safe_regex_match.regex: invalid regex at offset 1");
    expect_err("{match: {prefix: /, path: /x}, route: {cluster: c1}}",
               "only one of 'prefix' and 'path' may be set");
    expect_err("{match: {path_separated_prefix: /a/}, route: {cluster: c1}}",
               "match.path_separated_prefix: must be non-empty, must not end in '/'");
    expect_err("{match: {prefix: /, headers: [{name: x, exact_match: a, prefix_match: b}]}, "
               "route: {cluster: c1}}",
               "only one of 'exact_match' and 'prefix_match' may be set");
    expect_err("{match: {prefix: /, headers: [{name: x, range_match: {start: 5, end: 5}}]}, "
               "route: {cluster: c1}}",
               "range end must be greater than start");
    expect_err("{match: {prefix: /, query_parameters: [{name: q, string_match: {}}]}, "
               "route: {cluster: c1}}",
               "missing required field: one of 'exact'");
    expect_err("{match: {prefix: /, runtime_fraction: {default_value: {numerator: 1, "
               "denominator: BILLION}}}, route: {cluster: c1}}",
               "runtime_fraction.default_value.denominator");
    expect_err("{match: {prefix: /, tls_context: {}}, route: {cluster: c1}}",
               "not supported yet");
    expect_err("{match: {prefix: /}, route: {cluster: c1, request_mirror_policies: "
               "[{cluster: c1, host_rewrite_literal: x}]}}",
               "route.request_mirror_policies[0].host_rewrite_literal: not supported yet");
    expect_err("{match: {prefix: /}, route: {cluster: c1, retry_policy: {retry_on: 'nope'}}}",
               "route.retry_policy.retry_on: unknown retry condition 'nope'");
    expect_err("{match: {prefix: /}, route: {cluster: c1, retry_policy: {per_try_idle_timeout: 1s}}}",
               "route.retry_policy.per_try_idle_timeout: not supported yet");
}

int main(void)
{
    test_domains();
    test_matchers();
    test_errors();
    return TEST_DONE();
}
