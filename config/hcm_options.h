/* The HTTP connection manager's connection and stream options other than
 * HTTP/2's: the timeouts (HCM fields and common_http_protocol_options),
 * request header limits, the Server header and the client address rules.
 * Plain values embedded in cfg_hcm; server_name is owned (freed by
 * cfg_hcm_options_free).  Parsed by config/config_hcm_options.c; enforced by
 * proxy/downstream.c (the per-connection deadline timer), proxy/hcm.c
 * (stream timeouts, headers) and the codecs (header checks). */
#ifndef PF_HCM_OPTIONS_H
#define PF_HCM_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Envoy's defaults. */
#define CFG_DEFAULT_STREAM_IDLE_TIMEOUT_MS (5 * 60 * 1000)
#define CFG_DEFAULT_CX_IDLE_TIMEOUT_MS (60 * 60 * 1000)
#define CFG_DEFAULT_DRAIN_TIMEOUT_MS 5000
#define CFG_DEFAULT_DELAYED_CLOSE_TIMEOUT_MS 1000
#define CFG_DEFAULT_MAX_HEADERS_COUNT 100

/* common_http_protocol_options.headers_with_underscores_action */
typedef enum cfg_underscores_action {
    CFG_UNDERSCORES_ALLOW,
    CFG_UNDERSCORES_REJECT,         /* 400 (h1) / stream reset (h2), as Envoy */
    CFG_UNDERSCORES_DROP,
} cfg_underscores_action;

/* server_header_transformation */
typedef enum cfg_server_header {
    CFG_SERVER_OVERWRITE,           /* always server_name */
    CFG_SERVER_APPEND_IF_ABSENT,    /* the upstream's, else server_name */
    CFG_SERVER_PASS_THROUGH,        /* the upstream's, or none */
} cfg_server_header;

typedef struct cfg_hcm_options {
    /* All in ms; 0 disables (Envoy: an explicit 0 disables every one). */
    uint64_t stream_idle_timeout_ms;        /* default 5 min */
    uint64_t request_timeout_ms;            /* whole request received; default off */
    uint64_t request_headers_timeout_ms;    /* first byte to end of headers; default off */
    uint64_t idle_timeout_ms;               /* connection without streams; default 1 h */
    uint64_t max_connection_duration_ms;    /* then drain; default off */
    uint64_t max_stream_duration_ms;        /* default off */
    /* Accepted for compatibility, not used yet: our HTTP/2 drain is a single
     * GOAWAY (last stream id) rather than Envoy's notice + drain_timeout +
     * GOAWAY, and a close flushes the output then closes without waiting
     * delayed_close_timeout for the peer. */
    uint64_t drain_timeout_ms;              /* default 5 s */
    uint64_t delayed_close_timeout_ms;      /* default 1 s */
    uint32_t max_headers_count;             /* default 100; more: 431 */
    cfg_underscores_action underscores;
    cfg_server_header server_header;
    char *server_name;                      /* owned; NULL: "envoy" */
    size_t server_name_len;
    bool add_user_agent;
    bool use_remote_address;
    uint32_t xff_num_trusted_hops;
} cfg_hcm_options;

struct cfg_ctx;
struct yn_node;
/* Fills *o with Envoy's defaults, then reads the HCM map's fields.
 * Returns 0 or -EINVAL with the located error in c. */
int cfg_parse_hcm_options(struct cfg_ctx *c, const struct yn_node *hcm, cfg_hcm_options *o);
void cfg_hcm_options_free(cfg_hcm_options *o);

#endif
