/* HTTP/2 settings of an HTTP connection manager: Envoy's
 * http2_protocol_options (envoy.config.core.v3.Http2ProtocolOptions) and the
 * HCM fields only the HTTP/2 codec reads.  Plain values, embedded in cfg_hcm;
 * nothing here owns memory.  Parsed by config/config_http2.c. */
#ifndef PF_HTTP2_CONFIG_H
#define PF_HTTP2_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

/* Defaults.  Envoy's except max_concurrent_streams: Envoy defaults to
 * 2^31-1, we default to 100 (Envoy's edge best-practice value) so one
 * connection cannot hold an unbounded number of streams. */
#define CFG_H2_DEFAULT_HPACK_TABLE_SIZE 4096u
#define CFG_H2_DEFAULT_MAX_CONCURRENT_STREAMS 100u
#define CFG_H2_DEFAULT_INITIAL_STREAM_WINDOW 268435456u
#define CFG_H2_DEFAULT_INITIAL_CONNECTION_WINDOW 268435456u
#define CFG_H2_DEFAULT_MAX_OUTBOUND_FRAMES 10000u
#define CFG_H2_DEFAULT_MAX_OUTBOUND_CONTROL_FRAMES 1000u
#define CFG_H2_DEFAULT_MAX_EMPTY_FRAMES 1u
#define CFG_H2_DEFAULT_MAX_PRIORITY_PER_STREAM 100u
#define CFG_H2_DEFAULT_MAX_WINDOW_UPDATE_PER_DATA 10u

typedef struct cfg_http2 {
    uint32_t hpack_table_size;
    uint32_t max_concurrent_streams;
    uint32_t initial_stream_window_size;
    uint32_t initial_connection_window_size;
    uint32_t max_outbound_frames;
    uint32_t max_outbound_control_frames;
    uint32_t max_consecutive_inbound_frames_with_empty_payload;
    uint32_t max_inbound_priority_frames_per_stream;
    uint32_t max_inbound_window_update_frames_per_data_frame_sent;
    /* true: a malformed request (RFC 9113 section 8) resets only its stream;
     * false (Envoy's default): the connection is closed with GOAWAY. */
    bool stream_error_on_invalid_http_message;
} cfg_http2;

struct cfg_ctx;
struct yn_node;
/* Fills *h with the defaults, then the HCM map's
 * stream_error_on_invalid_http_message and http2_protocol_options.
 * Returns 0 or -EINVAL with the error in c. */
int cfg_parse_hcm_http2(struct cfg_ctx *c, const struct yn_node *hcm, cfg_http2 *h);

#endif
