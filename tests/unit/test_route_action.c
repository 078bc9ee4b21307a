/* Route actions: xxHash64, weighted picks (random, runtime weights, sticky
 * hashing), hash policies, rewrites, redirects, cluster_header and header
 * mutations with %VARIABLE% substitution. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "admin/runtime.h"
#include "proxy/route_action.h"
#include "proxy/route_headers.h"
#include "proxy/route_regex.h"
#include "proxy/worker.h"
#include "tests/unit/pftest.h"
#include "tests/unit/route_test_util.h"

static pf_str S(const char *s) { return (pf_str){ s, strlen(s) }; }

static bool str_is(pf_str s, const char *want)
{
    return s.n == strlen(want) && memcmp(s.p, want, s.n) == 0;
}

static void test_xxhash(void)
{
    CHECK(route_hash64("", 0) == 0xEF46DB3751D8E999ull);
    CHECK(route_hash64("abc", 3) == 0x44BC2CF5AD770999ull);
    const char *long_s = "Nobody inspects the spammish repetition";
    CHECK(route_hash64(long_s, strlen(long_s)) == 0xFBCEA83C8A378BF1ull);
}

static cfg_route weighted_route(cfg_weighted_cluster *w, uint32_t a, uint32_t b)
{
    w[0] = (cfg_weighted_cluster){ .name = "stable", .cluster_index = 0, .weight = a,
                                   .weight_end = a };
    w[1] = (cfg_weighted_cluster){ .name = "canary", .cluster_index = 1, .weight = b,
                                   .weight_end = (uint64_t)a + b };
    return (cfg_route){ .weighted = w, .n_weighted = 2, .total_weight = a + b };
}

static void test_weighted(void)
{
    cfg_weighted_cluster w[2];
    cfg_route r = weighted_route(w, 90, 10);
    /* random mode is Envoy's value % total over cumulative ranges */
    int n0 = 0;
    for (uint64_t v = 0; v < 1000; v++)
        n0 += route_weighted_pick(&r, NULL, v, false) == 0;
    CHECK(n0 == 900);
    CHECK(route_weighted_pick(&r, NULL, 89, false) == 0);
    CHECK(route_weighted_pick(&r, NULL, 90, false) == 1);

    /* runtime weights: <prefix>.<name>, the configured weight as default */
    w[0].runtime_key = "routing.traffic_shift.app.stable";
    w[1].runtime_key = "routing.traffic_shift.app.canary";
    r.wc_runtime = true;
    runtime_entry e[2] = { { .key = "routing.traffic_shift.app.canary", .value = "50" },
                           { .key = "routing.traffic_shift.app.stable", .value = "50" } };
    runtime_entry_resolve(&e[0]);
    runtime_entry_resolve(&e[1]);
    pf_runtime_snapshot snap = { .entries = e, .n = 2 };
    n0 = 0;
    for (uint64_t v = 0; v < 1000; v++)
        n0 += route_weighted_pick(&r, &snap, v, false) == 0;
    CHECK(n0 == 500);
    n0 = 0;
    for (uint64_t v = 0; v < 1000; v++)
        n0 += route_weighted_pick(&r, NULL, v, false) == 0;
    CHECK(n0 == 900);
    snap.n = 1;                         /* only canary=50 set: stable keeps 90 */
    CHECK(route_weighted_pick(&r, &snap, 89, false) == 0);
    CHECK(route_weighted_pick(&r, &snap, 91, false) == 1);
    e[0].value = "0";
    runtime_entry_resolve(&e[0]);
    e[1].value = "0";
    runtime_entry_resolve(&e[1]);
    snap.n = 2;
    CHECK(route_weighted_pick(&r, &snap, 5, false) == r.n_weighted);   /* all zero */
}

static void test_sticky(void)
{
    enum { USERS = 100000 };
    cfg_weighted_cluster w[2];
    cfg_route r90 = weighted_route(w, 90, 10);
    unsigned char *before = malloc(USERS);
    char id[32];
    int canary = 0;
    for (int u = 0; u < USERS; u++) {
        int n = snprintf(id, sizeof id, "user-%d", u);
        before[u] = (unsigned char)route_weighted_pick(&r90, NULL, route_hash64(id, (size_t)n),
                                                       true);
        canary += before[u];
    }
    /* the split holds for hashed users too */
    CHECK(canary > USERS * 9 / 100 && canary < USERS * 11 / 100);
    /* stable while the weights hold (deterministic: 100%) */
    int same = 0;
    for (int u = 0; u < USERS; u++) {
        int n = snprintf(id, sizeof id, "user-%d", u);
        same += route_weighted_pick(&r90, NULL, route_hash64(id, (size_t)n), true) == before[u];
    }
    CHECK(same >= USERS * 999 / 1000);
    /* 90/10 -> 80/20: ~10% move, all from stable to canary */
    cfg_weighted_cluster w2[2];
    cfg_route r80 = weighted_route(w2, 80, 20);
    int moved = 0, wrong_way = 0;
    for (int u = 0; u < USERS; u++) {
        int n = snprintf(id, sizeof id, "user-%d", u);
        size_t now = route_weighted_pick(&r80, NULL, route_hash64(id, (size_t)n), true);
        if (now != before[u]) {
            moved++;
            wrong_way += !(before[u] == 0 && now == 1);
        }
    }
    CHECK(moved > USERS * 9 / 100 && moved < USERS * 11 / 100);
    CHECK(wrong_way == 0);
    /* a different total (9/1 -> 160/40) keeps the same fractions */
    cfg_weighted_cluster w3[2];
    cfg_route r9 = weighted_route(w3, 9, 1);
    same = 0;
    for (int u = 0; u < USERS; u++) {
        int n = snprintf(id, sizeof id, "user-%d", u);
        same += route_weighted_pick(&r9, NULL, route_hash64(id, (size_t)n), true) == before[u];
    }
    CHECK(same >= USERS * 999 / 1000);
    free(before);
}

static void test_regex_rewrite(void)
{
    char err[256];
    cfg_regex_rewrite rr = { .subst = "/v2/\\1/\\2", .subst_len = 9 };
    CHECK(cfg_regex_init(&rr.re, "^/api/([a-z]+)/([0-9]+)$", false, err, sizeof err, NULL) == 0);
    pf_arena a;
    pf_arena_init(&a);
    pf_str out = { 0 };
    CHECK(route_regex_rewrite(&rr, "/api/users/42", 13, &a, &out) == 0);
    CHECK(str_is(out, "/v2/users/42"));
    cfg_regex_free(&rr.re);
    /* global replace */
    cfg_regex_rewrite g = { .subst = "_", .subst_len = 1 };
    CHECK(cfg_regex_init(&g.re, "o", false, err, sizeof err, NULL) == 0);
    out = (pf_str){ 0 };
    CHECK(route_regex_rewrite(&g, "/foo/boo", 8, &a, &out) == 0);
    CHECK(str_is(out, "/f__/b__"));
    cfg_regex_free(&g.re);
    /* compile errors carry the offset */
    size_t off = 0;
    cfg_regex bad = { 0 };
    CHECK(cfg_regex_init(&bad, "ab[", true, err, sizeof err, &off) != 0 && off == 3);
    pf_arena_reset(&a);
}

/* ---- whole actions on a fake stream ---- */

static const char ACTION_RC[] =
    "            request_headers_to_add:\n"
    "            - header: {key: x-level, value: global}\n"
    "              append_action: OVERWRITE_IF_EXISTS_OR_ADD\n"
    "            response_headers_to_add:\n"
    "            - header: {key: x-resp-global, value: \"%RESPONSE_CODE%\"}\n"
    "            virtual_hosts:\n"
    "            - name: vh\n"
    "              domains: [\"*\"]\n"
    "              request_headers_to_add:\n"
    "              - header: {key: x-level, value: vhost}\n"
    "                append_action: OVERWRITE_IF_EXISTS_OR_ADD\n"
    "              routes:\n"
    "              - name: hdr\n"
    "                match: {prefix: /hdr}\n"
    "                route: {cluster: c1, prefix_rewrite: /new, host_rewrite_literal: up.example}\n"
    "                request_headers_to_add:\n"
    "                - header: {key: x-client, value: \"%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%\"}\n"
    "                - header: {key: x-both, value: \"%DOWNSTREAM_REMOTE_ADDRESS% via %PROTOCOL% 100%%\"}\n"
    "                - header: {key: x-ua, value: \"ua=%REQ(User-Agent)%\"}\n"
    "                - header: {key: x-empty, value: \"%REQ(x-missing)%\"}\n"
    "                - header: {key: x-keep, value: \"%REQ(x-missing)%\"}\n"
    "                  keep_empty_value: true\n"
    "                - header: {key: x-exist, value: added}\n"
    "                  append_action: ADD_IF_ABSENT\n"
    "                - header: {key: x-over, value: new}\n"
    "                  append_action: OVERWRITE_IF_EXISTS\n"
    "                - header: {key: x-nope, value: new}\n"
    "                  append_action: OVERWRITE_IF_EXISTS\n"
    "                - header: {key: x-app, value: two}\n"
    "                - header: {key: x-level, value: route}\n"
    "                  append: false\n"
    "                request_headers_to_remove: [x-secret]\n"
    "                response_headers_to_add:\n"
    "                - header: {key: x-route, value: yes}\n"
    "                response_headers_to_remove: [x-internal]\n"
    "              - name: ch\n"
    "                match: {prefix: /ch}\n"
    "                route: {cluster_header: x-cluster}\n"
    "              - name: sticky\n"
    "                match: {prefix: /sticky}\n"
    "                route:\n"
    "                  weighted_clusters:\n"
    "                    clusters:\n"
    "                    - name: c1\n"
    "                      weight: 90\n"
    "                      request_headers_to_add: [{header: {key: x-wc, value: c1}}]\n"
    "                    - {name: c2, weight: 10, host_rewrite_literal: canary.example}\n"
    "                  hash_policy:\n"
    "                  - header: {header_name: x-user}\n"
    "                    terminal: true\n"
    "                  - cookie: {name: sid, ttl: 3600s, path: /}\n"
    "              - name: rx\n"
    "                match: {safe_regex: {regex: \"/rx/.*\"}}\n"
    "                route: {cluster: c1, regex_rewrite: {pattern: {regex: \"^/rx/(.*)$\"}, substitution: \"/\\\\1/end\"}}\n"
    "              - name: redir\n"
    "                match: {prefix: /old}\n"
    "                redirect: {prefix_rewrite: /new, response_code: FOUND}\n"
    "              - name: https\n"
    "                match: {prefix: /secure}\n"
    "                redirect: {https_redirect: true, strip_query: true}\n"
    "              - name: full\n"
    "                match: {prefix: /full}\n"
    "                redirect: {scheme_redirect: https, host_redirect: new.example, port_redirect: 8443, path_redirect: /landing}\n";

typedef struct fake {
    pf_worker w;
    struct sockaddr_storage remote, local;
    pf_stream *s;
} fake;

static pf_stream *new_stream(fake *f, const cfg_bootstrap *b, const char *path)
{
    if (!f->s) {
        f->s = calloc(1, sizeof(pf_stream));
        pf_arena_init(&f->s->arena);
    }
    pf_stream *s = f->s;
    pf_arena_reset(&s->arena);
    size_t off = offsetof(pf_stream, method);
    memset((char *)s + off, 0, offsetof(pf_stream, arena) - off);
    f->w.cfg = b;
    if (!f->w.rng[0])
        f->w.rng[0] = 0x1234, f->w.rng[1] = 0x5678;
    struct sockaddr_in *in = (struct sockaddr_in *)&f->remote;
    in->sin_family = AF_INET;
    in->sin_port = htons(40000);
    inet_pton(AF_INET, "10.1.2.3", &in->sin_addr);
    in = (struct sockaddr_in *)&f->local;
    in->sin_family = AF_INET;
    in->sin_port = htons(8080);
    inet_pton(AF_INET, "127.0.0.1", &in->sin_addr);
    s->w = &f->w;
    s->hcm = route_test_hcm(b);
    s->method = S("GET");
    s->path = S(path);
    s->authority = S("client.example");
    s->scheme = S("http");
    s->protocol = S("HTTP/1.1");
    s->downstream_remote = &f->remote;
    s->downstream_local = &f->local;
    return s;
}

static pf_str hv(const pf_hdrs *h, const char *name)
{
    pf_hdr *x = pf_hdrs_get(h, name, strlen(name));
    return x ? x->value : (pf_str){ NULL, 0 };
}

static unsigned count(const pf_hdrs *h, const char *name)
{
    unsigned n = 0;
    for (uint32_t i = 0; i < h->n; i++)
        n += pf_str_eq(h->v[i].name, name, strlen(name));
    return n;
}

static void test_actions(void)
{
    char err[CFG_ERR_MAX];
    cfg_bootstrap *b = route_test_load(ACTION_RC, err);
    CHECK(b != NULL);
    if (!b) {
        fprintf(stderr, "load: %s\n", err);
        return;
    }
    fake f = { 0 };
    pf_stream *s = new_stream(&f, b, "/hdr/x?q=1");
    pf_hdrs_add(&s->req_hdrs, &s->arena, S("user-agent"), S("curl/8"));
    pf_hdrs_add(&s->req_hdrs, &s->arena, S("x-secret"), S("s"));
    pf_hdrs_add(&s->req_hdrs, &s->arena, S("x-exist"), S("orig"));
    pf_hdrs_add(&s->req_hdrs, &s->arena, S("x-over"), S("old"));
    pf_hdrs_add(&s->req_hdrs, &s->arena, S("x-app"), S("one"));
    CHECK(route_action_select(s) == ROUTE_FORWARD && s->cluster == 0);
    route_action_apply_request(s);
    CHECK(str_is(s->path, "/new/x?q=1"));
    CHECK(str_is(hv(&s->req_hdrs, "x-envoy-original-path"), "/hdr/x?q=1"));
    CHECK(str_is(s->authority, "up.example"));
    CHECK(str_is(hv(&s->req_hdrs, "x-client"), "10.1.2.3"));
    CHECK(str_is(hv(&s->req_hdrs, "x-both"), "10.1.2.3:40000 via HTTP/1.1 100%"));
    CHECK(str_is(hv(&s->req_hdrs, "x-ua"), "ua=curl/8"));
    CHECK(count(&s->req_hdrs, "x-empty") == 0);
    CHECK(count(&s->req_hdrs, "x-keep") == 1 && hv(&s->req_hdrs, "x-keep").n == 0);
    CHECK(str_is(hv(&s->req_hdrs, "x-exist"), "orig") && count(&s->req_hdrs, "x-exist") == 1);
    CHECK(str_is(hv(&s->req_hdrs, "x-over"), "new") && count(&s->req_hdrs, "x-over") == 1);
    CHECK(count(&s->req_hdrs, "x-nope") == 0);
    CHECK(count(&s->req_hdrs, "x-app") == 2);
    CHECK(count(&s->req_hdrs, "x-secret") == 0);
    /* route, then vhost, then route config: the least specific overwrite wins */
    CHECK(str_is(hv(&s->req_hdrs, "x-level"), "global") && count(&s->req_hdrs, "x-level") == 1);
    s->status = 200;
    pf_hdrs_add(&s->resp_hdrs, &s->arena, S("x-internal"), S("1"));
    route_action_apply_response(s);
    CHECK(count(&s->resp_hdrs, "x-internal") == 0);
    CHECK(str_is(hv(&s->resp_hdrs, "x-route"), "yes"));
    CHECK(str_is(hv(&s->resp_hdrs, "x-resp-global"), "200"));
    CHECK(count(&s->resp_hdrs, "location") == 0 && count(&s->resp_hdrs, "set-cookie") == 0);

    /* cluster_header */
    s = new_stream(&f, b, "/ch");
    CHECK(route_action_select(s) == ROUTE_NO_CLUSTER);
    s = new_stream(&f, b, "/ch");
    pf_hdrs_add(&s->req_hdrs, &s->arena, S("x-cluster"), S("nope"));
    CHECK(route_action_select(s) == ROUTE_NO_CLUSTER && s->route->cluster_not_found_code == 503);
    s = new_stream(&f, b, "/ch");
    pf_hdrs_add(&s->req_hdrs, &s->arena, S("x-cluster"), S("c3"));
    CHECK(route_action_select(s) == ROUTE_FORWARD && s->cluster == 2);

    /* sticky: one user always gets one cluster; no cookie when the header hashed */
    int first = -1, stable = 1;
    for (int i = 0; i < 50; i++) {
        s = new_stream(&f, b, "/sticky");
        pf_hdrs_add(&s->req_hdrs, &s->arena, S("x-user"), S("alice"));
        CHECK(route_action_select(s) == ROUTE_FORWARD);
        if (first < 0)
            first = (int)s->cluster;
        stable &= (int)s->cluster == first;
        CHECK(s->set_cookie.p == NULL);
    }
    CHECK(stable);
    /* users spread ~90/10 */
    int canary = 0;
    for (int i = 0; i < 2000; i++) {
        char u[32];
        snprintf(u, sizeof u, "u%d", i);
        s = new_stream(&f, b, "/sticky");
        pf_hdrs_add(&s->req_hdrs, &s->arena, S("x-user"), S(u));
        route_action_select(s);
        canary += s->cluster == 1;
        if (s->cluster == 1) {
            route_action_apply_request(s);
            CHECK(str_is(s->authority, "canary.example"));
            CHECK(count(&s->req_hdrs, "x-wc") == 0);
        } else {
            route_action_apply_request(s);
            CHECK(str_is(hv(&s->req_hdrs, "x-wc"), "c1"));
        }
    }
    CHECK(canary > 120 && canary < 280);
    /* no header: the cookie; absent -> generated and set on the response */
    s = new_stream(&f, b, "/sticky");
    CHECK(route_action_select(s) == ROUTE_FORWARD && s->has_route_hash);
    CHECK(s->set_cookie.p != NULL);
    pf_str sc = s->set_cookie;
    CHECK(sc.n > 30 && !memcmp(sc.p, "sid=\"", 5));
    CHECK(memmem(sc.p, sc.n, "; Max-Age=3600; Path=/; HttpOnly", 32) != NULL);
    char cookie[64];
    snprintf(cookie, sizeof cookie, "sid=%.16s", sc.p + 5);
    size_t c0 = s->cluster;
    uint64_t h0 = s->route_hash;
    s->status = 200;
    route_action_apply_response(s);
    CHECK(count(&s->resp_hdrs, "set-cookie") == 1);
    s = new_stream(&f, b, "/sticky");
    pf_hdrs_add(&s->req_hdrs, &s->arena, S("cookie"), S(cookie));
    CHECK(route_action_select(s) == ROUTE_FORWARD && s->set_cookie.p == NULL);
    CHECK(s->route_hash == h0 && s->cluster == c0);

    /* regex rewrite */
    s = new_stream(&f, b, "/rx/a/b?z");
    CHECK(route_action_select(s) == ROUTE_FORWARD);
    route_action_apply_request(s);
    CHECK(str_is(s->path, "/a/b/end?z"));

    /* redirects */
    s = new_stream(&f, b, "/old/page?x=1");
    CHECK(route_action_select(s) == ROUTE_REDIRECT && s->route->redirect.code == 302);
    CHECK(str_is(s->redirect_location, "http://client.example/new/page?x=1"));
    s = new_stream(&f, b, "/secure/a?b=c");
    s->authority = S("client.example:80");
    CHECK(route_action_select(s) == ROUTE_REDIRECT && s->route->redirect.code == 301);
    CHECK(str_is(s->redirect_location, "https://client.example/secure/a"));
    s = new_stream(&f, b, "/full/a?b=c");
    CHECK(route_action_select(s) == ROUTE_REDIRECT);
    CHECK(str_is(s->redirect_location, "https://new.example:8443/landing?b=c"));
    s->status = 302;
    route_action_apply_response(s);
    CHECK(str_is(hv(&s->resp_hdrs, "location"), "https://new.example:8443/landing?b=c"));

    /* auto_host_rewrite hook is a no-op without the flag */
    s = new_stream(&f, b, "/hdr");
    route_action_select(s);
    route_action_host_rewrite(s, &f.local);
    CHECK(str_is(s->authority, "client.example"));

    pf_arena_reset(&f.s->arena);
    free(f.s);
    cfg_free(b);
}

static void expect_err(const char *rc_body, const char *want)
{
    char err[CFG_ERR_MAX];
    cfg_bootstrap *b = route_test_load(rc_body, err);
    CHECK(b == NULL);
    if (b)
        cfg_free(b);
    if (!strstr(err, want)) {
        fprintf(stderr, "want '%s'\n got '%s'\n", want, err);
        pf_test_failures++;
    }
}

#define ROUTE_WITH(action)                                                        \
    "            virtual_hosts:\n"                                                \
    "            - name: vh\n"                                                    \
    "              domains: [\"*\"]\n"                                            \
    "              routes:\n"                                                     \
    "              - match: {prefix: /}\n"                                        \
    "                " action "\n"

static void test_errors(void)
{
    expect_err(ROUTE_WITH("route: {cluster: c1, hash_policy: [{filter_state: {key: k}}]}"),
               "hash_policy[0].filter_state: not supported yet");
    expect_err(ROUTE_WITH("route: {cluster: c1}\n"
                          "                request_headers_to_add: [{header: {key: x, value: \"%UPSTREAM_METADATA([\\\"a\\\"])%\"}}]"),
               "request_headers_to_add[0].header.value: not supported yet: %UPSTREAM_METADATA%");
    expect_err(ROUTE_WITH("route: {cluster: c1}\n"
                          "                request_headers_to_add: [{header: {key: x, value: \"%BOGUS%\"}}]"),
               "unknown variable %BOGUS%");
    expect_err(ROUTE_WITH("route: {cluster: c1}\n"
                          "                request_headers_to_add: [{header: {key: x, value: \"50%\"}}]"),
               "a '%' must start a %VARIABLE%");
    expect_err(ROUTE_WITH("route: {cluster: c1}\n"
                          "                request_headers_to_add: [{header: {key: x, value: \"%RESPONSE_CODE%\"}}]"),
               "%RESPONSE_CODE% is only available in response headers");
    expect_err(ROUTE_WITH("route: {cluster: c1}\n"
                          "                request_headers_to_add: [{header: {key: host, value: x}}]"),
               "':'-prefixed or host headers may not be modified");
    expect_err(ROUTE_WITH("route: {cluster: c1}\n"
                          "                request_headers_to_add: [{header: {key: x, value: y}, append: true, append_action: ADD_IF_ABSENT}]"),
               "only one of 'append' and 'append_action' may be set");
    expect_err(ROUTE_WITH("route: {cluster: c1, regex_rewrite: {pattern: {regex: \"(\"}, substitution: x}}"),
               "route.regex_rewrite.pattern.regex: invalid regex at offset 1");
    expect_err(ROUTE_WITH("route: {cluster: c1, prefix_rewrite: /a, regex_rewrite: {pattern: {regex: a}, substitution: b}}"),
               "only one of 'prefix_rewrite' and 'regex_rewrite' may be set");
    expect_err(ROUTE_WITH("route: {cluster: c1, cluster_header: x}"),
               "only one of 'cluster' and 'cluster_header' may be set");
    expect_err(ROUTE_WITH("redirect: {response_code: MOVED}"),
               "redirect.response_code");
    expect_err(ROUTE_WITH("route: {cluster: c1}\n                redirect: {path_redirect: /x}"),
               "only one of 'route' and 'redirect' may be set");
    expect_err(ROUTE_WITH("route: {weighted_clusters: {clusters: [{name: c1, weight: 1, cluster_header: x}]}}"),
               "cluster_header: not supported yet");
}

int main(void)
{
    test_xxhash();
    test_weighted();
    test_sticky();
    test_regex_rewrite();
    test_actions();
    test_errors();
    return TEST_DONE();
}
