/* route.match -> cfg_route (envoy.config.route.v3.RouteMatch, HeaderMatcher,
 * QueryParameterMatcher, envoy.type.matcher.v3.StringMatcher/RegexMatcher)
 * and the PCRE2 compilation of every route regex. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "config/config_route_internal.h"

#include <ctype.h>
#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- regexes ---- */

int cfg_regex_init(cfg_regex *re, const char *pattern, bool full, char *err, size_t errlen,
                   size_t *erroff)
{
    int ec = 0;
    PCRE2_SIZE off = 0;
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
    if (full)
        opts |= PCRE2_ANCHORED | PCRE2_ENDANCHORED;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &ec,
                                     &off, NULL);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        snprintf(err, errlen, "%s", (const char *)msg);
        if (erroff)
            *erroff = off;
        return -EINVAL;
    }
    /* JIT is an optimisation: without it (unsupported CPU) pcre2_match
     * falls back to the interpreter. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    re->pattern = strdup(pattern);
    if (!re->pattern) {
        pcre2_code_free(code);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    re->code = code;
    return 0;
}

void cfg_regex_free(cfg_regex *re)
{
    if (re->code)
        pcre2_code_free(re->code);
    free(re->pattern);
    re->code = NULL;
    re->pattern = NULL;
}

static const char *const regex_handled[] = {"regex", "google_re2", NULL};
static const char *const re2_ignored[] = {"max_program_size", NULL};

int cfg_route_parse_regex(cfg_ctx *c, const yn_node *n, bool full, cfg_regex *out)
{
    static const cfg_fields f = {regex_handled, NULL, NULL};
    static const cfg_fields gf = {NULL, re2_ignored, NULL};
    int rc;
    if ((rc = cfg_check_map(c, n, &f)) != 0)
        return rc;
    const yn_node *g = cfg_get(n, "google_re2");
    if (g) {
        size_t m = cfg_push(c, "google_re2");
        rc = cfg_check_map(c, g, &gf);
        cfg_pop(c, m);
        if (rc)
            return rc;
    }
    char *pat = NULL;
    if ((rc = cfg_get_str(c, n, "regex", true, &pat)) != 0) {
        free(pat);
        return rc;
    }
    char msg[256];
    size_t off = 0;
    rc = cfg_regex_init(out, pat, full, msg, sizeof msg, &off);
    free(pat);
    if (rc) {
        size_t m = cfg_push(c, "regex");
        rc = cfg_err(c, cfg_get(n, "regex"), "invalid regex at offset %zu: %s", off, msg);
        cfg_pop(c, m);
    }
    return rc;
}

/* ---- string matchers ---- */

int cfg_route_lower_str(cfg_ctx *c, const yn_node *n, char **out, size_t *len)
{
    int rc = cfg_node_str(c, n, out);
    if (rc)
        return rc;
    for (char *p = *out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (len)
        *len = strlen(*out);
    return 0;
}

void cfg_route_free_string_match(cfg_string_match *m)
{
    free(m->value);
    cfg_regex_free(&m->re);
}

static const char *const sm_handled[] = {"exact", "prefix", "suffix", "contains",
                                         "safe_regex", "ignore_case", NULL};
static const char *const sm_unsupported[] = {"custom", NULL};

/* StringMatcher at n into out. */
static int parse_string_match(cfg_ctx *c, const yn_node *n, cfg_string_match *out)
{
    static const cfg_fields f = {sm_handled, NULL, sm_unsupported};
    static const char *const kinds[] = {"exact", "prefix", "suffix", "contains", "safe_regex"};
    int rc;
    if ((rc = cfg_check_map(c, n, &f)) != 0 ||
        (rc = cfg_get_bool(c, n, "ignore_case", &out->ignore_case)) != 0)
        return rc;
    int found;
    if ((rc = cfg_one_of(c, n, kinds, 5, true, &found)) != 0)
        return rc;
    out->kind = (cfg_sm_kind)found;
    size_t m = cfg_push(c, kinds[found]);
    const yn_node *v = cfg_get(n, kinds[found]);
    if (out->kind == CFG_SM_REGEX) {
        rc = cfg_route_parse_regex(c, v, true, &out->re);
    } else {
        rc = cfg_node_str(c, v, &out->value);
        if (!rc) {
            out->len = strlen(out->value);
            if (out->ignore_case)
                for (char *p = out->value; *p; p++)
                    *p = (char)tolower((unsigned char)*p);
            if (out->kind != CFG_SM_EXACT && out->len == 0)
                rc = cfg_err(c, v, "must not be empty");
        }
    }
    cfg_pop(c, m);
    return rc;
}

/* A deprecated HeaderMatcher shortcut (exact_match: "x") as a StringMatcher. */
static int parse_legacy_sm(cfg_ctx *c, const yn_node *v, cfg_sm_kind kind,
                           cfg_string_match *out)
{
    out->kind = kind;
    if (kind == CFG_SM_REGEX)
        return cfg_route_parse_regex(c, v, true, &out->re);
    int rc = cfg_node_str(c, v, &out->value);
    if (!rc) {
        out->len = strlen(out->value);
        if (kind != CFG_SM_EXACT && out->len == 0)
            rc = cfg_err(c, v, "must not be empty");
    }
    return rc;
}

/* int64 scalar (JSON int64 may be a string). */
static int node_i64(cfg_ctx *c, const yn_node *n, int64_t *out)
{
    if (n->kind != YN_SCALAR)
        return cfg_err(c, n, "expected an integer");
    char *end = NULL;
    errno = 0;
    long long v = strtoll(n->str, &end, 10);
    if (!n->len || errno || *end)
        return cfg_err(c, n, "expected an integer, got '%s'", n->str);
    *out = v;
    return 0;
}

static const char *const hm_handled[] = {
    "name", "exact_match", "safe_regex_match", "range_match", "present_match", "prefix_match",
    "suffix_match", "contains_match", "string_match", "invert_match",
    "treat_missing_header_as_empty", NULL};
static const char *const range_handled[] = {"start", "end", NULL};

static int parse_header_match(cfg_ctx *c, const yn_node *n, cfg_header_match *h)
{
    static const cfg_fields f = {hm_handled, NULL, NULL};
    static const cfg_fields rf = {range_handled, NULL, NULL};
    static const char *const spec[] = {"exact_match",  "safe_regex_match", "range_match",
                                       "present_match", "prefix_match",    "suffix_match",
                                       "contains_match", "string_match"};
    int rc;
    if ((rc = cfg_check_map(c, n, &f)) != 0)
        return rc;
    const yn_node *name = cfg_get(n, "name");
    if (!name)
        return cfg_err(c, n, "missing required field 'name'");
    size_t m = cfg_push(c, "name");
    rc = cfg_route_lower_str(c, name, &h->name, &h->name_len);
    if (!rc && h->name_len == 0)
        rc = cfg_err(c, name, "must not be empty");
    cfg_pop(c, m);
    if (rc || (rc = cfg_get_bool(c, n, "invert_match", &h->invert)) != 0 ||
        (rc = cfg_get_bool(c, n, "treat_missing_header_as_empty",
                           &h->treat_missing_as_empty)) != 0)
        return rc;
    int found;
    if ((rc = cfg_one_of(c, n, spec, 8, false, &found)) != 0)
        return rc;
    if (found < 0) {                    /* Envoy: no specifier means "present" */
        h->kind = CFG_HM_PRESENT;
        h->present = true;
        return 0;
    }
    const yn_node *v = cfg_get(n, spec[found]);
    m = cfg_push(c, spec[found]);
    switch (found) {
    case 0: h->kind = CFG_HM_STRING; rc = parse_legacy_sm(c, v, CFG_SM_EXACT, &h->sm); break;
    case 1: h->kind = CFG_HM_STRING; rc = parse_legacy_sm(c, v, CFG_SM_REGEX, &h->sm); break;
    case 2: {
        h->kind = CFG_HM_RANGE;
        if ((rc = cfg_check_map(c, v, &rf)) != 0)
            break;
        const yn_node *s = cfg_get(v, "start"), *e = cfg_get(v, "end");
        size_t m2 = cfg_push(c, "start");
        if (s)
            rc = node_i64(c, s, &h->range_start);
        cfg_pop(c, m2);
        m2 = cfg_push(c, "end");
        if (!rc && e)
            rc = node_i64(c, e, &h->range_end);
        if (!rc && h->range_end <= h->range_start)
            rc = cfg_err(c, e ? e : v, "range end must be greater than start");
        cfg_pop(c, m2);
        break;
    }
    case 3: {
        h->kind = CFG_HM_PRESENT;
        cfg_pop(c, m);
        return cfg_get_bool(c, n, "present_match", &h->present);
    }
    case 4: h->kind = CFG_HM_STRING; rc = parse_legacy_sm(c, v, CFG_SM_PREFIX, &h->sm); break;
    case 5: h->kind = CFG_HM_STRING; rc = parse_legacy_sm(c, v, CFG_SM_SUFFIX, &h->sm); break;
    case 6: h->kind = CFG_HM_STRING; rc = parse_legacy_sm(c, v, CFG_SM_CONTAINS, &h->sm); break;
    default: h->kind = CFG_HM_STRING; rc = parse_string_match(c, v, &h->sm); break;
    }
    cfg_pop(c, m);
    return rc;
}

static const char *const qm_handled[] = {"name", "string_match", "present_match", NULL};

static int parse_query_match(cfg_ctx *c, const yn_node *n, cfg_query_match *q)
{
    static const cfg_fields f = {qm_handled, NULL, NULL};
    int rc;
    if ((rc = cfg_check_map(c, n, &f)) != 0 ||
        (rc = cfg_get_str(c, n, "name", true, &q->name)) != 0)
        return rc;
    q->name_len = strlen(q->name);
    const yn_node *sm = cfg_get(n, "string_match"), *pm = cfg_get(n, "present_match");
    if (sm && pm)
        return cfg_err(c, cfg_key_node(n, "present_match"),
                       "only one of 'string_match' and 'present_match' may be set");
    if (pm) {
        q->has_present = true;
        return cfg_get_bool(c, n, "present_match", &q->present);
    }
    if (sm) {
        size_t m = cfg_push(c, "string_match");
        q->has_sm = true;
        rc = parse_string_match(c, sm, &q->sm);
        cfg_pop(c, m);
    }
    return rc;
}

static const char *const rf_handled[] = {"default_value", "runtime_key", NULL};
static const char *const fp_handled[] = {"numerator", "denominator", NULL};

int cfg_route_parse_fraction(cfg_ctx *c, const yn_node *n, char **key, uint32_t *num,
                             uint32_t *den)
{
    static const cfg_fields f = {rf_handled, NULL, NULL};
    static const cfg_fields ff = {fp_handled, NULL, NULL};
    static const char *const dens[] = {"HUNDRED", "TEN_THOUSAND", "MILLION", NULL};
    static const uint32_t den_v[] = {100, 10000, 1000000};
    int rc;
    if ((rc = cfg_check_map(c, n, &f)) != 0 ||
        (rc = cfg_get_str(c, n, "runtime_key", false, key)) != 0)
        return rc;
    const yn_node *dv = cfg_get(n, "default_value");
    if (!dv)
        return cfg_err(c, n, "missing required field 'default_value'");
    size_t m = cfg_push(c, "default_value");
    int d = 0;
    if ((rc = cfg_check_map(c, dv, &ff)) == 0 &&
        (rc = cfg_get_u32(c, dv, "numerator", false, 0, UINT32_MAX, num)) == 0 &&
        (rc = cfg_get_enum(c, dv, "denominator", dens, dens, &d)) == 0)
        *den = den_v[d];
    cfg_pop(c, m);
    return rc;
}

/* Parses the sequence `key` of map m with one parser per item. */
#define PARSE_SEQ(c, m, key, arr, narr, fn)                                     \
    do {                                                                        \
        const yn_node *seq_ = cfg_get((m), (key));                              \
        size_t n_ = 0, mk_ = cfg_push((c), (key));                              \
        if ((rc = cfg_expect_seq((c), seq_, &n_)) == 0 && n_) {                 \
            if (!((arr) = calloc(n_, sizeof(*(arr)))))                          \
                rc = cfg_err((c), seq_, "out of memory");                       \
            else                                                                \
                (narr) = n_;                                                    \
        }                                                                       \
        for (size_t i_ = 0; i_ < n_ && !rc; i_++) {                             \
            size_t mi_ = cfg_push_idx((c), i_);                                 \
            rc = fn((c), seq_->items[i_], &(arr)[i_]);                          \
            cfg_pop((c), mi_);                                                  \
        }                                                                       \
        cfg_pop((c), mk_);                                                      \
    } while (0)

static const char *const match_handled[] = {"prefix", "path", "safe_regex",
                                            "path_separated_prefix", "case_sensitive",
                                            "headers", "query_parameters", "grpc",
                                            "runtime_fraction", NULL};
static const char *const match_unsupported[] = {
    "connect_matcher", "path_match_policy", "tls_context", "dynamic_metadata",
    "filter_state", "cel_expr", NULL};
static const char *const grpc_handled[] = {NULL};

int cfg_route_parse_match(cfg_ctx *c, const yn_node *m, cfg_route *r)
{
    static const cfg_fields f = {match_handled, NULL, match_unsupported};
    static const char *const kinds[] = {"prefix", "path", "safe_regex", "path_separated_prefix"};
    int rc;
    if ((rc = cfg_check_map(c, m, &f)) != 0)
        return rc;
    bool cs = true;
    if ((rc = cfg_get_bool(c, m, "case_sensitive", &cs)) != 0)
        return rc;
    r->case_insensitive = !cs;
    int found;
    if ((rc = cfg_one_of(c, m, kinds, 4, true, &found)) != 0)
        return rc;
    r->match_kind = found == 0 ? CFG_MATCH_PREFIX : found == 1 ? CFG_MATCH_PATH
                  : found == 2 ? CFG_MATCH_REGEX : CFG_MATCH_SEP_PREFIX;
    const yn_node *v = cfg_get(m, kinds[found]);
    size_t mk = cfg_push(c, kinds[found]);
    if (r->match_kind == CFG_MATCH_REGEX) {
        rc = cfg_route_parse_regex(c, v, true, &r->match_re);
        if (!rc && !(r->match_value = strdup(r->match_re.pattern)))
            rc = cfg_err(c, v, "out of memory");
    } else {
        rc = cfg_node_str(c, v, &r->match_value);
    }
    if (!rc) {
        r->match_len = strlen(r->match_value);
        if (r->match_kind == CFG_MATCH_SEP_PREFIX &&
            (r->match_len == 0 || r->match_value[r->match_len - 1] == '/' ||
             strpbrk(r->match_value, "?#")))
            rc = cfg_err(c, v, "must be non-empty, must not end in '/' and must not contain "
                               "'?' or '#'");
    }
    cfg_pop(c, mk);
    if (rc)
        return rc;
    PARSE_SEQ(c, m, "headers", r->headers, r->n_headers, parse_header_match);
    if (rc)
        return rc;
    PARSE_SEQ(c, m, "query_parameters", r->queries, r->n_queries, parse_query_match);
    if (rc)
        return rc;
    const yn_node *g = cfg_get(m, "grpc");
    if (g) {
        static const cfg_fields gf = {grpc_handled, NULL, NULL};
        mk = cfg_push(c, "grpc");
        rc = cfg_check_map(c, g, &gf);
        cfg_pop(c, mk);
        if (rc)
            return rc;
        r->grpc = true;
    } else if (cfg_key_node(m, "grpc") != m) {
        r->grpc = true;                 /* `grpc:` with a null value is still set */
    }
    const yn_node *rf = cfg_get(m, "runtime_fraction");
    if (rf) {
        mk = cfg_push(c, "runtime_fraction");
        rc = cfg_route_parse_fraction(c, rf, &r->rf_key, &r->rf_num, &r->rf_den);
        r->has_runtime_fraction = true;
        cfg_pop(c, mk);
    }
    return rc;
}

void cfg_route_free_match(cfg_route *r)
{
    free(r->match_value);
    cfg_regex_free(&r->match_re);
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        cfg_route_free_string_match(&r->headers[i].sm);
    }
    free(r->headers);
    for (size_t i = 0; i < r->n_queries; i++) {
        free(r->queries[i].name);
        cfg_route_free_string_match(&r->queries[i].sm);
    }
    free(r->queries);
    free(r->rf_key);
}
