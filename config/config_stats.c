/* stats_flush_interval and stats_config.histogram_bucket_settings.
 * stats_tags, use_all_default_tags and stats_matcher are not supported yet. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "config/config_internal.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Envoy's default histogram bucket bounds (ms). */
static const double default_buckets[] = {0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000,
                                         2500, 5000, 10000, 30000, 60000, 300000,
                                         600000, 1800000, 3600000};

static const char *const sc_handled[] = {"histogram_bucket_settings", NULL};
static const char *const sc_unsupported[] = {"stats_tags", "use_all_default_tags",
                                             "stats_matcher", NULL};
static const char *const hbs_handled[] = {"match", "buckets", NULL};
static const char *const hbs_unsupported[] = {"bins", NULL};
static const char *const sm_handled[] = {"exact", "prefix", "suffix", "contains",
                                         "safe_regex", "ignore_case", NULL};
static const char *const re_handled[] = {"regex", "google_re2", NULL};

void cfg_free_stats(cfg_stats_config *s)
{
    free(s->histogram_buckets);
    for (size_t i = 0; i < s->n_bucket_rules; i++) {
        free(s->bucket_rules[i].regex);
        free(s->bucket_rules[i].buckets);
    }
    free(s->bucket_rules);
    memset(s, 0, sizeof *s);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A literal as a regex: every non-alphanumeric byte escaped. */
static char *regex_quote(const char *pre, const char *lit, const char *post, bool icase)
{
    size_t n = strlen(lit);
    char *out = malloc(strlen(pre) + 2 * n + strlen(post) + 8);
    if (!out)
        return NULL;
    char *p = out;
    if (icase)
        p += sprintf(p, "(?i)");
    p += sprintf(p, "%s", pre);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)lit[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
            *p++ = '\\';
        *p++ = (char)ch;
    }
    strcpy(p, post);
    return out;
}

/* StringMatcher -> a regex matched against the whole stat name. */
static int parse_match(cfg_ctx *c, const yn_node *m, char **out)
{
    static const cfg_fields f = {sm_handled, NULL, NULL};
    static const cfg_fields rf = {re_handled, NULL, NULL};
    int rc;
    bool icase = false;
    if ((rc = cfg_check_map(c, m, &f)) != 0 ||
        (rc = cfg_get_bool(c, m, "ignore_case", &icase)) != 0)
        return rc;
    static const char *const kinds[] = {"exact", "prefix", "suffix", "contains", "safe_regex"};
    const char *kind = NULL;
    for (size_t i = 0; i < 5; i++) {
        if (cfg_get(m, kinds[i])) {
            if (kind)
                return cfg_err(c, m, "only one of exact, prefix, suffix, contains, "
                                     "safe_regex may be set");
            kind = kinds[i];
        }
    }
    if (!kind)
        return cfg_err(c, m, "one of exact, prefix, suffix, contains, safe_regex is required");
    if (strcmp(kind, "safe_regex") == 0) {
        const yn_node *sr = cfg_get(m, "safe_regex");
        size_t mk = cfg_push(c, "safe_regex");
        char *re = NULL;
        if ((rc = cfg_check_map(c, sr, &rf)) == 0 &&
            (rc = cfg_get_str(c, sr, "regex", true, &re)) == 0) {
            int ec;
            PCRE2_SIZE eo;
            pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED,
                                             icase ? PCRE2_CASELESS : 0, &ec, &eo, NULL);
            if (!code) {
                PCRE2_UCHAR msg[128];
                pcre2_get_error_message(ec, msg, sizeof msg);
                size_t mr = cfg_push(c, "regex");
                rc = cfg_err(c, cfg_get(sr, "regex"), "invalid regex '%s': %s", re,
                             (const char *)msg);
                cfg_pop(c, mr);
            }
            pcre2_code_free(code);
            if (!rc && icase) {
                char *r2 = malloc(strlen(re) + 5);
                if (r2)
                    sprintf(r2, "(?i)%s", re);
                free(re);
                re = r2;
            }
            if (!rc && !re)
                rc = cfg_err(c, sr, "out of memory");
        }
        cfg_pop(c, mk);
        if (rc) {
            free(re);
            return rc;
        }
        *out = re;
        return 0;
    }
    char *lit = NULL;
    if ((rc = cfg_get_str(c, m, kind, true, &lit)) != 0)
        return rc;
    const char *pre = "", *post = "";
    if (strcmp(kind, "prefix") == 0)
        post = ".*";
    else if (strcmp(kind, "suffix") == 0)
        pre = ".*";
    else if (strcmp(kind, "contains") == 0)
        pre = post = ".*";
    *out = regex_quote(pre, lit, post, icase);
    free(lit);
    return *out ? 0 : cfg_err(c, m, "out of memory");
}

/* A non-empty list of unique positive numbers, sorted ascending. */
static int parse_buckets(cfg_ctx *c, const yn_node *seq, double **out, size_t *n_out)
{
    size_t n;
    int rc = cfg_expect_seq(c, seq, &n);
    if (rc)
        return rc;
    if (n == 0)
        return cfg_err(c, seq, "must contain at least one bucket");
    double *b = calloc(n, sizeof *b);
    if (!b)
        return cfg_err(c, seq, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        const yn_node *it = seq->items[i];
        size_t mi = cfg_push_idx(c, i);
        char *end = NULL;
        if (it->kind != YN_SCALAR || !it->str[0])
            rc = cfg_err(c, it, "expected a number");
        else if ((b[i] = strtod(it->str, &end)), *end)
            rc = cfg_err(c, it, "expected a number, got '%s'", it->str);
        else if (!(b[i] > 0) || b[i] > 1e300)
            rc = cfg_err(c, it, "bucket must be greater than 0");
        cfg_pop(c, mi);
    }
    if (!rc) {
        qsort(b, n, sizeof *b, cmp_double);
        for (size_t i = 1; i < n && !rc; i++)
            if (b[i] == b[i - 1])
                rc = cfg_err(c, seq, "duplicate bucket %g", b[i]);
    }
    if (rc) {
        free(b);
        return rc;
    }
    *out = b;
    *n_out = n;
    return 0;
}

static int parse_rule(cfg_ctx *c, const yn_node *n, struct cfg_hist_bucket_rule *r)
{
    static const cfg_fields f = {hbs_handled, NULL, hbs_unsupported};
    int rc = cfg_check_map(c, n, &f);
    if (rc)
        return rc;
    const yn_node *m = cfg_get(n, "match"), *b = cfg_get(n, "buckets");
    if (!m)
        return cfg_err(c, n, "missing required field 'match'");
    if (!b)
        return cfg_err(c, n, "missing required field 'buckets'");
    size_t mk = cfg_push(c, "match");
    rc = parse_match(c, m, &r->regex);
    cfg_pop(c, mk);
    if (rc)
        return rc;
    mk = cfg_push(c, "buckets");
    rc = parse_buckets(c, b, &r->buckets, &r->n_buckets);
    cfg_pop(c, mk);
    return rc;
}

int cfg_parse_stats(cfg_ctx *c, const yn_node *root)
{
    cfg_stats_config *s = &c->b->stats;
    s->flush_interval_ms = 5000;
    size_t nd = sizeof default_buckets / sizeof default_buckets[0];
    if (!(s->histogram_buckets = malloc(sizeof default_buckets)))
        return cfg_err(c, root, "out of memory");
    memcpy(s->histogram_buckets, default_buckets, sizeof default_buckets);
    s->n_histogram_buckets = nd;
    if (!root)
        return 0;
    int rc = 0;
    const yn_node *fi = cfg_get(root, "stats_flush_interval");
    if (fi) {
        size_t m = cfg_push(c, "stats_flush_interval");
        uint64_t ms = 0;
        if ((rc = cfg_node_duration(c, fi, &ms)) == 0 && (ms < 1 || ms >= 300000))
            rc = cfg_err(c, fi, "must be at least 1ms and less than 300s");
        cfg_pop(c, m);
        if (rc)
            return rc;
        s->flush_interval_ms = ms;
    }
    const yn_node *sc = cfg_get(root, "stats_config");
    if (!sc)
        return 0;
    static const cfg_fields f = {sc_handled, NULL, sc_unsupported};
    size_t m = cfg_push(c, "stats_config");
    if ((rc = cfg_check_map(c, sc, &f)) != 0)
        goto out;
    const yn_node *hbs = cfg_get(sc, "histogram_bucket_settings");
    size_t n = 0;
    if (!hbs)
        goto out;
    size_t mh = cfg_push(c, "histogram_bucket_settings");
    if ((rc = cfg_expect_seq(c, hbs, &n)) == 0 && n &&
        !(s->bucket_rules = calloc(n, sizeof *s->bucket_rules)))
        rc = cfg_err(c, hbs, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        size_t mi = cfg_push_idx(c, i);
        s->n_bucket_rules = i + 1;
        rc = parse_rule(c, hbs->items[i], &s->bucket_rules[i]);
        cfg_pop(c, mi);
    }
    cfg_pop(c, mh);
out:
    cfg_pop(c, m);
    return rc;
}
