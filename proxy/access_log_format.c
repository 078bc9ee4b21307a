/* Renders a compiled access log format (config/access_log_config.h) for one
 * finished stream: text lines with Envoy's "-" for missing values, or one
 * JSON object per line with typed numbers and null for missing values. */
#include "proxy/access_log.h"
#include "proxy/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/http.h"
#include "proxy/stream.h"

void pf_alog_buf_free(pf_alog_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

static int buf_reserve(pf_alog_buf *b, size_t extra)
{
    if (b->cap - b->n >= extra)
        return 0;
    size_t nc = b->cap ? b->cap : 1024;
    while (nc - b->n < extra)
        nc *= 2;
    char *np = realloc(b->p, nc);
    if (!np)
        return -ENOMEM;
    b->p = np;
    b->cap = nc;
    return 0;
}

static int buf_put(pf_alog_buf *b, const char *p, size_t n)
{
    if (buf_reserve(b, n))
        return -ENOMEM;
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}

#define buf_lit(b, lit) buf_put((b), (lit), sizeof(lit) - 1)

/* ---- values ---- */

typedef enum { V_MISSING, V_STR, V_NUM } vkind;

typedef struct value {
    vkind kind;
    const char *p;
    size_t n;
    uint64_t num;
} value;

#define ALOG_TMP 512

/* Envoy's %START_TIME%: UTC, `%Y-%m-%dT%H:%M:%E3SZ` by default; a custom
 * format is strftime plus %E<n>S (seconds with n decimals), %<n>f and %f
 * (n or 9 fractional digits).  Returns the length written to out. */
static size_t format_time(const char *fmt, uint64_t wall_us, char *out, size_t outn)
{
    time_t sec = (time_t)(wall_us / 1000000u);
    uint32_t usec = (uint32_t)(wall_us % 1000000u);
    struct tm tm;
    if (!fmt) {
        /* The default is used on every line: cache the seconds part. */
        static __thread time_t cached_sec = (time_t)-1;
        static __thread char cached[32];
        if (sec != cached_sec) {
            gmtime_r(&sec, &tm);
            strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
            cached_sec = sec;
        }
        int n = snprintf(out, outn, "%s.%03uZ", cached, usec / 1000u);
        return n < 0 ? 0 : (size_t)n < outn ? (size_t)n : outn - 1;
    }
    char digits[10];
    snprintf(digits, sizeof digits, "%06u000", usec);      /* nanoseconds, 9 digits */
    char exp[ALOG_TMP];
    size_t e = 0;
    for (size_t i = 0; fmt[i] && e + 16 < sizeof exp; i++) {
        if (fmt[i] != '%' || !fmt[i + 1]) {
            exp[e++] = fmt[i];
            continue;
        }
        const char *p = fmt + i + 1;
        if (p[0] == 'E' && p[1] >= '1' && p[1] <= '9' && p[2] == 'S') {
            int nd = p[1] - '0';
            memcpy(exp + e, "%S.", 3);
            e += 3;
            memcpy(exp + e, digits, (size_t)nd);
            e += (size_t)nd;
            i += 3;
        } else if (p[0] >= '1' && p[0] <= '9' && p[1] == 'f') {
            int nd = p[0] - '0';
            memcpy(exp + e, digits, (size_t)nd);
            e += (size_t)nd;
            i += 2;
        } else if (p[0] == 'f') {
            memcpy(exp + e, digits, 9);
            e += 9;
            i += 1;
        } else {
            exp[e++] = '%';
            exp[e++] = p[0];
            i += 1;
        }
    }
    exp[e] = '\0';
    gmtime_r(&sec, &tm);
    size_t n = strftime(out, outn, exp, &tm);
    return n;           /* 0 when it did not fit (or an empty result) */
}

static value str_val(pf_str s)
{
    return s.n ? (value){ V_STR, s.p, s.n, 0 } : (value){ V_MISSING, NULL, 0, 0 };
}

static value cstr_val(const char *s)
{
    return s ? (value){ V_STR, s, strlen(s), 0 } : (value){ V_MISSING, NULL, 0, 0 };
}

static value num_val(uint64_t n)
{
    return (value){ V_NUM, NULL, 0, n };
}

static value tmp_val(char *tmp, size_t n)
{
    return n ? (value){ V_STR, tmp, n, 0 } : (value){ V_MISSING, NULL, 0, 0 };
}

static value duration_val(uint64_t end, uint64_t start)
{
    return end ? num_val(end >= start ? end - start : 0) : (value){ V_MISSING, NULL, 0, 0 };
}

/* A request header, with the pseudo headers mapped to the stream fields. */
static bool req_header(const pf_stream *s, const char *name, size_t n, pf_str *out)
{
    if (n && name[0] == ':') {
        if (n == 7 && !memcmp(name, ":method", 7))
            *out = s->method;
        else if (n == 5 && !memcmp(name, ":path", 5))
            *out = s->path;
        else if (n == 10 && !memcmp(name, ":authority", 10))
            *out = s->authority;
        else if (n == 7 && !memcmp(name, ":scheme", 7))
            *out = s->scheme;
        else
            return false;
        return out->n != 0;
    }
    if (n == 4 && !memcmp(name, "host", 4) && s->authority.n) {
        *out = s->authority;
        return true;
    }
    const pf_hdr *h = pf_hdrs_get(&s->req_hdrs, name, n);
    if (!h)
        return false;
    *out = h->value;
    return true;
}

static bool resp_header(const pf_stream *s, const char *name, size_t n, pf_str *out,
                        char *tmp)
{
    if (n == 7 && !memcmp(name, ":status", 7)) {
        if (!s->status)
            return false;
        int k = snprintf(tmp, 16, "%d", s->status);
        *out = (pf_str){ tmp, (size_t)k };
        return true;
    }
    const pf_hdr *h = pf_hdrs_get(&s->resp_hdrs, name, n);
    if (!h)
        return false;
    *out = h->value;
    return true;
}

static value header_val(const cfg_alog_piece *pc, const pf_stream *s, char *tmp)
{
    pf_str v;
    bool found;
    if (pc->op == CFG_ALOG_RESP) {
        found = resp_header(s, pc->text, pc->text_len, &v, tmp) ||
                (pc->alt && resp_header(s, pc->alt, pc->alt_len, &v, tmp));
    } else {
        found = req_header(s, pc->text, pc->text_len, &v) ||
                (pc->alt && req_header(s, pc->alt, pc->alt_len, &v));
        if (found && pc->op == CFG_ALOG_REQ_WITHOUT_QUERY) {
            const char *q = memchr(v.p, '?', v.n);
            if (q)
                v.n = (size_t)(q - v.p);
        }
    }
    if (!found)
        return (value){ V_MISSING, NULL, 0, 0 };
    return (value){ V_STR, v.p, v.n, 0 };
}

static value eval(const cfg_alog_piece *pc, const pf_stream *s, const cfg_bootstrap *cfg,
                  uint64_t now_ms, char *tmp)
{
    value v;
    switch (pc->op) {
    case CFG_ALOG_LITERAL:
        return (value){ V_STR, pc->text, pc->text_len, 0 };
    case CFG_ALOG_START_TIME:
        v = tmp_val(tmp, format_time(pc->text, s->start_wall_us, tmp, ALOG_TMP));
        break;
    case CFG_ALOG_REQ:
    case CFG_ALOG_REQ_WITHOUT_QUERY:
    case CFG_ALOG_RESP:
        v = header_val(pc, s, tmp);
        break;
    case CFG_ALOG_PROTOCOL:
        v = str_val(s->protocol);
        break;
    case CFG_ALOG_RESPONSE_CODE:
        return num_val(s->status > 0 ? (uint64_t)s->status : 0);
    case CFG_ALOG_RESPONSE_FLAGS:
        pf_stream_flags_str(s->response_flags, tmp, ALOG_TMP);
        v = cstr_val(tmp);
        break;
    case CFG_ALOG_BYTES_RECEIVED:
        return num_val(s->bytes_received);
    case CFG_ALOG_BYTES_SENT:
        return num_val(s->bytes_sent);
    case CFG_ALOG_DURATION:
        return num_val(now_ms >= s->start_ms ? now_ms - s->start_ms : 0);
    case CFG_ALOG_REQUEST_DURATION:
        return duration_val(s->req_end_ms, s->start_ms);
    case CFG_ALOG_RESPONSE_DURATION:
        return duration_val(s->resp_first_byte_ms, s->start_ms);
    case CFG_ALOG_UPSTREAM_HOST:
        v = s->has_upstream_host ? tmp_val(tmp, pf_addr_format(&s->upstream_host, true, tmp,
                                                             ALOG_TMP))
                                 : (value){ V_MISSING, NULL, 0, 0 };
        break;
    case CFG_ALOG_UPSTREAM_CLUSTER:
        v = (value){ V_MISSING, NULL, 0, 0 };
        if (s->route && s->route->action == CFG_ACTION_ROUTE && cfg &&
            s->cluster < cfg->n_clusters)
            v = cstr_val(cfg->clusters[s->cluster].name);
        break;
    case CFG_ALOG_DOWNSTREAM_REMOTE_ADDRESS:
    case CFG_ALOG_DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT:
        v = s->downstream_remote
                ? tmp_val(tmp, pf_addr_format(s->downstream_remote,
                                           pc->op == CFG_ALOG_DOWNSTREAM_REMOTE_ADDRESS, tmp,
                                           ALOG_TMP))
                : (value){ V_MISSING, NULL, 0, 0 };
        break;
    case CFG_ALOG_DOWNSTREAM_LOCAL_ADDRESS:
    case CFG_ALOG_DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT:
        v = s->downstream_local
                ? tmp_val(tmp, pf_addr_format(s->downstream_local,
                                           pc->op == CFG_ALOG_DOWNSTREAM_LOCAL_ADDRESS, tmp,
                                           ALOG_TMP))
                : (value){ V_MISSING, NULL, 0, 0 };
        break;
    case CFG_ALOG_ROUTE_NAME:
        v = cstr_val(s->route ? s->route->name : NULL);
        break;
    case CFG_ALOG_UPSTREAM_TRANSPORT_FAILURE_REASON:
    default:
        return (value){ V_MISSING, NULL, 0, 0 };
    }
    if (v.kind == V_STR && pc->max_len && v.n > pc->max_len)
        v.n = pc->max_len;
    return v;
}

/* A value as text; missing -> "-" (or "" with omit_empty_values). */
static int put_text(pf_alog_buf *out, const value *v, bool omit_empty)
{
    char num[24];
    switch (v->kind) {
    case V_STR:
        return buf_put(out, v->p, v->n);
    case V_NUM: {
        int n = snprintf(num, sizeof num, "%llu", (unsigned long long)v->num);
        return buf_put(out, num, (size_t)n);
    }
    default:
        return omit_empty ? 0 : buf_lit(out, "-");
    }
}

static int render_text(const cfg_alog_format *f, const pf_stream *s, const cfg_bootstrap *cfg,
                       uint64_t now_ms, bool omit_empty, pf_alog_buf *out)
{
    char tmp[ALOG_TMP];
    for (size_t i = 0; i < f->n; i++) {
        value v = eval(&f->pieces[i], s, cfg, now_ms, tmp);
        if (put_text(out, &v, omit_empty))
            return -ENOMEM;
    }
    return 0;
}

/* ---- JSON ---- */

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    uint32_t min;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    uint32_t cp = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Appends p as the inside of a JSON string; invalid UTF-8 becomes U+FFFD. */
static int json_escape(pf_alog_buf *out, const char *p, size_t n)
{
    if (buf_reserve(out, n + 2))
        return -ENOMEM;
    const unsigned char *u = (const unsigned char *)p;
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\')
            run++;
        if (run > i && buf_put(out, p + i, run - i))
            return -ENOMEM;
        i = run;
        if (i >= n)
            break;
        unsigned char c = u[i];
        char esc[8];
        int k = 0;
        if (c == '"')
            k = snprintf(esc, sizeof esc, "\\\"");
        else if (c == '\\')
            k = snprintf(esc, sizeof esc, "\\\\");
        else if (c == '\n')
            k = snprintf(esc, sizeof esc, "\\n");
        else if (c == '\r')
            k = snprintf(esc, sizeof esc, "\\r");
        else if (c == '\t')
            k = snprintf(esc, sizeof esc, "\\t");
        else if (c < 0x20)
            k = snprintf(esc, sizeof esc, "\\u%04x", c);
        if (k) {
            if (buf_put(out, esc, (size_t)k))
                return -ENOMEM;
            i++;
            continue;
        }
        size_t l = utf8_len(u + i, n - i);
        if (l) {
            if (buf_put(out, p + i, l))
                return -ENOMEM;
            i += l;
        } else {
            if (buf_lit(out, "\xef\xbf\xbd"))
                return -ENOMEM;
            i++;
        }
    }
    return 0;
}

static int json_string(pf_alog_buf *out, const char *p, size_t n)
{
    if (buf_lit(out, "\"") || json_escape(out, p, n) || buf_lit(out, "\""))
        return -ENOMEM;
    return 0;
}

typedef struct jctx {
    const pf_stream *s;
    const cfg_bootstrap *cfg;
    uint64_t now_ms;
    bool omit_empty;
    pf_alog_buf *out;
} jctx;

/* Writes `"key":value` (with a leading comma unless first); omitted values
 * leave out unchanged.  Returns 1 if something was written, 0 if omitted,
 * -ENOMEM. */
static int json_fields(jctx *j, const cfg_alog_json_field *fs, size_t n);

static int json_field(jctx *j, const cfg_alog_json_field *f, bool first)
{
    pf_alog_buf *out = j->out;
    size_t mark = out->n;
    if ((!first && buf_lit(out, ",")) || json_string(out, f->key, f->key_len) ||
        buf_lit(out, ":"))
        return -ENOMEM;
    char tmp[ALOG_TMP];
    switch (f->kind) {
    case CFG_ALOG_JSON_RAW:
        if (buf_put(out, f->raw, strlen(f->raw)))
            return -ENOMEM;
        return 1;
    case CFG_ALOG_JSON_MAP: {
        if (buf_lit(out, "{"))
            return -ENOMEM;
        int rc = json_fields(j, f->children, f->n_children);
        if (rc < 0 || buf_lit(out, "}"))
            return -ENOMEM;
        return 1;
    }
    case CFG_ALOG_JSON_FORMAT:
    default:
        break;
    }
    const cfg_alog_format *fmt = &f->fmt;
    if (fmt->n == 1 && fmt->pieces[0].op != CFG_ALOG_LITERAL) {
        /* A single operator keeps its type: numbers stay numbers, missing is null. */
        value v = eval(&fmt->pieces[0], j->s, j->cfg, j->now_ms, tmp);
        if (v.kind == V_NUM) {
            char num[24];
            int k = snprintf(num, sizeof num, "%llu", (unsigned long long)v.num);
            return buf_put(out, num, (size_t)k) ? -ENOMEM : 1;
        }
        if (v.kind == V_MISSING || (v.kind == V_STR && v.n == 0)) {
            if (j->omit_empty) {
                out->n = mark;
                return 0;
            }
            if (v.kind == V_MISSING)
                return buf_lit(out, "null") ? -ENOMEM : 1;
        }
        return json_string(out, v.p, v.n) ? -ENOMEM : 1;
    }
    /* Several pieces: a string, missing values as "-" like the text format. */
    if (buf_lit(out, "\""))
        return -ENOMEM;
    size_t start = out->n;
    for (size_t i = 0; i < fmt->n; i++) {
        value v = eval(&fmt->pieces[i], j->s, j->cfg, j->now_ms, tmp);
        int rc;
        if (v.kind == V_STR)
            rc = json_escape(out, v.p, v.n);
        else
            rc = put_text(out, &v, j->omit_empty);   /* digits or "-": nothing to escape */
        if (rc)
            return -ENOMEM;
    }
    if (out->n == start && j->omit_empty) {
        out->n = mark;
        return 0;
    }
    return buf_lit(out, "\"") ? -ENOMEM : 1;
}

static int json_fields(jctx *j, const cfg_alog_json_field *fs, size_t n)
{
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        int rc = json_field(j, &fs[i], first);
        if (rc < 0)
            return rc;
        if (rc > 0)
            first = false;
    }
    return 0;
}

int pf_access_log_render(const struct cfg_access_log *al, const pf_stream *s,
                         const cfg_bootstrap *cfg, uint64_t now_ms, pf_alog_buf *out)
{
    if (!al->json)
        return render_text(&al->text, s, cfg, now_ms, al->omit_empty_values, out);
    jctx j = { s, cfg, now_ms, al->omit_empty_values, out };
    size_t mark = out->n;
    if (buf_lit(out, "{") || json_fields(&j, al->json_fields, al->n_json_fields) < 0 ||
        buf_lit(out, "}\n")) {
        out->n = mark;
        return -ENOMEM;
    }
    return 0;
}
