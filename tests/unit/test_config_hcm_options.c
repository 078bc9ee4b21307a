/* Config: the HTTP connection manager's timeouts and request options
 * (config/config_hcm_options.c): Envoy's defaults, overrides, errors. */
#include "config/config.h"

#include <stdio.h>
#include <string.h>

#include "pftest.h"

/* One listener whose HCM gets `extra` (lines indented 8 spaces) added. */
static const char *with_hcm(const char *extra)
{
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "static_resources:\n"
             "  listeners:\n"
             "  - address: {socket_address: {address: 127.0.0.1, port_value: 8080}}\n"
             "    filter_chains:\n"
             "    - filters:\n"
             "      - name: envoy.filters.network.http_connection_manager\n"
             "        typed_config:\n"
             "          \"@type\": type.googleapis.com/envoy.extensions.filters.network."
             "http_connection_manager.v3.HttpConnectionManager\n"
             "          stat_prefix: s\n"
             "%s"
             "          route_config: {virtual_hosts: [{name: v, domains: [\"*\"], routes: "
             "[{match: {prefix: /}, direct_response: {status: 200}}]}]}\n"
             "          http_filters:\n"
             "          - name: envoy.filters.http.router\n"
             "            typed_config: {\"@type\": type.googleapis.com/envoy.extensions."
             "filters.http.router.v3.Router}\n",
             extra);
    return buf;
}

static cfg_bootstrap *load(const char *y, char *err)
{
    cfg_bootstrap *b = NULL;
    if (cfg_load_string("t.yaml", y, strlen(y), &b, err, CFG_ERR_MAX) != 0)
        return NULL;
    return b;
}

static void expect_err(const char *extra, const char *want)
{
    char err[CFG_ERR_MAX] = "";
    cfg_bootstrap *b = load(with_hcm(extra), err);
    CHECK(b == NULL);
    if (!strstr(err, want)) {
        fprintf(stderr, "expected '%s' in: %s\n", want, err);
        pf_test_failures++;
    }
    cfg_free(b);
}

static void test_defaults(void)
{
    char err[CFG_ERR_MAX];
    cfg_bootstrap *b = load(with_hcm(""), err);
    CHECK(b != NULL);
    if (!b)
        return;
    const cfg_hcm_options *o = &b->listeners[0].chains[0].hcm.opts;
    CHECK(o->stream_idle_timeout_ms == 300000);
    CHECK(o->idle_timeout_ms == 3600000);
    CHECK(o->request_timeout_ms == 0 && o->request_headers_timeout_ms == 0);
    CHECK(o->max_stream_duration_ms == 0 && o->max_connection_duration_ms == 0);
    CHECK(o->drain_timeout_ms == 5000 && o->delayed_close_timeout_ms == 1000);
    CHECK(o->max_headers_count == 100);
    CHECK(o->underscores == CFG_UNDERSCORES_ALLOW);
    CHECK(o->server_header == CFG_SERVER_OVERWRITE && o->server_name == NULL);
    CHECK(!o->use_remote_address && o->xff_num_trusted_hops == 0 && !o->add_user_agent);
    cfg_free(b);
}

static void test_values(void)
{
    char err[CFG_ERR_MAX];
    cfg_bootstrap *b = load(with_hcm("          stream_idle_timeout: 0s\n"
                                     "          request_timeout: 2s\n"
                                     "          request_headers_timeout: 0.5s\n"
                                     "          server_name: edge\n"
                                     "          server_header_transformation: PASS_THROUGH\n"
                                     "          use_remote_address: true\n"
                                     "          xff_num_trusted_hops: 2\n"
                                     "          add_user_agent: true\n"
                                     "          common_http_protocol_options:\n"
                                     "            idle_timeout: 0s\n"
                                     "            max_stream_duration: {seconds: 3}\n"
                                     "            max_connection_duration: 60s\n"
                                     "            max_headers_count: 7\n"
                                     "            headers_with_underscores_action: REJECT_REQUEST\n"),
                            err);
    CHECK(b != NULL);
    if (!b) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    const cfg_hcm_options *o = &b->listeners[0].chains[0].hcm.opts;
    CHECK(o->stream_idle_timeout_ms == 0 && o->idle_timeout_ms == 0);
    CHECK(o->request_timeout_ms == 2000 && o->request_headers_timeout_ms == 500);
    CHECK(o->max_stream_duration_ms == 3000 && o->max_connection_duration_ms == 60000);
    CHECK(o->max_headers_count == 7 && o->underscores == CFG_UNDERSCORES_REJECT);
    CHECK(o->server_name && strcmp(o->server_name, "edge") == 0 && o->server_name_len == 4);
    CHECK(o->server_header == CFG_SERVER_PASS_THROUGH);
    CHECK(o->use_remote_address && o->xff_num_trusted_hops == 2 && o->add_user_agent);
    cfg_free(b);
}

static void test_errors(void)
{
    expect_err("          request_timeout: fast\n",
               "t.yaml:10:28: static_resources.listeners[0].filter_chains[0].filters[0]."
               "typed_config.request_timeout: invalid duration 'fast'");
    expect_err("          common_http_protocol_options: {max_headers_count: 0}\n",
               "typed_config.common_http_protocol_options.max_headers_count:");
    expect_err("          common_http_protocol_options: {max_requests_per_connection: 1}\n",
               "common_http_protocol_options.max_requests_per_connection: not supported yet");
    expect_err("          common_http_protocol_options: {headers_with_underscores_action: X}\n",
               "headers_with_underscores_action: invalid value 'X'");
    expect_err("          server_header_transformation: NONE\n",
               "server_header_transformation: invalid value 'NONE'");
    expect_err("          server_name: \"a\\nb\"\n", "server_name: invalid header value");
    expect_err("          scheme_header_transformation: {}\n",
               "scheme_header_transformation: not supported yet");
}

int main(void)
{
    test_defaults();
    test_values();
    test_errors();
    return TEST_DONE();
}
