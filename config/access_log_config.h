/* Access log configuration: http_connection_manager.access_log entries
 * (envoy.config.accesslog.v3.AccessLog with the file, stdout and stderr
 * loggers) and their format strings, compiled at config load.
 *
 * A format string is compiled once into a list of pieces (literal text or a
 * command operator with its arguments); the request path only walks that
 * list (proxy/access_log_format.c renders it).  Everything here is owned by
 * the cfg_hcm that holds it and freed by cfg_access_logs_free(). */
#ifndef PF_ACCESS_LOG_CONFIG_H
#define PF_ACCESS_LOG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

/* Envoy's default access log format (used when no format is given). */
#define CFG_ALOG_DEFAULT_FORMAT                                                           \
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" "   \
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "          \
    "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" "                   \
    "\"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" "                \
    "\"%UPSTREAM_HOST%\"\n"

typedef enum cfg_alog_op {
    CFG_ALOG_LITERAL,
    CFG_ALOG_START_TIME,            /* arg: strftime format or NULL (Envoy default) */
    CFG_ALOG_REQ,                   /* arg: header (lower-case) or pseudo header; alt */
    CFG_ALOG_REQ_WITHOUT_QUERY,
    CFG_ALOG_RESP,
    CFG_ALOG_PROTOCOL,
    CFG_ALOG_RESPONSE_CODE,
    CFG_ALOG_RESPONSE_FLAGS,
    CFG_ALOG_BYTES_RECEIVED,
    CFG_ALOG_BYTES_SENT,
    CFG_ALOG_DURATION,
    CFG_ALOG_REQUEST_DURATION,
    CFG_ALOG_RESPONSE_DURATION,
    CFG_ALOG_UPSTREAM_HOST,
    CFG_ALOG_UPSTREAM_CLUSTER,
    CFG_ALOG_DOWNSTREAM_REMOTE_ADDRESS,
    CFG_ALOG_DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT,
    CFG_ALOG_DOWNSTREAM_LOCAL_ADDRESS,
    CFG_ALOG_DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT,
    CFG_ALOG_ROUTE_NAME,
    CFG_ALOG_UPSTREAM_TRANSPORT_FAILURE_REASON,
} cfg_alog_op;

typedef struct cfg_alog_piece {
    cfg_alog_op op;
    char *text;                 /* LITERAL: the text; START_TIME: format or NULL;
                                 * REQ/RESP: header name, lower-case */
    size_t text_len;
    char *alt;                  /* REQ/RESP: header after '?', lower-case; else NULL */
    size_t alt_len;
    size_t max_len;             /* ":N" truncation of string values; 0: none */
} cfg_alog_piece;

typedef struct cfg_alog_format {
    cfg_alog_piece *pieces;     /* owned */
    size_t n;
} cfg_alog_format;

typedef enum cfg_alog_json_kind {
    CFG_ALOG_JSON_FORMAT,       /* a format string: typed when a single operator */
    CFG_ALOG_JSON_MAP,          /* nested object */
    CFG_ALOG_JSON_RAW,          /* a plain YAML number/bool/null, emitted as is */
} cfg_alog_json_kind;

typedef struct cfg_alog_json_field {
    char *key;
    size_t key_len;
    cfg_alog_json_kind kind;
    cfg_alog_format fmt;                    /* FORMAT */
    struct cfg_alog_json_field *children;   /* MAP; owned */
    size_t n_children;
    char *raw;                              /* RAW: JSON token */
} cfg_alog_json_field;

typedef enum cfg_alog_sink {
    CFG_ALOG_SINK_FILE,
    CFG_ALOG_SINK_STDOUT,
    CFG_ALOG_SINK_STDERR,
} cfg_alog_sink;

struct cfg_access_log {
    char *name;                 /* as written; may be NULL */
    cfg_alog_sink sink;
    char *path;                 /* CFG_ALOG_SINK_FILE */
    bool json;                  /* json_format (else text) */
    bool omit_empty_values;
    cfg_alog_format text;       /* !json */
    cfg_alog_json_field *json_fields;       /* json; owned */
    size_t n_json_fields;
};

/* Compiles an Envoy format string.  Returns 0 and fills *out (free with
 * cfg_alog_format_free), or -EINVAL/-ENOMEM with a message (no location)
 * in err. */
int cfg_alog_compile(const char *fmt, size_t len, cfg_alog_format *out, char *err,
                     size_t errlen);
void cfg_alog_format_free(cfg_alog_format *f);

/* Parses hcm.access_log (looked up in the HCM typed_config map `hcm`) into
 * h->access_logs / h->n_access_logs.  On error the entries parsed so far stay
 * in h (cfg_free releases them). */
struct cfg_ctx;
struct yn_node;
int cfg_parse_access_logs(struct cfg_ctx *c, const struct yn_node *hcm, cfg_hcm *h);

void cfg_access_logs_free(struct cfg_access_log *logs, size_t n);

#endif
