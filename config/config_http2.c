/* The HTTP connection manager's HTTP/2 settings: http2_protocol_options
 * and stream_error_on_invalid_http_message, parsed into
 * cfg_hcm.http2 (config/http2_config.h).  Called once from parse_hcm(). */
#include "config/config_internal.h"
#include "config/http2_config.h"

static const char *const h2_handled[] = {
    "hpack_table_size", "max_concurrent_streams", "initial_stream_window_size",
    "initial_connection_window_size", "max_outbound_frames", "max_outbound_control_frames",
    "max_consecutive_inbound_frames_with_empty_payload", "max_inbound_priority_frames_per_stream",
    "max_inbound_window_update_frames_per_data_frame_sent",
    "override_stream_error_on_invalid_http_message", "stream_error_on_invalid_http_messaging",
    NULL};
/* The codec library is our choice; Envoy's switch between its two has no
 * visible effect. */
static const char *const h2_ignored[] = {"use_oghttp2_codec", NULL};
static const char *const h2_unsupported[] = {
    "allow_connect", "allow_metadata", "custom_settings_parameters", "connection_keepalive",
    "max_metadata_size", NULL};

static int parse_options(cfg_ctx *c, const yn_node *n, cfg_http2 *h)
{
    static const cfg_fields f = {h2_handled, h2_ignored, h2_unsupported};
    int rc;
    bool legacy = h->stream_error_on_invalid_http_message;
    if ((rc = cfg_check_map(c, n, &f)) != 0 ||
        (rc = cfg_get_u32(c, n, "hpack_table_size", false, 0, UINT32_MAX,
                          &h->hpack_table_size)) != 0 ||
        (rc = cfg_get_u32(c, n, "max_concurrent_streams", false, 1, 2147483647u,
                          &h->max_concurrent_streams)) != 0 ||
        (rc = cfg_get_u32(c, n, "initial_stream_window_size", false, 65535, 2147483647u,
                          &h->initial_stream_window_size)) != 0 ||
        (rc = cfg_get_u32(c, n, "initial_connection_window_size", false, 65535, 2147483647u,
                          &h->initial_connection_window_size)) != 0 ||
        (rc = cfg_get_u32(c, n, "max_outbound_frames", false, 1, UINT32_MAX,
                          &h->max_outbound_frames)) != 0 ||
        (rc = cfg_get_u32(c, n, "max_outbound_control_frames", false, 1, UINT32_MAX,
                          &h->max_outbound_control_frames)) != 0 ||
        (rc = cfg_get_u32(c, n, "max_consecutive_inbound_frames_with_empty_payload", false, 0,
                          UINT32_MAX, &h->max_consecutive_inbound_frames_with_empty_payload)) != 0 ||
        (rc = cfg_get_u32(c, n, "max_inbound_priority_frames_per_stream", false, 0, UINT32_MAX,
                          &h->max_inbound_priority_frames_per_stream)) != 0 ||
        (rc = cfg_get_u32(c, n, "max_inbound_window_update_frames_per_data_frame_sent", false,
                          1, UINT32_MAX,
                          &h->max_inbound_window_update_frames_per_data_frame_sent)) != 0 ||
        (rc = cfg_get_bool(c, n, "stream_error_on_invalid_http_messaging", &legacy)) != 0)
        return rc;
    /* The override wins over the deprecated field, which wins over the HCM's. */
    h->stream_error_on_invalid_http_message = legacy;
    return cfg_get_bool(c, n, "override_stream_error_on_invalid_http_message",
                        &h->stream_error_on_invalid_http_message);
}

int cfg_parse_hcm_http2(cfg_ctx *c, const yn_node *hcm, cfg_http2 *h)
{
    *h = (cfg_http2){
        .hpack_table_size = CFG_H2_DEFAULT_HPACK_TABLE_SIZE,
        .max_concurrent_streams = CFG_H2_DEFAULT_MAX_CONCURRENT_STREAMS,
        .initial_stream_window_size = CFG_H2_DEFAULT_INITIAL_STREAM_WINDOW,
        .initial_connection_window_size = CFG_H2_DEFAULT_INITIAL_CONNECTION_WINDOW,
        .max_outbound_frames = CFG_H2_DEFAULT_MAX_OUTBOUND_FRAMES,
        .max_outbound_control_frames = CFG_H2_DEFAULT_MAX_OUTBOUND_CONTROL_FRAMES,
        .max_consecutive_inbound_frames_with_empty_payload = CFG_H2_DEFAULT_MAX_EMPTY_FRAMES,
        .max_inbound_priority_frames_per_stream = CFG_H2_DEFAULT_MAX_PRIORITY_PER_STREAM,
        .max_inbound_window_update_frames_per_data_frame_sent =
            CFG_H2_DEFAULT_MAX_WINDOW_UPDATE_PER_DATA,
    };
    int rc;
    if ((rc = cfg_get_bool(c, hcm, "stream_error_on_invalid_http_message",
                           &h->stream_error_on_invalid_http_message)) != 0)
        return rc;
    const yn_node *n = cfg_get(hcm, "http2_protocol_options");
    if (!n)
        return 0;
    size_t m = cfg_push(c, "http2_protocol_options");
    rc = parse_options(c, n, h);
    cfg_pop(c, m);
    return rc;
}
