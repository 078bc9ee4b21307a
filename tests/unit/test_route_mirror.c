/* request_mirror_policies and virtual-host retry_policy as loaded: the
 * fields, and what is resolved at load for the request path (the retry
 * policy that applies, whether some mirror list applies). */
#include <string.h>

#include "config/config.h"
#include "config/retry_config.h"
#include "pftest.h"
#include "route_test_util.h"

static void test_mirror_fields(void)
{
    char err[CFG_ERR_MAX];
    cfg_bootstrap *b = route_test_load(
        "            virtual_hosts:\n"
        "            - name: vh\n"
        "              domains: [\"*\"]\n"
        "              routes:\n"
        "              - match: {prefix: /a}\n"
        "                route:\n"
        "                  cluster: c1\n"
        "                  request_mirror_policies:\n"
        "                  - {cluster: c3, trace_sampled: true}\n"
        "                  - cluster_header: X-Mirror\n"
        "                    disable_shadow_host_suffix_append: true\n"
        "                    runtime_fraction: {default_value: {numerator: 5, "
        "denominator: TEN_THOUSAND}, runtime_key: m.pct}\n"
        "              - match: {prefix: /}\n"
        "                route: {cluster: c1}\n",
        err);
    CHECK(b != NULL);
    if (!b) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    const cfg_virtual_host *vh = &route_test_rc(b)->vhosts[0];
    const cfg_route *r = &vh->routes[0];
    CHECK(r->mirrors.n == 2);
    CHECK(r->mirrored);
    const cfg_mirror_policy *m0 = &r->mirrors.v[0], *m1 = &r->mirrors.v[1];
    CHECK(m0->cluster && strcmp(m0->cluster, "c3") == 0 && m0->cluster_index == 2);
    CHECK(!m0->has_fraction && !m0->keep_host && !m0->cluster_header);
    CHECK(m1->cluster == NULL && m1->cluster_header_len == 8);
    CHECK(m1->cluster_header && strcmp(m1->cluster_header, "x-mirror") == 0);
    CHECK(m1->keep_host && m1->has_fraction);
    CHECK(m1->rf_num == 5 && m1->rf_den == 10000);
    CHECK(m1->rf_key && strcmp(m1->rf_key, "m.pct") == 0);
    CHECK(!vh->routes[1].mirrored);
    cfg_free(b);
}

static void test_levels(void)
{
    char err[CFG_ERR_MAX];
    cfg_bootstrap *b = route_test_load(
        "            request_mirror_policies: [{cluster: c3}]\n"
        "            virtual_hosts:\n"
        "            - name: vh\n"
        "              domains: [a]\n"
        "              retry_policy: {retry_on: 5xx, num_retries: 4}\n"
        "              request_mirror_policies: [{cluster: c2}]\n"
        "              routes:\n"
        "              - match: {prefix: /own}\n"
        "                route: {cluster: c1, retry_policy: {retry_on: reset}}\n"
        "              - match: {prefix: /}\n"
        "                route: {cluster: c1}\n"
        "            - name: other\n"
        "              domains: [b]\n"
        "              routes:\n"
        "              - match: {prefix: /}\n"
        "                route: {cluster: c1}\n",
        err);
    CHECK(b != NULL);
    if (!b) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    const cfg_route_config *rc = route_test_rc(b);
    const cfg_virtual_host *vh = &rc->vhosts[0];
    CHECK(rc->mirrors.n == 1 && vh->mirrors.n == 1 && vh->mirrors.v[0].cluster_index == 1);
    CHECK(vh->retry && vh->retry->num_retries == 4);
    /* A route's own policy replaces the virtual host's whole. */
    CHECK(vh->routes[0].retry_applied == vh->routes[0].retry);
    CHECK(vh->routes[0].retry_applied->retry_on == CFG_RETRY_RESET);
    CHECK(vh->routes[1].retry_applied == vh->retry);
    CHECK(rc->vhosts[1].routes[0].retry_applied == NULL);
    /* Every route has some mirror list: its own, its host's or the config's. */
    CHECK(vh->routes[0].mirrored && vh->routes[1].mirrored && rc->vhosts[1].routes[0].mirrored);
    cfg_free(b);
}

static void expect_err(const char *vh_extra, const char *want)
{
    char body[2048], err[CFG_ERR_MAX];
    snprintf(body, sizeof body,
             "            virtual_hosts:\n"
             "            - name: vh\n"
             "              domains: [\"*\"]\n"
             "%s"
             "              routes: [{match: {prefix: /}, route: {cluster: c1}}]\n",
             vh_extra);
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
    expect_err("              request_mirror_policies: [{cluster: nope}]\n",
               "virtual_hosts[0].request_mirror_policies[0].cluster: ");
    expect_err("              request_mirror_policies: [{cluster: c1, cluster_header: x}]\n",
               "virtual_hosts[0].request_mirror_policies[0]: only one of");
    expect_err("              request_mirror_policies: [{cluster_header: \"\"}]\n",
               "request_mirror_policies[0].cluster_header: must not be empty");
    expect_err("              request_mirror_policies: [{cluster: c1, bogus: 1}]\n",
               "request_mirror_policies[0].bogus");
    expect_err("              retry_policy: {retry_on: nope}\n",
               "virtual_hosts[0].retry_policy.retry_on: unknown retry condition 'nope'");
    expect_err("              request_mirror_policies: [{cluster: c1}, {cluster: c1}, "
               "{cluster: c1}, {cluster: c1}, {cluster: c1}, {cluster: c1}, {cluster: c1}, "
               "{cluster: c1}, {cluster: c1}]\n",
               "at most 8 mirror policies are supported");
}

int main(void)
{
    test_mirror_fields();
    test_levels();
    test_errors();
    return TEST_DONE();
}
