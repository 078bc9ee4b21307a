/* A cluster's HTTP protocol to its hosts: the deprecated cluster fields
 * (http2_protocol_options) and typed_extension_protocol_options
 * ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]. */
#include "config/config_internal.h"

#include <string.h>

#define HPO_NAME "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
#define HPO_TYPE "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

static const char *const h2_handled[] = {"max_concurrent_streams", "initial_stream_window_size",
                                         "initial_connection_window_size", NULL};
static const char *const h2_ignored[] = {"allow_connect", "allow_metadata", NULL};
static const char *const h2_unsupported[] = {
    "hpack_table_size", "max_outbound_frames", "max_outbound_control_frames",
    "max_consecutive_inbound_frames_with_empty_payload", "max_inbound_priority_frames_per_stream",
    "max_inbound_window_update_frames_per_data_frame_sent", "stream_error_on_invalid_http_messaging",
    "override_stream_error_on_invalid_http_message", "custom_settings_parameters",
    "connection_keepalive", "use_oghttp2_codec", "max_metadata_size", NULL};
static const char *const hpo_handled[] = {"@type", "explicit_http_config", "auto_config",
                                          "use_downstream_protocol_config",
                                          "upstream_http_protocol_options", NULL};
static const char *const hpo_unsupported[] = {"common_http_protocol_options", "http_filters",
                                              "header_validation_config", NULL};
/* explicit_http_config, use_downstream_protocol_config and auto_config share
 * the h1/h2/h3 option fields. */
static const char *const explicit_handled[] = {"http_protocol_options", "http2_protocol_options",
                                               NULL};
static const char *const explicit_unsupported[] = {"http3_protocol_options", NULL};
static const char *const auto_unsupported[] = {"http3_protocol_options",
                                               "alternate_protocols_cache_options", NULL};
static const char *const uhpo_handled[] = {"auto_sni", "auto_san_validation", NULL};
static const char *const uhpo_unsupported[] = {"override_auto_sni_header", NULL};
static const char *const h1_unsupported[] = {
    "allow_absolute_url", "accept_http_10", "default_host_for_http_10", "header_key_format",
    "enable_trailers", "allow_chunked_length", "override_stream_error_on_invalid_http_message",
    "send_fully_qualified_url", "use_balsa_parser", "allow_custom_methods", NULL};

/* Http2ProtocolOptions: turns HTTP/2 on with Envoy's defaults. */
static int parse_h2_options(cfg_ctx *c, const yn_node *n, cfg_cluster *cl)
{
    static const cfg_fields f = {h2_handled, h2_ignored, h2_unsupported};
    int rc = cfg_check_map(c, n, &f);
    cl->http2 = true;
    if (!rc)
        rc = cfg_get_u32(c, n, "max_concurrent_streams", false, 1, 2147483647u,
                         &cl->h2_max_concurrent_streams);
    if (!rc)
        rc = cfg_get_u32(c, n, "initial_stream_window_size", false, 65535, 2147483647u,
                         &cl->h2_initial_stream_window);
    if (!rc)
        rc = cfg_get_u32(c, n, "initial_connection_window_size", false, 65535, 2147483647u,
                         &cl->h2_initial_connection_window);
    return rc;
}

static int parse_in(cfg_ctx *c, const yn_node *map, const char *key,
                    int (*fn)(cfg_ctx *, const yn_node *, cfg_cluster *), cfg_cluster *cl)
{
    const yn_node *n = cfg_get(map, key);
    if (!n)
        return 0;
    size_t m = cfg_push(c, key);
    int rc = fn(c, n, cl);
    cfg_pop(c, m);
    return rc;
}

static int parse_h1_options(cfg_ctx *c, const yn_node *n, cfg_cluster *cl)
{
    static const cfg_fields f = {NULL, NULL, h1_unsupported};
    (void)cl;
    return cfg_check_map(c, n, &f);
}

/* The per-version option fields explicit_http_config, use_downstream_protocol_config
 * and auto_config share; `unsupported` differs. */
static int parse_versions(cfg_ctx *c, const yn_node *n, cfg_cluster *cl,
                          const char *const *unsupported)
{
    const cfg_fields f = {explicit_handled, NULL, unsupported};
    int rc = cfg_check_map(c, n, &f);
    if (!rc)
        rc = parse_in(c, n, "http_protocol_options", parse_h1_options, cl);
    if (!rc)
        rc = parse_in(c, n, "http2_protocol_options", parse_h2_options, cl);
    return rc;
}

static int parse_explicit(cfg_ctx *c, const yn_node *n, cfg_cluster *cl)
{
    if (cfg_get(n, "http_protocol_options") && cfg_get(n, "http2_protocol_options"))
        return cfg_err(c, n, "set only one of http_protocol_options, http2_protocol_options");
    return parse_versions(c, n, cl, explicit_unsupported);
}

/* use_downstream_protocol_config: either or both protocols. */
static int parse_downstream(cfg_ctx *c, const yn_node *n, cfg_cluster *cl)
{
    cl->http_downstream = true;
    return parse_versions(c, n, cl, explicit_unsupported);
}

/* auto_config: ALPN picks HTTP/2 or HTTP/1.1 per host (proxy/upstream_auto.c);
 * http2 holds the HTTP/2 options.  Envoy only allows it over a transport
 * socket that does ALPN, i.e. TLS (checked by the caller). */
static int parse_auto(cfg_ctx *c, const yn_node *n, cfg_cluster *cl)
{
    cl->http_auto = true;
    return parse_versions(c, n, cl, auto_unsupported);
}

static bool has_tls_transport(const yn_node *cluster)
{
    const yn_node *ts = cfg_get(cluster, "transport_socket");
    const yn_node *tc = ts ? cfg_get(ts, "typed_config") : NULL;
    const yn_node *t = tc ? cfg_get(tc, "@type") : NULL;
    return t && t->kind == YN_SCALAR && strstr(t->str, "UpstreamTlsContext") != NULL;
}

static int parse_upstream_options(cfg_ctx *c, const yn_node *n, cfg_cluster *cl)
{
    static const cfg_fields f = {uhpo_handled, NULL, uhpo_unsupported};
    int rc = cfg_check_map(c, n, &f);
    if (!rc)
        rc = cfg_get_bool(c, n, "auto_sni", &cl->auto_sni);
    if (!rc)
        rc = cfg_get_bool(c, n, "auto_san_validation", &cl->auto_san_validation);
    return rc;
}

static int parse_hpo(cfg_ctx *c, const yn_node *n, cfg_cluster *cl)
{
    static const cfg_fields f = {hpo_handled, NULL, hpo_unsupported};
    int rc = cfg_check_map(c, n, &f);
    if (rc)
        return rc;
    const yn_node *t = cfg_get(n, "@type");
    if (!t)
        return cfg_err(c, n, "missing required field '@type' (expected %s)", HPO_TYPE);
    if (t->kind != YN_SCALAR || strcmp(t->str, HPO_TYPE) != 0) {
        size_t m = cfg_push(c, "@type");
        rc = cfg_err(c, t, "expected %s", HPO_TYPE);
        cfg_pop(c, m);
        return rc;
    }
    static const char *const one[] = {"explicit_http_config", "use_downstream_protocol_config",
                                      "auto_config"};
    int which;
    if ((rc = cfg_one_of(c, n, one, 3, true, &which)) != 0)
        return rc;
    rc = parse_in(c, n, "explicit_http_config", parse_explicit, cl);
    if (!rc)
        rc = parse_in(c, n, "use_downstream_protocol_config", parse_downstream, cl);
    if (!rc)
        rc = parse_in(c, n, "auto_config", parse_auto, cl);
    if (!rc)
        rc = parse_in(c, n, "upstream_http_protocol_options", parse_upstream_options, cl);
    return rc;
}

static int parse_typed_options(cfg_ctx *c, const yn_node *n, cfg_cluster *cl)
{
    if (n->kind != YN_MAP)
        return cfg_err(c, n, "expected a map of extension name to options");
    for (size_t i = 0; i < n->n; i++) {
        const char *key = n->keys[i]->str;
        size_t m = cfg_push(c, key);
        int rc = strcmp(key, HPO_NAME) == 0
                     ? parse_hpo(c, n->items[i], cl)
                     : cfg_err(c, n->keys[i], "not supported yet: %s (supported: %s)", key, HPO_NAME);
        cfg_pop(c, m);
        if (rc)
            return rc;
    }
    return 0;
}

int cfg_parse_cluster_http_protocol(cfg_ctx *c, const yn_node *cluster, cfg_cluster *cl)
{
    cl->h2_max_concurrent_streams = 2147483647u;
    cl->h2_initial_stream_window = 268435456u;
    cl->h2_initial_connection_window = 268435456u;
    if (cfg_get(cluster, "http2_protocol_options") &&
        cfg_get(cluster, "typed_extension_protocol_options"))
        return cfg_err(c, cluster, "set only one of http2_protocol_options (deprecated), "
                                   "typed_extension_protocol_options");
    int rc = parse_in(c, cluster, "http2_protocol_options", parse_h2_options, cl);
    if (!rc)
        rc = parse_in(c, cluster, "typed_extension_protocol_options", parse_typed_options, cl);
    if (!rc && cl->http_auto && !has_tls_transport(cluster))
        rc = cfg_err(c, cluster, "auto_config needs a transport socket that negotiates ALPN: "
                                 "add a transport_socket with an UpstreamTlsContext");
    return rc;
}
