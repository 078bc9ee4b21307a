/* Unit tests for TLS config: filter_chains with filter_chain_match,
 * DownstreamTlsContext, default_filter_chain, listener_filters, cluster
 * UpstreamTlsContext; errors with file:line:col.  Certificates are made with
 * the openssl CLI in a temporary directory at run time. */
#include "config/config.h"
#include "config/tls_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;
static const char *current = "";
static char dir[256];

#define CHECK(cond)                                                               \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "FAIL [%s] %s:%d: %s\n", current, __FILE__, __LINE__, \
                    #cond);                                                       \
            failures++;                                                           \
        }                                                                         \
    } while (0)

static int sh(const char *fmt, const char *a, const char *b)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    return system(cmd);
}

static int make_certs(void)
{
    const char *gen =
        "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
        "-keyout %s.key -out %s.crt -days 1 -subj /CN=t >/dev/null 2>&1";
    char cmd[1024];
    const char *names[] = {"a", "b"};
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd, gen, dir, names[i], names[i]);
        if (system(cmd) != 0)
            return -1;
    }
    return sh("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout r.key -out r.crt "
              "-days 1 -subj /CN=r >/dev/null 2>&1%s", dir, "");
}

/* The config template: "@/" is replaced by the cert directory.  Line numbers
 * are on the right. */
static const char TPL[] =
    "static_resources:\n"                                                         /* 1 */
    "  listeners:\n"                                                              /* 2 */
    "  - name: l1\n"                                                              /* 3 */
    "    address: {socket_address: {address: 127.0.0.1, port_value: 8443}}\n"    /* 4 */
    "    listener_filters:\n"                                                     /* 5 */
    "    - name: envoy.filters.listener.tls_inspector\n"                          /* 6 */
    "      typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters."
    "listener.tls_inspector.v3.TlsInspector}\n"                                   /* 7 */
    "    filter_chains:\n"                                                        /* 8 */
    "    - filter_chain_match: {server_names: [A.Example.com, \"*.w.example.com\"], "
    "application_protocols: [h2]}\n"                                              /* 9 */
    "      transport_socket:\n"                                                   /* 10 */
    "        name: envoy.transport_sockets.tls\n"                                 /* 11 */
    "        typed_config:\n"                                                     /* 12 */
    "          \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
    "DownstreamTlsContext\n"                                                      /* 13 */
    "          require_client_certificate: true\n"                                /* 14 */
    "          common_tls_context:\n"                                             /* 15 */
    "            alpn_protocols: [h2, http/1.1]\n"                                /* 16 */
    "            tls_params: {tls_minimum_protocol_version: TLSv1_3}\n"           /* 17 */
    "            validation_context: {trusted_ca: {filename: @/a.crt}}\n"         /* 18 */
    "            tls_certificates:\n"                                             /* 19 */
    "            - certificate_chain: {filename: @/a.crt}\n"                      /* 20 */
    "              private_key: {filename: @/a.key}\n"                            /* 21 */
    "            - certificate_chain: {filename: @/r.crt}\n"                      /* 22 */
    "              private_key: {filename: @/r.key}\n"                            /* 23 */
    "      filters: &f\n"                                                         /* 24 */
    "      - name: envoy.filters.network.http_connection_manager\n"               /* 25 */
    "        typed_config:\n"                                                     /* 26 */
    "          \"@type\": type.googleapis.com/envoy.extensions.filters.network."
    "http_connection_manager.v3.HttpConnectionManager\n"                          /* 27 */
    "          stat_prefix: s\n"                                                  /* 28 */
    "          route_config: {virtual_hosts: [{name: v, domains: [\"*\"], routes: "
    "[{match: {prefix: /}, route: {cluster: c1}}]}]}\n"                           /* 29 */
    "          http_filters: [{name: r, typed_config: {\"@type\": type.googleapis.com/"
    "envoy.extensions.filters.http.router.v3.Router}}]\n"                         /* 30 */
    "    - filter_chain_match: {transport_protocol: raw_buffer}\n"               /* 31 */
    "      filters: *f\n"                                                         /* 32 */
    "    default_filter_chain: {filters: *f}\n"                                   /* 33 */
    "  clusters:\n"                                                               /* 34 */
    "  - name: c1\n"                                                              /* 35 */
    "    load_assignment: {endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: "
    "{address: 127.0.0.1, port_value: 9000}}}}]}]}\n"                             /* 36 */
    "    transport_socket:\n"                                                     /* 37 */
    "      name: envoy.transport_sockets.tls\n"                                   /* 38 */
    "      typed_config:\n"                                                       /* 39 */
    "        \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
    "UpstreamTlsContext\n"                                                        /* 40 */
    "        sni: up.example.com\n"                                               /* 41 */
    "        common_tls_context: {validation_context: {trusted_ca: {filename: @/b.crt}, "
    "match_typed_subject_alt_names: [{san_type: DNS, matcher: {exact: up.example.com}}]}}\n";
                                                                                  /* 42 */

/* TPL with `from` replaced by `to` (first occurrence) and "@/" by dir/. */
static char *variant(const char *from, const char *to)
{
    static char buf[16384];
    char tmp[16384];
    const char *p = from ? strstr(TPL, from) : NULL;
    if (from && !p) {
        fprintf(stderr, "test bug: '%s' not in TPL\n", from);
        exit(2);
    }
    if (p)
        snprintf(tmp, sizeof tmp, "%.*s%s%s", (int)(p - TPL), TPL, to, p + strlen(from));
    else
        snprintf(tmp, sizeof tmp, "%s", TPL);
    size_t o = 0;
    for (const char *q = tmp; *q && o + 300 < sizeof buf; q++) {
        if (q[0] == '@' && q[1] == '/')
            o += (size_t)snprintf(buf + o, sizeof buf - o, "%s", dir);
        else
            buf[o++] = *q;
    }
    buf[o] = '\0';
    return buf;
}

static int load(const char *text, cfg_bootstrap **b, char *err)
{
    return cfg_load_string("t.yaml", text, strlen(text), b, err, CFG_ERR_MAX);
}

static void expect_err(const char *name, const char *text, const char *want)
{
    cfg_bootstrap *b = NULL;
    char err[CFG_ERR_MAX];
    current = name;
    int rc = load(text, &b, err);
    CHECK(rc != 0);
    if (rc == 0) {
        cfg_free(b);
        return;
    }
    if (strncmp(err, want, strlen(want)) != 0) {
        fprintf(stderr, "FAIL [%s]\n  want: %s\n  got:  %s\n", name, want, err);
        failures++;
    }
}

static void test_good(void)
{
    cfg_bootstrap *b = NULL;
    char err[CFG_ERR_MAX];
    current = "good";
    int rc = load(variant(NULL, NULL), &b, err);
    if (rc) {
        fprintf(stderr, "FAIL [good]: %s\n", err);
        failures++;
        return;
    }
    const cfg_listener *l = &b->listeners[0];
    CHECK(l->tls_inspector);
    CHECK(l->n_chains == 3 && l->has_default);
    CHECK(b->n_hcms == 3);
    CHECK(l->chains[0].hcm.index == 0 && l->chains[2].hcm.index == 2);
    const cfg_filter_chain_match *m = l->chains[0].match;
    CHECK(m->n_server_names == 2 && !strcmp(m->server_names[0], "a.example.com"));
    CHECK(!strcmp(m->server_names[1], "*.w.example.com"));
    CHECK(m->n_application_protocols == 1 && !strcmp(m->application_protocols[0], "h2"));
    CHECK(m->transport_protocol == CFG_TP_ANY);
    CHECK(l->chains[1].match->transport_protocol == CFG_TP_RAW_BUFFER);
    CHECK(l->chains[1].tls == NULL && l->chains[2].tls == NULL);
    const cfg_tls_server *t = l->chains[0].tls;
    CHECK(t && t->require_client_certificate && t->common.n_certs == 2);
    CHECK(t && t->common.min_version == CFG_TLS_V1_3 && t->common.max_version == CFG_TLS_V1_3);
    CHECK(t && t->common.n_alpn == 2 && !strcmp(t->common.alpn[1], "http/1.1"));
    CHECK(t && t->common.validation.trusted_ca_pem != NULL);
    CHECK(t && strstr(t->common.certs[0].chain_pem, "BEGIN CERTIFICATE") != NULL);
    const cfg_tls_client *c = b->clusters[0].tls;
    CHECK(c && !strcmp(c->sni, "up.example.com"));
    CHECK(c && c->common.min_version == CFG_TLS_V1_2 && c->common.max_version == CFG_TLS_V1_2);
    CHECK(c && c->common.validation.n_san == 1 &&
          c->common.validation.san[0].type == CFG_SAN_DNS);
    cfg_free(b);
}

static void test_errors(void)
{
    char want[512];
    snprintf(want, sizeof want,
             "t.yaml:20:45: static_resources.listeners[0].filter_chains[0].transport_socket."
             "typed_config.common_tls_context.tls_certificates[0].certificate_chain.filename: "
             "cannot read '%s/missing.crt'", dir);
    expect_err("missing cert file", variant("{filename: @/a.crt}\n              private_key",
                                            "{filename: @/missing.crt}\n              private_key"),
               want);
    expect_err("key mismatch", variant("{filename: @/a.key}", "{filename: @/b.key}"),
               "t.yaml:21:28: static_resources.listeners[0].filter_chains[0].transport_socket."
               "typed_config.common_tls_context.tls_certificates[0].private_key: private key "
               "does not match the certificate_chain's certificate");
    expect_err("unknown version", variant("TLSv1_3}", "TLSv1_4}"),
               "t.yaml:17:56: static_resources.listeners[0].filter_chains[0].transport_socket."
               "typed_config.common_tls_context.tls_params.tls_minimum_protocol_version: "
               "invalid value 'TLSv1_4'");
    expect_err("min above max", variant("TLSv1_3}", "TLSv1_3, tls_maximum_protocol_version: "
                                                    "TLSv1_2}"),
               "t.yaml:17:26: static_resources.listeners[0].filter_chains[0].transport_socket."
               "typed_config.common_tls_context.tls_params.tls_minimum_protocol_version: "
               "minimum protocol version is above the maximum");
    expect_err("unknown cipher", variant("TLSv1_3}", "TLSv1_3, cipher_suites: [NOPE-CIPHER]}"),
               "t.yaml:17:81: static_resources.listeners[0].filter_chains[0].transport_socket."
               "typed_config.common_tls_context.tls_params.cipher_suites[0]: unknown cipher "
               "suite 'NOPE-CIPHER'");
    expect_err("bad server name", variant("\"*.w.example.com\"", "\"a.*.com\""),
               "t.yaml:9:58: static_resources.listeners[0].filter_chains[0].filter_chain_match."
               "server_names[1]: invalid server name");
    expect_err("duplicate match", variant("{transport_protocol: raw_buffer}",
                                          "{server_names: [a.example.com, \"*.w.example.com\"], "
                                          "application_protocols: [h2]}"),
               "t.yaml:31:7: static_resources.listeners[0].filter_chains[1]: multiple filter "
               "chains with the same matching rules are defined");
    expect_err("bad transport protocol", variant("raw_buffer}", "quic}"),
               "t.yaml:31:48: static_resources.listeners[0].filter_chains[1].filter_chain_match."
               "transport_protocol: not supported yet");
    expect_err("no certificates", variant("            tls_certificates:\n"
                                          "            - certificate_chain: {filename: @/a.crt}\n"
                                          "              private_key: {filename: @/a.key}\n"
                                          "            - certificate_chain: {filename: @/r.crt}\n"
                                          "              private_key: {filename: @/r.key}\n",
                                          ""),
               "t.yaml:16:13: static_resources.listeners[0].filter_chains[0].transport_socket."
               "typed_config.common_tls_context: no TLS certificates found");
    expect_err("two certs of one type", variant("{filename: @/r.crt}\n              private_key: "
                                                "{filename: @/r.key}",
                                                "{filename: @/b.crt}\n              private_key: "
                                                "{filename: @/b.key}"),
               "t.yaml:22:15: static_resources.listeners[0].filter_chains[0].transport_socket."
               "typed_config.common_tls_context.tls_certificates[1]: at most one certificate");
    expect_err("renegotiation", variant("sni: up.example.com", "allow_renegotiation: true"),
               "t.yaml:41:30: static_resources.clusters[0].transport_socket.typed_config: "
               "not supported yet: allow_renegotiation: true");
    expect_err("unknown listener filter",
               variant("tls_inspector\n      typed_config: {\"@type\": type.googleapis.com/envoy."
                       "extensions.filters.listener.tls_inspector.v3.TlsInspector}",
                       "http_inspector\n      typed_config: {\"@type\": type.googleapis.com/envoy."
                       "extensions.filters.listener.http_inspector.v3.HttpInspector}"),
               "t.yaml:6:13: static_resources.listeners[0].listener_filters[0].name: not "
               "supported yet: listener filter 'envoy.filters.listener.http_inspector'");
    expect_err("wrong context type", variant("tls.v3.DownstreamTlsContext", "tls.v3.Other"),
               "t.yaml:13:20: static_resources.listeners[0].filter_chains[0].transport_socket."
               "typed_config.@type: not supported yet");
    expect_err("bad upstream ca", variant("{filename: @/b.crt}, match", "{inline_string: x}, match"),
               "t.yaml:42:63: static_resources.clusters[0].transport_socket.typed_config."
               "common_tls_context.validation_context.trusted_ca: failed to load trusted CA");
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/pf-tls-unit-XXXXXX");
    if (!mkdtemp(dir) || make_certs() != 0) {
        fprintf(stderr, "cannot make test certificates (openssl CLI)\n");
        return 1;
    }
    test_good();
    test_errors();
    sh("rm -rf %s%s", dir, "");
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("test_config_tls: all passed\n");
    return 0;
}
