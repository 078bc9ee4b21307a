/* request_/response_headers_to_add and _to_remove (route config, virtual
 * host, route, weighted cluster) -> cfg_header_mutations, and the header
 * value templates with Envoy's %VARIABLE% substitutions.  Rendering is in
 * proxy/route_headers.c. */
#include "config/config_route_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void cfg_route_free_fmt(cfg_fmt *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->parts[i].s);
    free(f->parts);
    f->parts = NULL;
    f->n = 0;
}

void cfg_route_free_mutations(cfg_header_mutations *m)
{
    for (size_t i = 0; i < m->n_add; i++) {
        free(m->add[i].name);
        cfg_route_free_fmt(&m->add[i].value);
    }
    free(m->add);
    for (size_t i = 0; i < m->n_remove; i++)
        free(m->remove[i].p);
    free(m->remove);
    memset(m, 0, sizeof *m);
}

static int add_part(cfg_fmt *f, cfg_fmt_op op, const char *s, size_t n)
{
    cfg_fmt_part *np = realloc(f->parts, (f->n + 1) * sizeof *np);
    if (!np)
        return -ENOMEM;
    f->parts = np;
    cfg_fmt_part *p = &f->parts[f->n];
    p->op = op;
    p->s = NULL;
    p->n = n;
    if (s) {
        if (!(p->s = malloc(n + 1)))
            return -ENOMEM;
        memcpy(p->s, s, n);
        p->s[n] = '\0';
    }
    f->n++;
    return 0;
}

/* Envoy commands that exist but that we do not render yet. */
static const char *const fmt_unsupported[] = {
    "UPSTREAM_METADATA", "DYNAMIC_METADATA", "CLUSTER_METADATA", "FILTER_STATE",
    "PER_REQUEST_STATE", "UPSTREAM_HOST", "UPSTREAM_LOCAL_ADDRESS", "UPSTREAM_CLUSTER",
    "UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", "UPSTREAM_TRANSPORT_FAILURE_REASON",
    "REQUESTED_SERVER_NAME", "DOWNSTREAM_LOCAL_PORT", "DOWNSTREAM_REMOTE_PORT",
    "DOWNSTREAM_DIRECT_REMOTE_ADDRESS", "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT",
    "DOWNSTREAM_PEER_URI_SAN", "DOWNSTREAM_LOCAL_URI_SAN", "DOWNSTREAM_PEER_SUBJECT",
    "DOWNSTREAM_PEER_ISSUER", "DOWNSTREAM_TLS_SESSION_ID", "DOWNSTREAM_TLS_CIPHER",
    "DOWNSTREAM_TLS_VERSION", "DOWNSTREAM_PEER_FINGERPRINT_256", "DOWNSTREAM_PEER_SERIAL",
    "DOWNSTREAM_PEER_CERT", "DURATION", "REQUEST_DURATION", "RESPONSE_DURATION",
    "BYTES_RECEIVED", "BYTES_SENT", "RESPONSE_FLAGS", "RESPONSE_CODE_DETAILS",
    "ROUTE_NAME", "VIRTUAL_CLUSTER_NAME", "ENVIRONMENT", "CEL", "METADATA", "TRACE_ID",
    "CONNECTION_ID", "STREAM_ID", "TRAILER", "REQ_WITHOUT_QUERY", "START_TIME_LOCAL",
    "SYSTEM_TIME", "CONNECTION_TERMINATION_DETAILS", "UPSTREAM_PROTOCOL",
    "DOWNSTREAM_TRANSPORT_FAILURE_REASON", "HOSTNAME_WITHOUT_DOMAIN", NULL};

static const struct {
    const char *name;
    cfg_fmt_op op;
    bool args;          /* takes (arg) */
    bool resp_only;
} fmt_ops[] = {
    {"DOWNSTREAM_REMOTE_ADDRESS", CFG_FMT_DS_REMOTE, false, false},
    {"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", CFG_FMT_DS_REMOTE_NOPORT, false, false},
    {"DOWNSTREAM_LOCAL_ADDRESS", CFG_FMT_DS_LOCAL, false, false},
    {"DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", CFG_FMT_DS_LOCAL_NOPORT, false, false},
    {"UPSTREAM_REMOTE_ADDRESS", CFG_FMT_UP_REMOTE, false, false},
    {"PROTOCOL", CFG_FMT_PROTOCOL, false, false},
    {"REQ", CFG_FMT_REQ, true, false},
    {"RESP", CFG_FMT_RESP, true, true},
    {"START_TIME", CFG_FMT_START_TIME, false, false},
    {"RESPONSE_CODE", CFG_FMT_RESPONSE_CODE, false, true},
    {"HOSTNAME", CFG_FMT_HOSTNAME, false, false},
};

int cfg_route_parse_fmt(cfg_ctx *c, const yn_node *n, const char *text, bool resp,
                        cfg_fmt *out)
{
    const char *p = text, *lit = text;
    int rc = 0;
#define FLUSH_LIT(end)                                                                  \
    do {                                                                                \
        if ((end) > lit && add_part(out, CFG_FMT_LIT, lit, (size_t)((end) - lit)) < 0)  \
            return cfg_err(c, n, "out of memory");                                      \
    } while (0)
    while (*p) {
        if (*p != '%') {
            p++;
            continue;
        }
        FLUSH_LIT(p);
        if (p[1] == '%') {                          /* "%%": a literal '%' */
            if (add_part(out, CFG_FMT_LIT, "%", 1) < 0)
                return cfg_err(c, n, "out of memory");
            p += 2;
            lit = p;
            continue;
        }
        /* NAME or NAME(args), up to the closing '%' (args may hold '%' only
         * inside the parentheses, as in START_TIME(%s)). */
        const char *name = p + 1, *q = name;
        while (*q && (isupper((unsigned char)*q) || isdigit((unsigned char)*q) || *q == '_'))
            q++;
        size_t nlen = (size_t)(q - name);
        const char *args = NULL;
        size_t alen = 0;
        if (*q == '(') {
            args = q + 1;
            const char *e = strchr(args, ')');
            if (!e)
                return cfg_err(c, n, "invalid header value '%s': missing ')' after %%%.*s(",
                               text, (int)nlen, name);
            alen = (size_t)(e - args);
            q = e + 1;
        }
        if (*q == ':')                              /* ":Z" max length */
            return cfg_err(c, n, "invalid header value '%s': not supported yet: "
                                 "max length in %%%.*s%%", text, (int)nlen, name);
        if (*q != '%' || nlen == 0)
            return cfg_err(c, n, "invalid header value '%s': a '%%' must start a %%VARIABLE%% "
                                 "(write %%%% for a literal '%%')", text);
        size_t k;
        for (k = 0; k < sizeof fmt_ops / sizeof fmt_ops[0]; k++)
            if (strlen(fmt_ops[k].name) == nlen && !memcmp(fmt_ops[k].name, name, nlen))
                break;
        if (k == sizeof fmt_ops / sizeof fmt_ops[0]) {
            for (const char *const *u = fmt_unsupported; *u; u++)
                if (strlen(*u) == nlen && !memcmp(*u, name, nlen))
                    return cfg_err(c, n, "not supported yet: %%%.*s%% in header values",
                                   (int)nlen, name);
            return cfg_err(c, n, "invalid header value '%s': unknown variable %%%.*s%%", text,
                           (int)nlen, name);
        }
        if (fmt_ops[k].resp_only && !resp)
            return cfg_err(c, n, "%%%s%% is only available in response headers",
                           fmt_ops[k].name);
        cfg_fmt_op op = fmt_ops[k].op;
        if (fmt_ops[k].args && !args)
            return cfg_err(c, n, "%%%s%% needs an argument: %%%s(name)%%", fmt_ops[k].name,
                           fmt_ops[k].name);
        if (args && !fmt_ops[k].args && op != CFG_FMT_START_TIME)
            return cfg_err(c, n, "%%%s%% takes no argument", fmt_ops[k].name);
        if (op == CFG_FMT_REQ || op == CFG_FMT_RESP) {
            if (alen == 0 || memchr(args, '?', alen))
                return cfg_err(c, n, "%%%s(%.*s)%%: %s", fmt_ops[k].name, (int)alen,
                               args ? args : "", alen ? "not supported yet: alternate header"
                                                      : "header name must not be empty");
            char lower[256];
            if (alen >= sizeof lower)
                return cfg_err(c, n, "header name too long");
            for (size_t i = 0; i < alen; i++)
                lower[i] = (char)tolower((unsigned char)args[i]);
            rc = add_part(out, op, lower, alen);
        } else {
            rc = add_part(out, op, args && alen ? args : NULL, args ? alen : 0);
        }
        if (rc < 0)
            return cfg_err(c, n, "out of memory");
        p = q + 1;
        lit = p;
    }
    FLUSH_LIT(p);
#undef FLUSH_LIT
    return 0;
}

static const char *const hvo_handled[] = {"header", "append", "append_action",
                                          "keep_empty_value", NULL};
static const char *const hv_handled[] = {"key", "value", NULL};
static const char *const hv_unsupported[] = {"raw_value", NULL};

/* RFC 9110 token character. */
static bool is_tchar(unsigned char ch)
{
    return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Envoy refuses to touch pseudo-headers and Host through header mutations. */
static bool forbidden_name(const char *lname)
{
    return lname[0] == ':' || !strcmp(lname, "host");
}

static int parse_hvo(cfg_ctx *c, const yn_node *n, bool resp, cfg_header_add *h)
{
    static const cfg_fields f = {hvo_handled, NULL, NULL};
    static const cfg_fields hf = {hv_handled, NULL, hv_unsupported};
    static const char *const actions[] = {"APPEND_IF_EXISTS_OR_ADD", "ADD_IF_ABSENT",
                                          "OVERWRITE_IF_EXISTS_OR_ADD", "OVERWRITE_IF_EXISTS",
                                          NULL};
    int rc;
    if ((rc = cfg_check_map(c, n, &f)) != 0 ||
        (rc = cfg_get_bool(c, n, "keep_empty_value", &h->keep_empty_value)) != 0)
        return rc;
    const yn_node *hdr = cfg_get(n, "header");
    if (!hdr)
        return cfg_err(c, n, "missing required field 'header'");
    size_t m = cfg_push(c, "header");
    char *value = NULL;
    if ((rc = cfg_check_map(c, hdr, &hf)) == 0) {
        const yn_node *k = cfg_get(hdr, "key");
        if (!k) {
            rc = cfg_err(c, hdr, "missing required field 'key'");
        } else {
            size_t mk = cfg_push(c, "key");
            rc = cfg_route_lower_str(c, k, &h->name, &h->name_len);
            if (!rc && h->name_len == 0)
                rc = cfg_err(c, k, "must not be empty");
            for (size_t i = 0; !rc && i < h->name_len; i++)
                if (!is_tchar((unsigned char)h->name[i]) &&
                    !(i == 0 && h->name[i] == ':'))
                    rc = cfg_err(c, k, "invalid header name '%s'", h->name);
            if (!rc && forbidden_name(h->name))
                rc = cfg_err(c, k, "':'-prefixed or host headers may not be modified");
            cfg_pop(c, mk);
        }
        if (!rc && (rc = cfg_get_str(c, hdr, "value", false, &value)) == 0) {
            size_t mv = cfg_push(c, "value");
            rc = cfg_route_parse_fmt(c, cfg_get(hdr, "value") ? cfg_get(hdr, "value") : hdr,
                                     value ? value : "", resp, &h->value);
            cfg_pop(c, mv);
        }
    }
    free(value);
    cfg_pop(c, m);
    if (rc)
        return rc;
    const yn_node *ap = cfg_get(n, "append"), *aa = cfg_get(n, "append_action");
    if (ap && aa)
        return cfg_err(c, cfg_key_node(n, "append_action"),
                       "only one of 'append' and 'append_action' may be set");
    h->action = CFG_APPEND_IF_EXISTS_OR_ADD;
    if (ap) {
        bool b = true;
        if ((rc = cfg_get_bool(c, n, "append", &b)) != 0)
            return rc;
        h->action = b ? CFG_APPEND_IF_EXISTS_OR_ADD : CFG_OVERWRITE_IF_EXISTS_OR_ADD;
    } else if (aa) {
        int a = 0;
        if ((rc = cfg_get_enum(c, n, "append_action", actions, actions, &a)) != 0)
            return rc;
        h->action = (cfg_append_action)a;
    }
    return 0;
}

static int parse_adds(cfg_ctx *c, const yn_node *seq, bool resp, cfg_header_mutations *out)
{
    size_t n;
    int rc;
    if ((rc = cfg_expect_seq(c, seq, &n)) != 0 || n == 0)
        return rc;
    if (!(out->add = calloc(n, sizeof *out->add)))
        return cfg_err(c, seq, "out of memory");
    out->n_add = n;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t m = cfg_push_idx(c, i);
        rc = parse_hvo(c, seq->items[i], resp, &out->add[i]);
        cfg_pop(c, m);
    }
    return rc;
}

static int parse_removes(cfg_ctx *c, const yn_node *seq, cfg_header_mutations *out)
{
    size_t n;
    int rc;
    if ((rc = cfg_expect_seq(c, seq, &n)) != 0 || n == 0)
        return rc;
    if (!(out->remove = calloc(n, sizeof *out->remove)))
        return cfg_err(c, seq, "out of memory");
    out->n_remove = n;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t m = cfg_push_idx(c, i);
        rc = cfg_route_lower_str(c, seq->items[i], &out->remove[i].p, &out->remove[i].n);
        if (!rc && out->remove[i].n == 0)
            rc = cfg_err(c, seq->items[i], "must not be empty");
        if (!rc && forbidden_name(out->remove[i].p))
            rc = cfg_err(c, seq->items[i], "':'-prefixed or host headers may not be removed");
        cfg_pop(c, m);
    }
    return rc;
}

int cfg_route_parse_mutations(cfg_ctx *c, const yn_node *n, const char *add_key,
                              const char *remove_key, bool resp, cfg_header_mutations *out)
{
    int rc = 0;
    const yn_node *a = cfg_get(n, add_key), *r = cfg_get(n, remove_key);
    if (a) {
        size_t m = cfg_push(c, add_key);
        rc = parse_adds(c, a, resp, out);
        cfg_pop(c, m);
    }
    if (!rc && r) {
        size_t m = cfg_push(c, remove_key);
        rc = parse_removes(c, r, out);
        cfg_pop(c, m);
    }
    return rc;
}
