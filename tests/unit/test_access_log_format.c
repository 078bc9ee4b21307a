/* Access log formats: compile (config/config_access_log.c) and render
 * (proxy/access_log_format.c) against a hand-built stream; config errors. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "config/access_log_config.h"
#include "config/config.h"
#include "proxy/access_log.h"
#include "proxy/stream.h"
#include "tests/unit/pftest.h"

static pf_stream *st;
static cfg_bootstrap boot;
static cfg_cluster clusters[2];
static cfg_route route_named, route_direct;
static struct sockaddr_storage remote, local6;

/* 2016-04-15T20:17:00.310Z plus 123 µs */
#define WALL_US (1460751420ull * 1000000u + 310123u)

static void setup(void)
{
    st = calloc(1, sizeof *st);
    pf_arena_init(&st->arena);
    st->method = PF_STR("POST");
    st->path = PF_STR("/api/v1/locations?x=1");
    st->authority = PF_STR("locations");
    st->scheme = PF_STR("http");
    st->protocol = PF_STR("HTTP/2");
    pf_hdrs_add(&st->req_hdrs, &st->arena, PF_STR("x-forwarded-for"), PF_STR("10.0.35.28"));
    pf_hdrs_add(&st->req_hdrs, &st->arena, PF_STR("user-agent"), PF_STR("nsq2http"));
    pf_hdrs_add(&st->req_hdrs, &st->arena, PF_STR("x-request-id"),
                PF_STR("cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2"));
    pf_hdrs_add(&st->req_hdrs, &st->arena, PF_STR("x-quote"), PF_STR("a\"b\\c\x01\xff\xc3\xa9"));
    pf_hdrs_add(&st->req_hdrs, &st->arena, PF_STR("x-empty"), PF_STR(""));
    pf_hdrs_add(&st->resp_hdrs, &st->arena, PF_STR("x-envoy-upstream-service-time"),
                PF_STR("100"));
    st->status = 204;
    st->bytes_received = 154;
    st->bytes_sent = 0;
    st->start_ms = 1000;
    st->req_end_ms = 1005;
    st->resp_first_byte_ms = 1100;
    st->start_wall_us = WALL_US;
    struct sockaddr_in *r = (struct sockaddr_in *)&remote;
    r->sin_family = AF_INET;
    r->sin_port = htons(51234);
    inet_pton(AF_INET, "10.0.35.28", &r->sin_addr);
    struct sockaddr_in6 *l6 = (struct sockaddr_in6 *)&local6;
    l6->sin6_family = AF_INET6;
    l6->sin6_port = htons(10000);
    inet_pton(AF_INET6, "::1", &l6->sin6_addr);
    st->downstream_remote = &remote;
    st->downstream_local = &local6;
    struct sockaddr_in *u = (struct sockaddr_in *)&st->upstream_host;
    u->sin_family = AF_INET;
    u->sin_port = htons(80);
    inet_pton(AF_INET, "10.0.2.1", &u->sin_addr);
    st->has_upstream_host = true;
    clusters[0].name = "first";
    clusters[1].name = "locations_svc";
    boot.clusters = clusters;
    boot.n_clusters = 2;
    route_named.name = "loc_route";
    route_named.action = CFG_ACTION_ROUTE;
    route_direct.action = CFG_ACTION_DIRECT;
    st->route = &route_named;
    st->cluster = 1;
}

/* Renders fmt as a text format for st; returns a static copy ("<error>" on
 * compile failure). */
static const char *render(const char *fmt, bool omit_empty)
{
    static char out[4096];
    char err[256];
    struct cfg_access_log al = { .omit_empty_values = omit_empty };
    if (cfg_alog_compile(fmt, strlen(fmt), &al.text, err, sizeof err) != 0) {
        fprintf(stderr, "compile '%s': %s\n", fmt, err);
        return "<error>";
    }
    pf_alog_buf b = { 0 };
    CHECK(pf_access_log_render(&al, st, &boot, 1226, &b) == 0);
    snprintf(out, sizeof out, "%.*s", (int)b.n, b.p ? b.p : "");
    pf_alog_buf_free(&b);
    cfg_alog_format_free(&al.text);
    return out;
}

#define CHECK_RENDER(fmt, want)                                                    \
    do {                                                                           \
        const char *got_ = render((fmt), false);                                   \
        if (strcmp(got_, (want)) != 0)                                             \
            fprintf(stderr, "format %s\n  got  [%s]\n  want [%s]\n", (fmt), got_, (want)); \
        CHECK(strcmp(got_, (want)) == 0);                                          \
    } while (0)

static void test_default_format(void)
{
    CHECK_RENDER(CFG_ALOG_DEFAULT_FORMAT,
                 "[2016-04-15T20:17:00.310Z] \"POST /api/v1/locations?x=1 HTTP/2\" 204 - 154 0 "
                 "226 100 \"10.0.35.28\" \"nsq2http\" \"cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2\" "
                 "\"locations\" \"10.0.2.1:80\"\n");
    /* x-envoy-original-path wins over :path when present (prefix_rewrite). */
    pf_hdrs_add(&st->req_hdrs, &st->arena, PF_STR("x-envoy-original-path"), PF_STR("/orig"));
    CHECK_RENDER("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", "/orig");
    pf_hdrs_remove_lit(&st->req_hdrs, "x-envoy-original-path");
    CHECK_RENDER("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", "/api/v1/locations?x=1");
}

static void test_operators(void)
{
    CHECK_RENDER("%START_TIME%", "2016-04-15T20:17:00.310Z");
    CHECK_RENDER("%START_TIME(%Y/%m/%d %H:%M:%S)%", "2016/04/15 20:17:00");
    CHECK_RENDER("%START_TIME(%s.%3f)%", "1460751420.310");
    CHECK_RENDER("%START_TIME(%E3S|%6f|%f)%", "00.310|310123|310123000");
    CHECK_RENDER("%REQ(:METHOD)% %REQ(:PATH)% %REQ(:AUTHORITY)% %REQ(:SCHEME)%",
                 "POST /api/v1/locations?x=1 locations http");
    CHECK_RENDER("%REQ(Host)%", "locations");
    CHECK_RENDER("%REQUEST_HEADER(USER-AGENT)%", "nsq2http");
    CHECK_RENDER("%REQ(USER-AGENT):3%", "nsq");
    CHECK_RENDER("%REQ(X-MISSING?USER-AGENT):4%", "nsq2");
    CHECK_RENDER("%REQ(X-MISSING)%", "-");
    CHECK_RENDER("[%REQ(X-EMPTY)%]", "[]");
    CHECK_RENDER("%REQ_WITHOUT_QUERY(:PATH)%", "/api/v1/locations");
    CHECK_RENDER("%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% %RESP(:STATUS)% %RESP(NOPE)%",
                 "100 204 -");
    CHECK_RENDER("%PROTOCOL% %RESPONSE_CODE% %RESPONSE_FLAGS%", "HTTP/2 204 -");
    CHECK_RENDER("%BYTES_RECEIVED% %BYTES_SENT%", "154 0");
    CHECK_RENDER("%DURATION% %REQUEST_DURATION% %RESPONSE_DURATION%", "226 5 100");
    CHECK_RENDER("%UPSTREAM_HOST% %UPSTREAM_CLUSTER% %ROUTE_NAME%",
                 "10.0.2.1:80 locations_svc loc_route");
    CHECK_RENDER("%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
                 "10.0.35.28:51234 10.0.35.28");
    CHECK_RENDER("%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%",
                 "[::1]:10000 ::1");
    CHECK_RENDER("%UPSTREAM_TRANSPORT_FAILURE_REASON%", "-");
    CHECK_RENDER("100%% done %%%PROTOCOL%%%", "100% done %HTTP/2%");
    CHECK_RENDER("no operators", "no operators");
    CHECK_RENDER("", "");

    st->response_flags = PF_RF_UF | PF_RF_NR;
    CHECK_RENDER("%RESPONSE_FLAGS%", "NR,UF");
    st->response_flags = 0;
}

static void test_missing_values(void)
{
    pf_stream saved = *st;
    st->protocol = (pf_str){ 0 };
    st->req_end_ms = 0;
    st->resp_first_byte_ms = 0;
    st->has_upstream_host = false;
    st->downstream_remote = NULL;
    st->downstream_local = NULL;
    st->route = NULL;
    st->status = 0;
    CHECK_RENDER("%PROTOCOL% %REQUEST_DURATION% %RESPONSE_DURATION% %UPSTREAM_HOST% "
                 "%UPSTREAM_CLUSTER% %ROUTE_NAME% %DOWNSTREAM_REMOTE_ADDRESS% "
                 "%DOWNSTREAM_LOCAL_ADDRESS% %RESPONSE_CODE% %RESP(:STATUS)%",
                 "- - - - - - - - 0 -");
    CHECK(strcmp(render("[%PROTOCOL%][%ROUTE_NAME%]", true), "[][]") == 0);
    /* direct_response routes have no cluster */
    st->route = &route_direct;
    CHECK_RENDER("%UPSTREAM_CLUSTER% %ROUTE_NAME%", "- -");
    *st = saved;
}

static const char *render_json(const char *yaml_fields, bool omit)
{
    static char out[4096];
    char cfgtext[2048], err[CFG_ERR_MAX];
    snprintf(cfgtext, sizeof cfgtext,
             "static_resources:\n"
             "  listeners:\n"
             "  - name: l\n"
             "    address: {socket_address: {address: 127.0.0.1, port_value: 1}}\n"
             "    filter_chains:\n"
             "    - filters:\n"
             "      - name: envoy.filters.network.http_connection_manager\n"
             "        typed_config:\n"
             "          \"@type\": type.googleapis.com/envoy.extensions.filters.network."
             "http_connection_manager.v3.HttpConnectionManager\n"
             "          stat_prefix: x\n"
             "          access_log:\n"
             "          - name: envoy.access_loggers.stdout\n"
             "            typed_config:\n"
             "              \"@type\": type.googleapis.com/envoy.extensions.access_loggers."
             "stream.v3.StdoutAccessLog\n"
             "              log_format:\n"
             "                omit_empty_values: %s\n"
             "                json_format: %s\n"
             "          route_config: {virtual_hosts: []}\n"
             "          http_filters:\n"
             "          - name: envoy.filters.http.router\n"
             "            typed_config: {\"@type\": type.googleapis.com/envoy.extensions."
             "filters.http.router.v3.Router}\n",
             omit ? "true" : "false", yaml_fields);
    cfg_bootstrap *b = NULL;
    if (cfg_load_string("t.yaml", cfgtext, strlen(cfgtext), &b, err, sizeof err) != 0) {
        fprintf(stderr, "config: %s\n", err);
        return "<error>";
    }
    CHECK(b->listeners[0].chains[0].hcm.n_access_logs == 1);
    pf_alog_buf buf = { 0 };
    CHECK(pf_access_log_render(&b->listeners[0].chains[0].hcm.access_logs[0], st, &boot, 1226, &buf) == 0);
    snprintf(out, sizeof out, "%.*s", (int)buf.n, buf.p ? buf.p : "");
    pf_alog_buf_free(&buf);
    cfg_free(b);
    return out;
}

#define CHECK_JSON(fields, omit, want)                                              \
    do {                                                                            \
        const char *got_ = render_json((fields), (omit));                           \
        if (strcmp(got_, (want)) != 0)                                              \
            fprintf(stderr, "json %s\n  got  [%s]\n  want [%s]\n", (fields), got_, (want)); \
        CHECK(strcmp(got_, (want)) == 0);                                           \
    } while (0)

static void test_json(void)
{
    CHECK_JSON("{code: \"%RESPONSE_CODE%\", bytes: \"%BYTES_RECEIVED%\", "
               "dur: \"%DURATION%\", method: \"%REQ(:METHOD)%\", missing: \"%REQ(X-NO)%\", "
               "mixed: \"%REQ(:METHOD)% %REQ(X-NO)% %RESPONSE_CODE%\", lit: \"plain\", "
               "num: 7, flag: true, nested: {host: \"%UPSTREAM_HOST%\", rf: \"%RESPONSE_FLAGS%\"}}",
               false,
               "{\"code\":204,\"bytes\":154,\"dur\":226,\"method\":\"POST\",\"missing\":null,"
               "\"mixed\":\"POST - 204\",\"lit\":\"plain\",\"num\":7,\"flag\":true,"
               "\"nested\":{\"host\":\"10.0.2.1:80\",\"rf\":\"-\"}}\n");
    /* escaping: quotes, backslashes, control characters, invalid UTF-8 */
    CHECK_JSON("{q: \"%REQ(X-QUOTE)%\", \"k\\\"ey\": \"x\"}", false,
               "{\"q\":\"a\\\"b\\\\c\\u0001\xef\xbf\xbd\xc3\xa9\",\"k\\\"ey\":\"x\"}\n");
    CHECK_JSON("{a: \"%REQ(X-NO)%\", b: \"%REQ(X-EMPTY)%\", c: \"%PROTOCOL%\", "
               "d: \"%REQ(X-NO)%%REQ(X-EMPTY)%\"}", true,
               "{\"c\":\"HTTP/2\"}\n");
    CHECK_JSON("{a: \"%REQ(X-NO)%\", c: \"%PROTOCOL%\"}", true, "{\"c\":\"HTTP/2\"}\n");
}

static void check_compile_error(const char *fmt, const char *want)
{
    cfg_alog_format f = { 0 };
    char err[256] = "";
    int rc = cfg_alog_compile(fmt, strlen(fmt), &f, err, sizeof err);
    CHECK(rc == -EINVAL);
    if (!strstr(err, want))
        fprintf(stderr, "format '%s': error [%s] lacks [%s]\n", fmt, err, want);
    CHECK(strstr(err, want) != NULL);
    CHECK(f.pieces == NULL);
}

static void test_compile_errors(void)
{
    check_compile_error("%FOO%", "unknown command operator %FOO% at offset 0");
    check_compile_error("ab %REQ(valid)% %NOT_VALID%", "unknown command operator %NOT_VALID%");
    check_compile_error("%REQ(FIRST?SECOND%", "missing ')'");
    check_compile_error("%REQ(A?B?C)%", "more than one alternative");
    check_compile_error("%REQ%", "needs a header name");
    check_compile_error("%REQ()%", "needs a header name");
    check_compile_error("%PROTOCOL(x)%", "takes no argument");
    check_compile_error("%PROTOCOL", "missing closing '%'");
    check_compile_error("50% off", "does not start a command operator");
    check_compile_error("%REQ(X):%", "expected a length");
    check_compile_error("%HOSTNAME%", "not supported yet: command operator %HOSTNAME%");
    check_compile_error("RESP(FIRST)%", "does not start a command operator");
}

static void check_config_error(const char *access_log_yaml, const char *want)
{
    char cfgtext[4096], err[CFG_ERR_MAX];
    snprintf(cfgtext, sizeof cfgtext,
             "static_resources:\n"
             "  listeners:\n"
             "  - name: l\n"
             "    address: {socket_address: {address: 127.0.0.1, port_value: 1}}\n"
             "    filter_chains:\n"
             "    - filters:\n"
             "      - name: envoy.filters.network.http_connection_manager\n"
             "        typed_config:\n"
             "          \"@type\": type.googleapis.com/envoy.extensions.filters.network."
             "http_connection_manager.v3.HttpConnectionManager\n"
             "          stat_prefix: x\n"
             "          access_log:\n"
             "%s"
             "          route_config: {virtual_hosts: []}\n"
             "          http_filters:\n"
             "          - name: envoy.filters.http.router\n"
             "            typed_config: {\"@type\": type.googleapis.com/envoy.extensions."
             "filters.http.router.v3.Router}\n",
             access_log_yaml);
    cfg_bootstrap *b = NULL;
    int rc = cfg_load_string("t.yaml", cfgtext, strlen(cfgtext), &b, err, sizeof err);
    CHECK(rc == -EINVAL);
    CHECK(b == NULL);
    if (!strstr(err, want))
        fprintf(stderr, "config error [%s] lacks [%s]\n", err, want);
    CHECK(strstr(err, want) != NULL);
}

#define FILE_T "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"

static void test_config(void)
{
    check_config_error("          - name: x\n"
                       "            typed_config:\n"
                       "              \"@type\": " FILE_T "\n"
                       "              path: /dev/null\n"
                       "              log_format: {text_format_source: {inline_string: \"%BAD%\"}}\n",
                       "t.yaml:16:64: static_resources.listeners[0].filter_chains[0].filters[0]."
                       "typed_config.access_log[0].typed_config.log_format.text_format_source."
                       "inline_string: invalid format string: unknown command operator %BAD%");
    check_config_error("          - name: x\n"
                       "            filter: {status_code_filter: {}}\n"
                       "            typed_config:\n"
                       "              \"@type\": " FILE_T "\n"
                       "              path: /dev/null\n",
                       "access_log[0].filter: not supported yet: field 'filter'");
    check_config_error("          - name: x\n"
                       "            typed_config:\n"
                       "              \"@type\": type.googleapis.com/foo.Bar\n",
                       "unknown access logger type 'type.googleapis.com/foo.Bar' (expected one "
                       "of: " FILE_T);
    check_config_error("          - name: x\n"
                       "            typed_config:\n"
                       "              \"@type\": " FILE_T "\n"
                       "              path: /dev/null\n"
                       "              format: \"%NOPE%\"\n",
                       "typed_config.format: invalid format string: unknown command operator");
    check_config_error("          - name: x\n"
                       "            typed_config:\n"
                       "              \"@type\": " FILE_T "\n",
                       "missing required field 'path'");
    check_config_error("          - name: x\n"
                       "            typed_config:\n"
                       "              \"@type\": " FILE_T "\n"
                       "              path: /dev/null\n"
                       "              log_format: {text_format: a, json_format: {a: b}}\n",
                       "only one of text_format, json_format and text_format_source");
    check_config_error("          - name: x\n"
                       "            typed_config:\n"
                       "              \"@type\": " FILE_T "\n"
                       "              path: /dev/null\n"
                       "              log_format: {json_format: {a: {b: \"%X_Y%\"}}}\n",
                       "log_format.json_format.a.b: invalid format string: unknown command "
                       "operator %X_Y%");

    /* Accepted shapes: legacy format, deprecated text_format, default. */
    char err[CFG_ERR_MAX];
    const char *ok =
        "static_resources:\n"
        "  listeners:\n"
        "  - name: l\n"
        "    address: {socket_address: {address: 127.0.0.1, port_value: 1}}\n"
        "    filter_chains:\n"
        "    - filters:\n"
        "      - name: envoy.filters.network.http_connection_manager\n"
        "        typed_config:\n"
        "          \"@type\": type.googleapis.com/envoy.extensions.filters.network."
        "http_connection_manager.v3.HttpConnectionManager\n"
        "          stat_prefix: x\n"
        "          access_log:\n"
        "          - typed_config: {\"@type\": " FILE_T ", path: /a, format: \"%PROTOCOL%\\n\"}\n"
        "          - typed_config: {\"@type\": " FILE_T ", path: /b, log_format: "
        "{text_format: \"x\"}}\n"
        "          - typed_config: {\"@type\": " FILE_T ", path: /c}\n"
        "          - typed_config: {\"@type\": type.googleapis.com/envoy.extensions."
        "access_loggers.stream.v3.StderrAccessLog}\n"
        "          route_config: {virtual_hosts: []}\n"
        "          http_filters:\n"
        "          - name: envoy.filters.http.router\n"
        "            typed_config: {\"@type\": type.googleapis.com/envoy.extensions."
        "filters.http.router.v3.Router}\n";
    cfg_bootstrap *b = NULL;
    int rc = cfg_load_string("ok.yaml", ok, strlen(ok), &b, err, sizeof err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    CHECK(rc == 0);
    if (b) {
        const cfg_hcm *h = &b->listeners[0].chains[0].hcm;
        CHECK(h->n_access_logs == 4);
        CHECK(h->access_logs[0].sink == CFG_ALOG_SINK_FILE);
        CHECK(!strcmp(h->access_logs[0].path, "/a"));
        CHECK(h->access_logs[0].text.n == 2);
        CHECK(h->access_logs[1].text.n == 1);
        CHECK(h->access_logs[2].text.n > 10);       /* the default format */
        CHECK(h->access_logs[3].sink == CFG_ALOG_SINK_STDERR);
        CHECK(h->access_logs[3].path == NULL);
        cfg_free(b);
    }
}

int main(void)
{
    setup();
    test_default_format();
    test_operators();
    test_missing_values();
    test_json();
    test_compile_errors();
    test_config();
    pf_arena_reset(&st->arena);
    free(st);
    return TEST_DONE();
}
