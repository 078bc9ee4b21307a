/* The route index (proxy/route_index.c) against the plain first-match scan:
 * random route tables mixing every matcher kind over a small alphabet (so
 * keys collide, prefixes nest and headers repeat), random requests, and the
 * same route must come out of both. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "proxy/arena.h"
#include "proxy/route_match.h"
#include "pftest.h"
#include "route_test_util.h"

static const char *const PATHS[] = {"/", "/a", "/ab", "/abc", "/abc/", "/abc/d", "/abcdefgh",
                                    "/abcdefghij", "/abcdefghik", "/b", "/ba", "/A", "/ABC",
                                    "/abc?x=1", "/b/", ""};
#define N_PATHS (sizeof PATHS / sizeof PATHS[0])
static const char *const VALUES[] = {"1", "2", "", "12", "1,2"};
#define N_VALUES (sizeof VALUES / sizeof VALUES[0])
static const char *const NAMES[] = {"x-a", "x-b", ":method"};

static unsigned rnd(unsigned n)
{
    return (unsigned)(rand() / (RAND_MAX + 1.0) * n);
}

/* One random route line into buf. */
static void random_route(char *buf, size_t len, int i)
{
    char match[256], hdr[256] = "";
    const char *p = PATHS[rnd(N_PATHS - 2)];  /* no "" nor "/b/" as a key */
    switch (rnd(6)) {
    case 0: snprintf(match, sizeof match, "prefix: \"%s\"", p); break;
    case 1: snprintf(match, sizeof match, "path: \"%s\"", p); break;
    case 2: snprintf(match, sizeof match, "path_separated_prefix: \"%s\"",
                     strcmp(p, "/") && !strchr(p, '?') && p[strlen(p) - 1] != '/' ? p : "/a");
            break;
    case 3: snprintf(match, sizeof match, "prefix: \"%s\", case_sensitive: false", p); break;
    case 4: snprintf(match, sizeof match, "safe_regex: {regex: \"/a.*\"}"); break;
    default: snprintf(match, sizeof match, "prefix: \"\""); break;
    }
    unsigned nh = rnd(3);
    for (unsigned h = 0; h < nh; h++) {
        const char *name = NAMES[rnd(3)];
        const char *v = strcmp(name, ":method") ? VALUES[rnd(N_VALUES)] : rnd(2) ? "GET" : "POST";
        char one[128];
        switch (rnd(4)) {
        case 0: snprintf(one, sizeof one, "{name: \"%s\", exact_match: \"%s\", invert_match: true}",
                         name, v); break;
        case 1: snprintf(one, sizeof one, "{name: \"%s\", string_match: {exact: \"%s\"}, "
                         "treat_missing_header_as_empty: true}", name, v); break;
        case 2: snprintf(one, sizeof one, "{name: \"%s\", string_match: {exact: \"%s\", "
                         "ignore_case: true}}", name, v); break;
        default: snprintf(one, sizeof one, "{name: \"%s\", string_match: {exact: \"%s\"}}",
                          name, v); break;
        }
        strcat(hdr, h ? ", " : "");
        strcat(hdr, one);
    }
    snprintf(buf, len, "              - {name: r%d, match: {%s%s%s%s}, route: {cluster: c1}}\n",
             i, match, nh ? ", headers: [" : "", hdr, nh ? "]" : "");
}

static void one_table(unsigned n_routes, unsigned n_requests)
{
    size_t cap = 256 + (size_t)n_routes * 600;
    char *rc_text = malloc(cap);
    size_t used = (size_t)snprintf(rc_text, cap, "            virtual_hosts:\n"
                                   "            - name: vh\n              domains: [\"*\"]\n"
                                   "              routes:\n");
    for (unsigned i = 0; i < n_routes; i++)
        random_route(rc_text + used, cap - used, (int)i), used += strlen(rc_text + used);
    char err[CFG_ERR_MAX];
    cfg_bootstrap *b = route_test_load(rc_text, err);
    CHECK(b != NULL);
    if (!b) {
        fprintf(stderr, "load: %s\n", err);
        free(rc_text);
        return;
    }
    const cfg_virtual_host *vh = &route_test_rc(b)->vhosts[0];
    CHECK(vh->index != NULL);
    cfg_virtual_host scan = *vh;
    scan.index = NULL;
    pf_arena a;
    pf_arena_init(&a);
    for (unsigned q = 0; q < n_requests; q++) {
        pf_arena_reset(&a);
        pf_hdrs h = {0};
        route_req rq = {.authority = {"x", 1}, .method = {rnd(2) ? "GET" : "POST", 0},
                        .hdrs = &h};
        rq.method.n = strlen(rq.method.p);
        const char *p = PATHS[rnd(N_PATHS)];
        rq.path = (pf_str){p, strlen(p)};
        unsigned nh = rnd(4);
        for (unsigned k = 0; k < nh; k++) {
            const char *v = VALUES[rnd(N_VALUES)];
            pf_hdrs_add(&h, &a, (pf_str){NAMES[k % 2], 3}, (pf_str){v, strlen(v)});
        }
        const cfg_route *want = route_match(&scan, &rq), *got = route_match(vh, &rq);
        if (want != got)
            fprintf(stderr, "path %s: scan %s, index %s\n", p, want ? want->name : "-",
                    got ? got->name : "-");
        CHECK(want == got);
    }
    pf_arena_reset(&a);
    cfg_free(b);
    free(rc_text);
}

int main(void)
{
    srand(7);
    for (int t = 0; t < 40; t++)
        one_table(16 + rnd(300), 400);
    return TEST_DONE();
}
