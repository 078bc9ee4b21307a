/* http_connection_manager.access_log -> cfg_access_log: the file, stdout and
 * stderr loggers, their log_format (text or JSON) and the compilation of
 * Envoy format strings ("%REQ(:PATH)%") into pieces. */
#include "config/access_log_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

#define FILE_TYPE "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
#define STDOUT_TYPE \
    "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
#define STDERR_TYPE \
    "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog"
#define SUPPORTED_TYPES FILE_TYPE ", " STDOUT_TYPE ", " STDERR_TYPE

/* Envoy loggers we know of but do not implement. */
static const char *const known_types[] = {
    "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig",
    "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.TcpGrpcAccessLogConfig",
    "type.googleapis.com/envoy.extensions.access_loggers.open_telemetry.v3."
    "OpenTelemetryAccessLogConfig",
    "type.googleapis.com/envoy.extensions.access_loggers.wasm.v3.WasmAccessLog",
    "type.googleapis.com/envoy.extensions.access_loggers.fluentd.v3.FluentdAccessLogConfig",
    "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
    NULL};

/* ---- format string compilation ---- */

static const struct {
    const char *name;
    cfg_alog_op op;
} ops[] = {
    {"START_TIME", CFG_ALOG_START_TIME},
    {"REQ", CFG_ALOG_REQ},
    {"REQUEST_HEADER", CFG_ALOG_REQ},
    {"REQ_WITHOUT_QUERY", CFG_ALOG_REQ_WITHOUT_QUERY},
    {"RESP", CFG_ALOG_RESP},
    {"RESPONSE_HEADER", CFG_ALOG_RESP},
    {"PROTOCOL", CFG_ALOG_PROTOCOL},
    {"RESPONSE_CODE", CFG_ALOG_RESPONSE_CODE},
    {"RESPONSE_FLAGS", CFG_ALOG_RESPONSE_FLAGS},
    {"BYTES_RECEIVED", CFG_ALOG_BYTES_RECEIVED},
    {"BYTES_SENT", CFG_ALOG_BYTES_SENT},
    {"DURATION", CFG_ALOG_DURATION},
    {"REQUEST_DURATION", CFG_ALOG_REQUEST_DURATION},
    {"RESPONSE_DURATION", CFG_ALOG_RESPONSE_DURATION},
    {"UPSTREAM_HOST", CFG_ALOG_UPSTREAM_HOST},
    {"UPSTREAM_REMOTE_ADDRESS", CFG_ALOG_UPSTREAM_HOST},
    {"UPSTREAM_CLUSTER", CFG_ALOG_UPSTREAM_CLUSTER},
    {"DOWNSTREAM_REMOTE_ADDRESS", CFG_ALOG_DOWNSTREAM_REMOTE_ADDRESS},
    {"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", CFG_ALOG_DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT},
    /* No PROXY protocol or XFF trust yet: the direct peer is the remote. */
    {"DOWNSTREAM_DIRECT_REMOTE_ADDRESS", CFG_ALOG_DOWNSTREAM_REMOTE_ADDRESS},
    {"DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT",
     CFG_ALOG_DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT},
    {"DOWNSTREAM_LOCAL_ADDRESS", CFG_ALOG_DOWNSTREAM_LOCAL_ADDRESS},
    {"DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", CFG_ALOG_DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT},
    {"ROUTE_NAME", CFG_ALOG_ROUTE_NAME},
    {"UPSTREAM_TRANSPORT_FAILURE_REASON", CFG_ALOG_UPSTREAM_TRANSPORT_FAILURE_REASON},
};

/* Envoy command operators that are real but not implemented here. */
static const char *const known_ops[] = {
    "RESPONSE_CODE_DETAILS", "CONNECTION_TERMINATION_DETAILS", "TRAILER", "RESPONSE_TRAILER",
    "REQUEST_HEADERS_BYTES", "RESPONSE_HEADERS_BYTES", "RESPONSE_TRAILERS_BYTES",
    "UPSTREAM_WIRE_BYTES_SENT", "UPSTREAM_WIRE_BYTES_RECEIVED", "UPSTREAM_HEADER_BYTES_SENT",
    "UPSTREAM_HEADER_BYTES_RECEIVED", "DOWNSTREAM_WIRE_BYTES_SENT",
    "DOWNSTREAM_WIRE_BYTES_RECEIVED", "DOWNSTREAM_HEADER_BYTES_SENT",
    "DOWNSTREAM_HEADER_BYTES_RECEIVED", "RESPONSE_TX_DURATION", "DOWNSTREAM_HANDSHAKE_DURATION",
    "ROUNDTRIP_DURATION", "COMMON_DURATION", "START_TIME_LOCAL", "EMIT_TIME", "EMIT_TIME_LOCAL",
    "RESPONSE_FLAGS_LONG", "UPSTREAM_HOST_NAME", "UPSTREAM_HOST_NAME_WITHOUT_PORT",
    "UPSTREAM_LOCAL_ADDRESS", "UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", "UPSTREAM_LOCAL_PORT",
    "UPSTREAM_REMOTE_PORT", "UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", "UPSTREAM_REQUEST_ATTEMPT_COUNT",
    "UPSTREAM_CONNECTION_POOL_READY_DURATION", "UPSTREAM_CONNECTION_ID", "UPSTREAM_FILTER_STATE",
    "DOWNSTREAM_REMOTE_PORT", "DOWNSTREAM_DIRECT_REMOTE_PORT", "DOWNSTREAM_LOCAL_PORT",
    "DOWNSTREAM_LOCAL_DNS_SAN", "DOWNSTREAM_LOCAL_URI_SAN", "DOWNSTREAM_LOCAL_SUBJECT",
    "DOWNSTREAM_PEER_URI_SAN", "DOWNSTREAM_PEER_DNS_SAN", "DOWNSTREAM_PEER_SUBJECT",
    "DOWNSTREAM_PEER_ISSUER", "DOWNSTREAM_TLS_SESSION_ID", "DOWNSTREAM_TLS_CIPHER",
    "DOWNSTREAM_TLS_VERSION", "DOWNSTREAM_PEER_FINGERPRINT_256", "DOWNSTREAM_PEER_FINGERPRINT_1",
    "DOWNSTREAM_PEER_SERIAL", "DOWNSTREAM_PEER_CERT", "DOWNSTREAM_PEER_CERT_V_START",
    "DOWNSTREAM_PEER_CERT_V_END", "DOWNSTREAM_TRANSPORT_FAILURE_REASON",
    "UPSTREAM_PEER_SUBJECT", "UPSTREAM_PEER_ISSUER", "UPSTREAM_TLS_SESSION_ID",
    "UPSTREAM_TLS_CIPHER", "UPSTREAM_TLS_VERSION", "UPSTREAM_PEER_CERT",
    "CONNECTION_ID", "REQUESTED_SERVER_NAME", "HOSTNAME", "LOCAL_REPLY_BODY", "FILTER_STATE",
    "DYNAMIC_METADATA", "CLUSTER_METADATA", "UPSTREAM_METADATA", "ROUTE_METADATA",
    "VIRTUAL_CLUSTER_NAME", "STREAM_ID", "UNIQUE_ID", "ENVIRONMENT", "ACCESS_LOG_TYPE",
    "GRPC_STATUS", "GRPC_STATUS_NUMBER", "REQ_WITHOUT_QUERY_SIZE", "STREAM_INFO_REQ",
    "CEL", "METADATA", "TRACE_ID", "CUSTOM_FLAGS", "QUERY_PARAM", "PATH", "UPSTREAM_PROTOCOL",
    NULL};

static bool op_takes_header(cfg_alog_op op)
{
    return op == CFG_ALOG_REQ || op == CFG_ALOG_RESP || op == CFG_ALOG_REQ_WITHOUT_QUERY;
}

void cfg_alog_format_free(cfg_alog_format *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->pieces[i].text);
        free(f->pieces[i].alt);
    }
    free(f->pieces);
    f->pieces = NULL;
    f->n = 0;
}

static int add_piece(cfg_alog_format *f, size_t *cap, cfg_alog_piece p)
{
    if (f->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        cfg_alog_piece *np = realloc(f->pieces, nc * sizeof *np);
        if (!np)
            return -ENOMEM;
        f->pieces = np;
        *cap = nc;
    }
    f->pieces[f->n++] = p;
    return 0;
}

static char *dup_lower(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++)
        d[i] = (char)tolower((unsigned char)s[i]);
    d[n] = '\0';
    return d;
}

static int flush_literal(cfg_alog_format *f, size_t *cap, const char *lit, size_t n)
{
    if (!n)
        return 0;
    cfg_alog_piece p = {.op = CFG_ALOG_LITERAL, .text_len = n};
    if (!(p.text = malloc(n + 1)))
        return -ENOMEM;
    memcpy(p.text, lit, n);
    p.text[n] = '\0';
    if (add_piece(f, cap, p)) {
        free(p.text);
        return -ENOMEM;
    }
    return 0;
}

#define CERR(...) (snprintf(err, errlen, __VA_ARGS__), -EINVAL)

/* Fills p's arguments for one command; pos is the operator's offset (for
 * messages). */
static int command_args(cfg_alog_piece *p, const char *name, size_t nlen, const char *arg,
                        size_t alen, bool has_arg, size_t pos, char *err, size_t errlen)
{
    if (op_takes_header(p->op)) {
        if (!has_arg || alen == 0)
            return CERR("command operator %%%.*s%% at offset %zu needs a header name, "
                        "e.g. %%%.*s(:PATH)%%", (int)nlen, name, pos, (int)nlen, name);
        const char *q = memchr(arg, '?', alen);
        size_t mlen = q ? (size_t)(q - arg) : alen;
        if (q && memchr(q + 1, '?', alen - mlen - 1))
            return CERR("command operator %%%.*s%% at offset %zu: more than one alternative "
                        "header given", (int)nlen, name, pos);
        if (mlen == 0 || (q && mlen + 1 == alen))
            return CERR("command operator %%%.*s%% at offset %zu: empty header name",
                        (int)nlen, name, pos);
        p->text = dup_lower(arg, mlen);
        p->text_len = mlen;
        if (q) {
            p->alt = dup_lower(q + 1, alen - mlen - 1);
            p->alt_len = alen - mlen - 1;
        }
        if (!p->text || (q && !p->alt))
            return -ENOMEM;
        return 0;
    }
    if (p->op == CFG_ALOG_START_TIME) {
        if (has_arg && alen) {
            if (!(p->text = malloc(alen + 1)))
                return -ENOMEM;
            memcpy(p->text, arg, alen);
            p->text[alen] = '\0';
            p->text_len = alen;
        }
        return 0;
    }
    if (has_arg)
        return CERR("command operator %%%.*s%% at offset %zu takes no argument", (int)nlen,
                    name, pos);
    return 0;
}

int cfg_alog_compile(const char *fmt, size_t len, cfg_alog_format *out, char *err,
                     size_t errlen)
{
    cfg_alog_format f = {0};
    size_t cap = 0, i = 0;
    char *lit = malloc(len + 1);        /* literal text with %% collapsed */
    size_t lit_n = 0;
    int rc = 0;
    if (!lit)
        return -ENOMEM;
    while (i < len) {
        if (fmt[i] != '%') {
            lit[lit_n++] = fmt[i++];
            continue;
        }
        if (i + 1 < len && fmt[i + 1] == '%') {
            lit[lit_n++] = '%';
            i += 2;
            continue;
        }
        size_t pos = i, j = i + 1;
        while (j < len && (isupper((unsigned char)fmt[j]) || isdigit((unsigned char)fmt[j]) ||
                           fmt[j] == '_'))
            j++;
        const char *name = fmt + i + 1;
        size_t nlen = j - i - 1;
        if (nlen == 0) {
            rc = CERR("'%%' at offset %zu does not start a command operator "
                      "(write %%%% for a literal '%%')", pos);
            goto fail;
        }
        const char *arg = NULL;
        size_t alen = 0;
        bool has_arg = false;
        if (j < len && fmt[j] == '(') {
            const char *close = memchr(fmt + j + 1, ')', len - j - 1);
            if (!close) {
                rc = CERR("command operator %%%.*s at offset %zu: missing ')'", (int)nlen, name,
                          pos);
                goto fail;
            }
            has_arg = true;
            arg = fmt + j + 1;
            alen = (size_t)(close - arg);
            j = (size_t)(close - fmt) + 1;
        }
        size_t max_len = 0;
        if (j < len && fmt[j] == ':') {
            size_t k = j + 1;
            while (k < len && isdigit((unsigned char)fmt[k])) {
                if (max_len > 100000000) {
                    rc = CERR("command operator %%%.*s%% at offset %zu: length too large",
                              (int)nlen, name, pos);
                    goto fail;
                }
                max_len = max_len * 10 + (size_t)(fmt[k] - '0');
                k++;
            }
            if (k == j + 1) {
                rc = CERR("command operator %%%.*s at offset %zu: expected a length after ':'",
                          (int)nlen, name, pos);
                goto fail;
            }
            j = k;
        }
        if (j >= len || fmt[j] != '%') {
            rc = CERR("command operator %%%.*s at offset %zu: missing closing '%%'", (int)nlen,
                      name, pos);
            goto fail;
        }
        i = j + 1;
        cfg_alog_piece p = {.op = CFG_ALOG_LITERAL, .max_len = max_len};
        bool found = false;
        for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
            if (strlen(ops[k].name) == nlen && memcmp(ops[k].name, name, nlen) == 0) {
                p.op = ops[k].op;
                found = true;
                break;
            }
        }
        if (!found) {
            bool known = false;
            for (size_t k = 0; known_ops[k]; k++)
                if (strlen(known_ops[k]) == nlen && memcmp(known_ops[k], name, nlen) == 0)
                    known = true;
            if (known)
                rc = CERR("not supported yet: command operator %%%.*s%% (at offset %zu)",
                          (int)nlen, name, pos);
            else
                rc = CERR("unknown command operator %%%.*s%% at offset %zu", (int)nlen, name,
                          pos);
            goto fail;
        }
        if ((rc = flush_literal(&f, &cap, lit, lit_n)) != 0)
            goto fail;
        lit_n = 0;
        if ((rc = command_args(&p, name, nlen, arg, alen, has_arg, pos, err, errlen)) != 0 ||
            (rc = add_piece(&f, &cap, p)) != 0) {
            free(p.text);
            free(p.alt);
            goto fail;
        }
    }
    if ((rc = flush_literal(&f, &cap, lit, lit_n)) != 0)
        goto fail;
    free(lit);
    *out = f;
    return 0;
fail:
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    free(lit);
    cfg_alog_format_free(&f);
    return rc;
}

/* ---- config ---- */

static void free_json_fields(cfg_alog_json_field *fs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(fs[i].key);
        free(fs[i].raw);
        cfg_alog_format_free(&fs[i].fmt);
        free_json_fields(fs[i].children, fs[i].n_children);
    }
    free(fs);
}

void cfg_access_logs_free(struct cfg_access_log *logs, size_t n)
{
    if (!logs)
        return;
    for (size_t i = 0; i < n; i++) {
        free(logs[i].name);
        free(logs[i].path);
        cfg_alog_format_free(&logs[i].text);
        free_json_fields(logs[i].json_fields, logs[i].n_json_fields);
    }
    free(logs);
}

/* A format string node -> compiled format, errors located at the node. */
static int compile_node(cfg_ctx *c, const yn_node *n, cfg_alog_format *out)
{
    if (n->kind != YN_SCALAR)
        return cfg_err(c, n, "expected a format string");
    if (strlen(n->str) != n->len)
        return cfg_err(c, n, "format string must not contain NUL characters");
    char msg[512];
    const char *s = n->len ? n->str : CFG_ALOG_DEFAULT_FORMAT;
    int rc = cfg_alog_compile(s, strlen(s), out, msg, sizeof msg);
    if (rc)
        return cfg_err(c, n, "invalid format string: %s", msg);
    return 0;
}

static bool is_json_literal(const yn_node *n)
{
    if (!n->plain)
        return false;
    if (!strcmp(n->str, "true") || !strcmp(n->str, "false") || !strcmp(n->str, "null"))
        return true;
    /* a JSON number */
    const char *p = n->str;
    if (*p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        return false;
    char *end;
    strtod(n->str, &end);
    return *end == '\0' && !strchr(n->str, 'x') && !strchr(n->str, 'X');
}

static int parse_json_map(cfg_ctx *c, const yn_node *m, cfg_alog_json_field **out,
                          size_t *n_out)
{
    if (m->kind != YN_MAP)
        return cfg_err(c, m, "expected a map of keys to format strings");
    if (m->n == 0)
        return 0;
    cfg_alog_json_field *fs = calloc(m->n, sizeof *fs);
    if (!fs)
        return cfg_err(c, m, "out of memory");
    *out = fs;
    *n_out = m->n;
    for (size_t i = 0; i < m->n; i++) {
        const yn_node *k = m->keys[i], *v = m->items[i];
        cfg_alog_json_field *f = &fs[i];
        if (!(f->key = malloc(k->len + 1)))
            return cfg_err(c, k, "out of memory");
        memcpy(f->key, k->str, k->len + 1);
        f->key_len = k->len;
        size_t mk = cfg_push(c, f->key);
        int rc = 0;
        if (v->kind == YN_MAP) {
            f->kind = CFG_ALOG_JSON_MAP;
            rc = parse_json_map(c, v, &f->children, &f->n_children);
        } else if (v->kind == YN_SCALAR && (yn_is_null(v) || is_json_literal(v))) {
            f->kind = CFG_ALOG_JSON_RAW;
            if (!(f->raw = strdup(yn_is_null(v) ? "null" : v->str)))
                rc = cfg_err(c, v, "out of memory");
        } else if (v->kind == YN_SCALAR) {
            f->kind = CFG_ALOG_JSON_FORMAT;
            if (v->len == 0) {
                f->kind = CFG_ALOG_JSON_RAW;
                if (!(f->raw = strdup("\"\"")))
                    rc = cfg_err(c, v, "out of memory");
            } else {
                rc = compile_node(c, v, &f->fmt);
            }
        } else {
            rc = cfg_err(c, v, "not supported yet: a list in json_format");
        }
        cfg_pop(c, mk);
        if (rc)
            return rc;
    }
    return 0;
}

/* SubstitutionFormatString (log_format). */
static int parse_log_format(cfg_ctx *c, const yn_node *lf, struct cfg_access_log *al)
{
    static const char *const h[] = {"text_format", "json_format", "text_format_source",
                                    "omit_empty_values", NULL};
    static const char *const ign[] = {"content_type", NULL};
    static const char *const uns[] = {"formatters", "json_format_options", NULL};
    static const cfg_fields f = {h, ign, uns};
    static const char *const ds_h[] = {"inline_string", NULL};
    static const char *const ds_u[] = {"filename", "inline_bytes", "environment_variable",
                                       "watched_directory", NULL};
    static const cfg_fields dsf = {ds_h, NULL, ds_u};
    int rc;
    if ((rc = cfg_check_map(c, lf, &f)) != 0 ||
        (rc = cfg_get_bool(c, lf, "omit_empty_values", &al->omit_empty_values)) != 0)
        return rc;
    const char *names[] = {"text_format", "json_format", "text_format_source"};
    const yn_node *vals[3];
    int count = 0, which = -1;
    for (int i = 0; i < 3; i++) {
        vals[i] = cfg_get(lf, names[i]);
        if (vals[i]) {
            count++;
            if (which < 0)
                which = i;
            else
                return cfg_err(c, cfg_key_node(lf, names[i]),
                               "only one of text_format, json_format and text_format_source "
                               "may be set (%s is set too)", names[which]);
        }
    }
    if (!count)
        return cfg_err(c, lf, "one of text_format, json_format or text_format_source is "
                              "required");
    size_t m = cfg_push(c, names[which]);
    const yn_node *v = vals[which];
    if (which == 0) {
        rc = compile_node(c, v, &al->text);
    } else if (which == 1) {
        al->json = true;
        rc = parse_json_map(c, v, &al->json_fields, &al->n_json_fields);
    } else if ((rc = cfg_check_map(c, v, &dsf)) == 0) {
        const yn_node *is = cfg_get(v, "inline_string");
        if (!is) {
            rc = cfg_err(c, v, "missing required field 'inline_string'");
        } else {
            size_t m2 = cfg_push(c, "inline_string");
            rc = compile_node(c, is, &al->text);
            cfg_pop(c, m2);
        }
    }
    cfg_pop(c, m);
    return rc;
}

/* The typed_config of one logger. */
static int parse_logger(cfg_ctx *c, const yn_node *tc, struct cfg_access_log *al)
{
    static const char *const file_h[] = {"@type", "path", "format", "json_format",
                                         "typed_json_format", "log_format", NULL};
    static const cfg_fields file_f = {file_h, NULL, NULL};
    static const char *const std_h[] = {"@type", "log_format", NULL};
    static const cfg_fields std_f = {std_h, NULL, NULL};
    int rc;
    if (tc->kind != YN_MAP)
        return cfg_err(c, tc, "expected a map");
    const yn_node *t = cfg_get(tc, "@type");
    if (!t)
        return cfg_err(c, tc, "missing required field '@type' (expected one of: %s)",
                       SUPPORTED_TYPES);
    size_t m = cfg_push(c, "@type");
    if (t->kind != YN_SCALAR) {
        rc = cfg_err(c, t, "expected a string (one of: %s)", SUPPORTED_TYPES);
    } else if (!strcmp(t->str, FILE_TYPE)) {
        al->sink = CFG_ALOG_SINK_FILE;
        rc = 0;
    } else if (!strcmp(t->str, STDOUT_TYPE)) {
        al->sink = CFG_ALOG_SINK_STDOUT;
        rc = 0;
    } else if (!strcmp(t->str, STDERR_TYPE)) {
        al->sink = CFG_ALOG_SINK_STDERR;
        rc = 0;
    } else {
        bool known = false;
        for (size_t i = 0; known_types[i]; i++)
            known = known || !strcmp(known_types[i], t->str);
        if (known)
            rc = cfg_err(c, t, "not supported yet: access logger %s (supported: %s)", t->str,
                         SUPPORTED_TYPES);
        else
            rc = cfg_err(c, t, "unknown access logger type '%s' (expected one of: %s)", t->str,
                         SUPPORTED_TYPES);
    }
    cfg_pop(c, m);
    if (rc)
        return rc;

    if (al->sink != CFG_ALOG_SINK_FILE) {
        if ((rc = cfg_check_map(c, tc, &std_f)) != 0)
            return rc;
    } else {
        if ((rc = cfg_check_map(c, tc, &file_f)) != 0 ||
            (rc = cfg_get_str(c, tc, "path", true, &al->path)) != 0)
            return rc;
        /* oneof access_log_format: format | json_format | typed_json_format | log_format */
        const char *names[] = {"format", "json_format", "typed_json_format", "log_format"};
        int which = -1;
        for (int i = 0; i < 4; i++) {
            if (!cfg_get(tc, names[i]))
                continue;
            if (which >= 0)
                return cfg_err(c, cfg_key_node(tc, names[i]),
                               "only one of format, json_format, typed_json_format and "
                               "log_format may be set (%s is set too)", names[which]);
            which = i;
        }
        if (which >= 0 && which < 3) {
            const yn_node *v = cfg_get(tc, names[which]);
            m = cfg_push(c, names[which]);
            if (which == 0) {
                rc = compile_node(c, v, &al->text);
            } else {
                al->json = true;
                rc = parse_json_map(c, v, &al->json_fields, &al->n_json_fields);
            }
            cfg_pop(c, m);
            return rc;
        }
    }
    const yn_node *lf = cfg_get(tc, "log_format");
    if (lf) {
        m = cfg_push(c, "log_format");
        rc = parse_log_format(c, lf, al);
        cfg_pop(c, m);
        return rc;
    }
    char msg[256];
    if ((rc = cfg_alog_compile(CFG_ALOG_DEFAULT_FORMAT, strlen(CFG_ALOG_DEFAULT_FORMAT),
                               &al->text, msg, sizeof msg)) != 0)
        return cfg_err(c, tc, "%s", msg);
    return 0;
}

int cfg_parse_access_logs(cfg_ctx *c, const yn_node *hcm, cfg_hcm *h)
{
    static const char *const al_h[] = {"name", "typed_config", NULL};
    static const char *const al_u[] = {"filter", "config", NULL};
    static const cfg_fields alf = {al_h, NULL, al_u};
    const yn_node *seq = cfg_get(hcm, "access_log");
    if (!seq)
        return 0;
    size_t n, m = cfg_push(c, "access_log");
    int rc = cfg_expect_seq(c, seq, &n);
    if (rc || n == 0)
        goto out;
    if (!(h->access_logs = calloc(n, sizeof *h->access_logs))) {
        rc = cfg_err(c, seq, "out of memory");
        goto out;
    }
    h->n_access_logs = n;
    for (size_t i = 0; i < n && !rc; i++) {
        const yn_node *e = seq->items[i];
        struct cfg_access_log *al = &h->access_logs[i];
        size_t mi = cfg_push_idx(c, i);
        if ((rc = cfg_check_map(c, e, &alf)) == 0 &&
            (rc = cfg_get_str(c, e, "name", false, &al->name)) == 0) {
            const yn_node *tc = cfg_get(e, "typed_config");
            if (!tc) {
                rc = cfg_err(c, e, "missing required field 'typed_config' (expected @type "
                                   "one of: %s)", SUPPORTED_TYPES);
            } else {
                size_t mt = cfg_push(c, "typed_config");
                rc = parse_logger(c, tc, al);
                cfg_pop(c, mt);
            }
        }
        cfg_pop(c, mi);
    }
out:
    cfg_pop(c, m);
    return rc;
}
