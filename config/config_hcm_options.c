/* The HTTP connection manager's timeouts and request options
 * (config/hcm_options.h): the HCM's own fields and
 * common_http_protocol_options (envoy.config.core.v3.HttpProtocolOptions).
 * Called once from parse_hcm(). */
#include "config/config_internal.h"
#include "config/hcm_options.h"

#include <stdlib.h>
#include <string.h>

static const char *const hpo_handled[] = {"idle_timeout", "max_connection_duration",
                                          "max_headers_count", "max_stream_duration",
                                          "headers_with_underscores_action", NULL};
static const char *const hpo_unsupported[] = {"max_requests_per_connection",
                                              "max_response_headers_count", NULL};

static const char *const underscores_known[] = {"ALLOW", "REJECT_REQUEST", "DROP_HEADER", NULL};
static const char *const server_known[] = {"OVERWRITE", "APPEND_IF_ABSENT", "PASS_THROUGH", NULL};

static int parse_protocol_options(cfg_ctx *c, const yn_node *n, cfg_hcm_options *o)
{
    static const cfg_fields f = {hpo_handled, NULL, hpo_unsupported};
    int rc, us = 0;
    if ((rc = cfg_check_map(c, n, &f)) != 0 ||
        (rc = cfg_get_duration(c, n, "idle_timeout", &o->idle_timeout_ms)) != 0 ||
        (rc = cfg_get_duration(c, n, "max_connection_duration",
                               &o->max_connection_duration_ms)) != 0 ||
        (rc = cfg_get_duration(c, n, "max_stream_duration", &o->max_stream_duration_ms)) != 0 ||
        /* Envoy's proto: max_headers_count must be >= 1. */
        (rc = cfg_get_u32(c, n, "max_headers_count", false, 1, UINT32_MAX,
                          &o->max_headers_count)) != 0 ||
        (rc = cfg_get_enum(c, n, "headers_with_underscores_action", underscores_known,
                           underscores_known, &us)) != 0)
        return rc;
    o->underscores = (cfg_underscores_action)us;
    return 0;
}

static int parse_server_name(cfg_ctx *c, const yn_node *hcm, cfg_hcm_options *o)
{
    int rc = cfg_get_str(c, hcm, "server_name", false, &o->server_name);
    if (rc || !o->server_name)
        return rc;
    o->server_name_len = strlen(o->server_name);
    /* The value goes out verbatim in a response header. */
    for (size_t i = 0; i < o->server_name_len; i++) {
        unsigned char ch = (unsigned char)o->server_name[i];
        if (ch < 0x20 || ch == 0x7f) {
            size_t m = cfg_push(c, "server_name");
            rc = cfg_err(c, cfg_get(hcm, "server_name"),
                         "invalid header value: control character at offset %zu", i);
            cfg_pop(c, m);
            return rc;
        }
    }
    return 0;
}

int cfg_parse_hcm_options(cfg_ctx *c, const yn_node *hcm, cfg_hcm_options *o)
{
    *o = (cfg_hcm_options){
        .stream_idle_timeout_ms = CFG_DEFAULT_STREAM_IDLE_TIMEOUT_MS,
        .idle_timeout_ms = CFG_DEFAULT_CX_IDLE_TIMEOUT_MS,
        .drain_timeout_ms = CFG_DEFAULT_DRAIN_TIMEOUT_MS,
        .delayed_close_timeout_ms = CFG_DEFAULT_DELAYED_CLOSE_TIMEOUT_MS,
        .max_headers_count = CFG_DEFAULT_MAX_HEADERS_COUNT,
    };
    int rc, sh = 0;
    if ((rc = cfg_get_duration(c, hcm, "stream_idle_timeout", &o->stream_idle_timeout_ms)) != 0 ||
        (rc = cfg_get_duration(c, hcm, "request_timeout", &o->request_timeout_ms)) != 0 ||
        (rc = cfg_get_duration(c, hcm, "request_headers_timeout",
                               &o->request_headers_timeout_ms)) != 0 ||
        (rc = cfg_get_duration(c, hcm, "drain_timeout", &o->drain_timeout_ms)) != 0 ||
        (rc = cfg_get_duration(c, hcm, "delayed_close_timeout",
                               &o->delayed_close_timeout_ms)) != 0 ||
        (rc = cfg_get_bool(c, hcm, "add_user_agent", &o->add_user_agent)) != 0 ||
        (rc = cfg_get_bool(c, hcm, "use_remote_address", &o->use_remote_address)) != 0 ||
        (rc = cfg_get_u32(c, hcm, "xff_num_trusted_hops", false, 0, UINT32_MAX,
                          &o->xff_num_trusted_hops)) != 0 ||
        (rc = cfg_get_enum(c, hcm, "server_header_transformation", server_known, server_known,
                           &sh)) != 0 ||
        (rc = parse_server_name(c, hcm, o)) != 0)
        return rc;
    o->server_header = (cfg_server_header)sh;
    const yn_node *n = cfg_get(hcm, "common_http_protocol_options");
    if (!n)
        return 0;
    size_t m = cfg_push(c, "common_http_protocol_options");
    rc = parse_protocol_options(c, n, o);
    cfg_pop(c, m);
    return rc;
}

void cfg_hcm_options_free(cfg_hcm_options *o)
{
    free(o->server_name);
    o->server_name = NULL;
}
