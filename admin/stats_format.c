/* Stats output: Envoy /stats text, JSON and Prometheus (see stats_format.h). */
#include "admin/stats_format.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Envoy's quantiles plus P99.99, which tail-latency work on canaries needs. */
const double stats_quantiles[] = {0, 0.25, 0.5, 0.75, 0.90, 0.95, 0.99, 0.995, 0.999, 0.9999, 1};
const size_t stats_n_quantiles = sizeof stats_quantiles / sizeof stats_quantiles[0];
#define NQ (sizeof stats_quantiles / sizeof stats_quantiles[0])

const double stats_default_bounds_ms[] = {0.5,  1,    5,     10,    25,     50,     100,
                                          250,  500,  1000,  2500,  5000,   10000,  30000,
                                          60000, 300000, 600000, 1800000, 3600000};
const size_t stats_n_default_bounds =
    sizeof stats_default_bounds_ms / sizeof stats_default_bounds_ms[0];

void stats_fmt_double(char *buf, size_t len, double v)
{
    if (isnan(v)) {
        snprintf(buf, len, "nan");
        return;
    }
    /* Integers print without exponent (fmt prints 3600000, not 3.6e+06). */
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, len, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* ---- filter ---- */

typedef struct matcher {
    pcre2_code *re;
    pcre2_match_data *md;
} matcher;

static int matcher_init(matcher *m, const char *pattern, char *err, size_t errlen)
{
    m->re = NULL;
    m->md = NULL;
    if (!pattern)
        return 0;
    int ec;
    PCRE2_SIZE off;
    m->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
    if (!m->re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        if (err && errlen)
            snprintf(err, errlen, "Invalid regex: %s at offset %zu", (char *)msg, (size_t)off);
        return -EINVAL;
    }
    m->md = pcre2_match_data_create_from_pattern(m->re, NULL);
    if (!m->md) {
        pcre2_code_free(m->re);
        m->re = NULL;
        return -ENOMEM;
    }
    return 0;
}

static bool matcher_ok(const matcher *m, const char *name)
{
    if (!m->re)
        return true;
    return pcre2_match(m->re, (PCRE2_SPTR)name, strlen(name), 0, 0, m->md, NULL) >= 0;
}

static void matcher_free(matcher *m)
{
    pcre2_match_data_free(m->md);
    pcre2_code_free(m->re);
}

/* ---- selection ---- */

typedef struct entry {
    const char *name;
    stat_kind kind;
    stat_id id;
    char *family;       /* Prometheus only; owned */
    char *labels;       /* Prometheus only; owned */
} entry;

typedef struct entries {
    entry *v;
    size_t n;
} entries;

/* Collects the stats of the kinds in mask that pass filter and usedonly. */
static int select_stats(const stats_store *st, const stats_format_opts *o, unsigned mask,
                        const matcher *m, entries *out)
{
    size_t total = 0;
    for (int k = 0; k < 3; k++)
        if (mask & (1u << k))
            total += stats_count(st, (stat_kind)k);
    out->n = 0;
    out->v = calloc(total + 1, sizeof *out->v);
    if (!out->v)
        return -ENOMEM;
    for (int k = 0; k < 3; k++) {
        if (!(mask & (1u << k)))
            continue;
        size_t n = stats_count(st, (stat_kind)k);
        for (stat_id id = 0; id < n; id++) {
            const char *name = stats_name(st, (stat_kind)k, id);
            if (o && o->used_only && !stats_used(st, (stat_kind)k, id))
                continue;
            if (stats_hidden(st, (stat_kind)k, id))
                continue;
            if (!matcher_ok(m, name))
                continue;
            out->v[out->n++] = (entry){name, (stat_kind)k, id, NULL, NULL};
        }
    }
    return 0;
}

static void entries_free(entries *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->v[i].family);
        free(e->v[i].labels);
    }
    free(e->v);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

/* Text and JSON list counters and gauges together, sorted by name, then the
 * histograms sorted by name — Envoy's order. */
static int select_sorted(const stats_store *st, const stats_format_opts *o, entries *scalars,
                         entries *hists, char *err, size_t errlen)
{
    matcher m;
    int rc = matcher_init(&m, o ? o->filter : NULL, err, errlen);
    if (rc)
        return rc;
    rc = select_stats(st, o, (1u << STAT_COUNTER) | (1u << STAT_GAUGE), &m, scalars);
    if (!rc) {
        rc = select_stats(st, o, 1u << STAT_HISTOGRAM, &m, hists);
        if (rc)
            entries_free(scalars);
    }
    matcher_free(&m);
    if (rc)
        return rc;
    qsort(scalars->v, scalars->n, sizeof *scalars->v, by_name);
    qsort(hists->v, hists->n, sizeof *hists->v, by_name);
    return 0;
}

static void put_scalar_value(sbuf *b, const stats_store *st, const entry *e)
{
    if (e->kind == STAT_COUNTER)
        sbuf_printf(b, "%llu", (unsigned long long)stats_counter_value(st, e->id));
    else
        sbuf_printf(b, "%lld", (long long)stats_gauge_value(st, e->id));
}

static int finish(sbuf *out, int rc)
{
    if (!rc && out->oom)
        return -ENOMEM;
    return rc;
}

/* ---- text readouts (text and JSON, before the scalars, as Envoy) ---- */

static const stats_store *texts_sort_store;

static int by_text_name(const void *a, const void *b)
{
    return strcmp(stats_text_name(texts_sort_store, *(const stat_id *)a),
                  stats_text_name(texts_sort_store, *(const stat_id *)b));
}

/* The text readouts passing the filter (and ?usedonly: set to non-empty),
 * sorted by name; *ids is the caller's to free. */
static int select_texts(const stats_store *st, const stats_format_opts *o, stat_id **ids,
                        size_t *n)
{
    matcher m;
    int rc = matcher_init(&m, o ? o->filter : NULL, NULL, 0);
    if (rc)
        return rc;
    size_t total = stats_text_count(st);
    *n = 0;
    if (!(*ids = calloc(total + 1, sizeof **ids))) {
        matcher_free(&m);
        return -ENOMEM;
    }
    for (stat_id id = 0; id < total; id++) {
        if (o && o->used_only && !stats_text_value(st, id)[0])
            continue;
        if (matcher_ok(&m, stats_text_name(st, id)))
            (*ids)[(*n)++] = id;
    }
    matcher_free(&m);
    texts_sort_store = st;      /* admin runs on the main thread only */
    qsort(*ids, *n, sizeof **ids, by_text_name);
    return 0;
}

/* Envoy's Html::Utility::sanitize for text readout values. */
static void put_html_escaped(sbuf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': sbuf_puts(b, "&amp;"); break;
        case '<': sbuf_puts(b, "&lt;"); break;
        case '>': sbuf_puts(b, "&gt;"); break;
        case '"': sbuf_puts(b, "&quot;"); break;
        case '\'': sbuf_puts(b, "&#39;"); break;
        default: sbuf_putc(b, *s);
        }
    }
}

/* ---- Envoy text ---- */

int stats_format_text(const stats_store *st, const stats_format_opts *o, sbuf *out,
                      char *err, size_t errlen)
{
    entries sc, hs;
    int rc = select_sorted(st, o, &sc, &hs, err, errlen);
    if (rc)
        return rc;
    stat_id *tx;
    size_t ntx;
    if ((rc = select_texts(st, o, &tx, &ntx)) != 0)
        goto out;
    for (size_t i = 0; i < ntx; i++) {
        sbuf_puts(out, stats_text_name(st, tx[i]));
        sbuf_puts(out, ": \"");
        put_html_escaped(out, stats_text_value(st, tx[i]));
        sbuf_puts(out, "\"\n");
    }
    free(tx);
    for (size_t i = 0; i < sc.n; i++) {
        sbuf_puts(out, sc.v[i].name);
        sbuf_puts(out, ": ");
        put_scalar_value(out, st, &sc.v[i]);
        sbuf_putc(out, '\n');
    }
    hist_t *cum = malloc(sizeof *cum);
    if (!cum) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < hs.n; i++) {
        stats_hist_merge(st, hs.v[i].id, cum);
        sbuf_puts(out, hs.v[i].name);
        if (hist_count(cum) == 0) {
            sbuf_puts(out, ": No recorded values\n");
            continue;
        }
        double qi[NQ], qc[NQ];
        hist_quantiles(stats_hist_interval(st, hs.v[i].id), stats_quantiles, qi, NQ);
        hist_quantiles(cum, stats_quantiles, qc, NQ);
        sbuf_putc(out, ':');
        for (size_t j = 0; j < NQ; j++) {
            char p[32], a[32], c[32];
            stats_fmt_double(p, sizeof p, stats_quantiles[j] * 100);
            stats_fmt_double(a, sizeof a, qi[j] / 1000.0);
            stats_fmt_double(c, sizeof c, qc[j] / 1000.0);
            sbuf_printf(out, " P%s(%s,%s)", p, a, c);
        }
        sbuf_putc(out, '\n');
    }
    free(cum);
out:
    entries_free(&sc);
    entries_free(&hs);
    return finish(out, rc);
}

/* ---- JSON ---- */

static void json_string(sbuf *b, const char *s)
{
    sbuf_putc(b, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            sbuf_putc(b, '\\');
            sbuf_putc(b, (char)c);
        } else if (c < 0x20) {
            sbuf_printf(b, "\\u%04x", c);
        } else {
            sbuf_putc(b, (char)c);
        }
    }
    sbuf_putc(b, '"');
}

static void json_number(sbuf *b, double v)
{
    char tmp[32];
    if (isnan(v)) {
        sbuf_puts(b, "null");
        return;
    }
    stats_fmt_double(tmp, sizeof tmp, v);
    sbuf_puts(b, tmp);
}

int stats_format_json(const stats_store *st, const stats_format_opts *o, sbuf *out,
                      char *err, size_t errlen)
{
    entries sc, hs;
    int rc = select_sorted(st, o, &sc, &hs, err, errlen);
    if (rc)
        return rc;
    stat_id *tx;
    size_t ntx;
    if ((rc = select_texts(st, o, &tx, &ntx)) != 0)
        goto out;
    sbuf_puts(out, "{\"stats\":[");
    for (size_t i = 0; i < ntx; i++) {
        sbuf_puts(out, i ? ",{\"name\":" : "{\"name\":");
        json_string(out, stats_text_name(st, tx[i]));
        sbuf_puts(out, ",\"value\":");
        json_string(out, stats_text_value(st, tx[i]));
        sbuf_putc(out, '}');
    }
    free(tx);
    for (size_t i = 0; i < sc.n; i++) {
        sbuf_puts(out, i || ntx ? ",{\"name\":" : "{\"name\":");
        json_string(out, sc.v[i].name);
        sbuf_puts(out, ",\"value\":");
        put_scalar_value(out, st, &sc.v[i]);
        sbuf_putc(out, '}');
    }
    if (hs.n) {
        hist_t *cum = malloc(sizeof *cum);
        if (!cum) {
            rc = -ENOMEM;
            goto out;
        }
        sbuf_puts(out, sc.n || ntx ? ",{\"histograms\":{\"supported_quantiles\":["
                            : "{\"histograms\":{\"supported_quantiles\":[");
        for (size_t j = 0; j < NQ; j++) {
            if (j)
                sbuf_putc(out, ',');
            json_number(out, stats_quantiles[j] * 100);
        }
        sbuf_puts(out, "],\"computed_quantiles\":[");
        for (size_t i = 0; i < hs.n; i++) {
            double qi[NQ], qc[NQ];
            stats_hist_merge(st, hs.v[i].id, cum);
            hist_quantiles(stats_hist_interval(st, hs.v[i].id), stats_quantiles, qi, NQ);
            hist_quantiles(cum, stats_quantiles, qc, NQ);
            sbuf_puts(out, i ? ",{\"name\":" : "{\"name\":");
            json_string(out, hs.v[i].name);
            sbuf_puts(out, ",\"values\":[");
            for (size_t j = 0; j < NQ; j++) {
                sbuf_puts(out, j ? ",{\"cumulative\":" : "{\"cumulative\":");
                json_number(out, qc[j] / 1000.0);
                sbuf_puts(out, ",\"interval\":");
                json_number(out, qi[j] / 1000.0);
                sbuf_putc(out, '}');
            }
            sbuf_puts(out, "]}");
        }
        sbuf_puts(out, "]}}");
        free(cum);
    }
    sbuf_puts(out, "]}");
out:
    entries_free(&sc);
    entries_free(&hs);
    return finish(out, rc);
}

/* ---- Prometheus: Envoy's default tag extractors ---- */

/* Envoy's TagNameValues (source/common/config/well_known_names.cc), in its
 * order.  Each regex runs on the full name; capture 1 is removed from the
 * name, capture 2 (or 1) is the tag value.  substr is a cheap pre-check. */
static const struct tag_rule {
    const char *tag, *regex, *substr;
} tag_rules[] = {
    {"envoy.response_code", "_rq(_(\\d{3}))$", "_rq_"},
    {"envoy.response_code_class", "_rq_(\\d)xx$", "_rq_"},
    {"envoy.dynamo_partition_id",
     "^http(?=\\.).*?\\.dynamodb\\.table(?=\\.).*?\\.capacity(?=\\.).*?(\\.__partition_id=(\\w{7}))$",
     ".dynamodb.table."},
    {"envoy.dynamo_operation",
     "^http(?=\\.).*?\\.dynamodb.(?:operation|table(?=\\.).*?\\.capacity)(\\.(.*?))(?:\\.|$)",
     ".dynamodb."},
    {"envoy.mongo_callsite",
     "^mongo(?=\\.).*?\\.collection(?=\\.).*?\\.callsite\\.((.*?)\\.).*?query.\\w+?$",
     ".collection."},
    {"envoy.dynamo_table", "^http(?=\\.).*?\\.dynamodb.(?:table|error)\\.((.*?)\\.)", ".dynamodb."},
    {"envoy.mongo_collection", "^mongo(?=\\.).*?\\.collection\\.((.*?)\\.).*?query.\\w+?$",
     ".collection."},
    {"envoy.mongo_cmd", "^mongo(?=\\.).*?\\.cmd\\.((.*?)\\.)\\w+?$", ".cmd."},
    {"envoy.grpc_bridge_method", "^cluster(?=\\.).*?\\.grpc(?=\\.).*\\.((.*?)\\.)\\w+?$", ".grpc."},
    {"envoy.http_user_agent", "^http(?=\\.).*?\\.user_agent\\.((.*?)\\.)\\w+?$", ".user_agent."},
    {"envoy.virtual_cluster", "^vhost(?=\\.).*?\\.vcluster\\.((.*?)\\.)\\w+?$", ".vcluster."},
    {"envoy.fault_downstream_cluster", "^http(?=\\.).*?\\.fault\\.((.*?)\\.)\\w+?$", ".fault."},
    {"envoy.ssl_cipher", "^listener(?=\\.).*?\\.ssl\\.cipher(\\.(.*?))$", ".ssl.cipher"},
    {"envoy.ssl_cipher_suite", "^cluster(?=\\.).*?\\.ssl\\.ciphers(\\.(.*?))$", ".ssl.ciphers."},
    {"envoy.grpc_bridge_service", "^cluster(?=\\.).*?\\.grpc\\.((.*?)\\.)", ".grpc."},
    {"envoy.tcp_prefix", "^tcp\\.((.*?)\\.)\\w+?$", "tcp."},
    {"envoy.udp_prefix", "^udp\\.((.*?)\\.)\\w+?$", "udp."},
    {"envoy.clientssl_prefix", "^auth\\.clientssl\\.((.*?)\\.)\\w+?$", "auth.clientssl."},
    {"envoy.ratelimit_prefix", "^ratelimit\\.((.*?)\\.)\\w+?$", "ratelimit."},
    {"envoy.cluster_name", "^cluster\\.(([^\\.]+)\\.).*", "cluster."},
    {"envoy.http_conn_manager_prefix", "^listener(?=\\.).*?\\.http\\.((.*?)\\.)", ".http."},
    {"envoy.http_conn_manager_prefix", "^http\\.((.*?)\\.)", "http."},
    {"envoy.listener_address",
     "^listener\\.(((?:[_.[:digit:]]*|[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)", "listener."},
    {"envoy.virtual_host", "^vhost\\.((.*?)\\.)", "vhost."},
    {"envoy.mongo_prefix", "^mongo\\.((.*?)\\.)", "mongo."},
    {"envoy.rds_route_config", "^http(?=\\.).*?\\.rds\\.((.*?)\\.)\\w+?$", ".rds."},
    {"envoy.worker_id", "^listener_manager\\.((worker_\\d+)\\.)", "listener_manager.worker_"},
};
#define N_RULES (sizeof tag_rules / sizeof tag_rules[0])

typedef struct tagger {
    pcre2_code *re[N_RULES];
    pcre2_match_data *md;
} tagger;

static void tagger_free(tagger *t)
{
    for (size_t i = 0; i < N_RULES; i++)
        pcre2_code_free(t->re[i]);
    pcre2_match_data_free(t->md);
}

static int tagger_init(tagger *t)
{
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < N_RULES; i++) {
        int ec;
        PCRE2_SIZE off;
        t->re[i] = pcre2_compile((PCRE2_SPTR)tag_rules[i].regex, PCRE2_ZERO_TERMINATED, 0, &ec,
                                 &off, NULL);
        if (!t->re[i]) {
            tagger_free(t);
            return -ENOMEM;     /* the table is constant: only allocation can fail */
        }
    }
    t->md = pcre2_match_data_create(4, NULL);
    if (!t->md) {
        tagger_free(t);
        return -ENOMEM;
    }
    return 0;
}

/* Prometheus names allow [a-zA-Z0-9_:]; Envoy maps anything else to '_'. */
static void put_sanitized(sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_';
        sbuf_putc(b, ok ? c : '_');
    }
}

static void put_label_value(sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\')
            sbuf_puts(b, "\\\\");
        else if (s[i] == '"')
            sbuf_puts(b, "\\\"");
        else if (s[i] == '\n')
            sbuf_puts(b, "\\n");
        else
            sbuf_putc(b, s[i]);
    }
}

static int tag_extract(tagger *t, const char *name, sbuf *family, sbuf *labels)
{
    size_t len = strlen(name);
    char *keep = malloc(len + 1);
    if (!keep)
        return -ENOMEM;
    memset(keep, 1, len + 1);
    for (size_t i = 0; i < N_RULES; i++) {
        if (tag_rules[i].substr && !strstr(name, tag_rules[i].substr))
            continue;
        int rc = pcre2_match(t->re[i], (PCRE2_SPTR)name, len, 0, 0, t->md, NULL);
        if (rc < 2)
            continue;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->md);
        size_t vs = rc > 2 ? ov[4] : ov[2], ve = rc > 2 ? ov[5] : ov[3];
        if (ov[2] == PCRE2_UNSET || vs == PCRE2_UNSET)
            continue;
        for (size_t k = ov[2]; k < ov[3]; k++)
            keep[k] = 0;
        if (labels->n)
            sbuf_putc(labels, ',');
        put_sanitized(labels, tag_rules[i].tag, strlen(tag_rules[i].tag));
        sbuf_puts(labels, "=\"");
        put_label_value(labels, name + vs, ve - vs);
        sbuf_putc(labels, '"');
    }
    sbuf_puts(family, "envoy_");
    for (size_t k = 0; k < len; k++)
        if (keep[k])
            put_sanitized(family, name + k, 1);
    free(keep);
    if (!family->n)
        sbuf_puts(family, "");      /* keeps p non-NULL */
    if (!labels->n)
        sbuf_puts(labels, "");
    return (family->oom || labels->oom) ? -ENOMEM : 0;
}

int stats_prom_name(const char *name, sbuf *family, sbuf *labels)
{
    tagger t;
    int rc = tagger_init(&t);
    if (rc)
        return rc;
    rc = tag_extract(&t, name, family, labels);
    tagger_free(&t);
    return rc;
}

/* Counters, then gauges, then histograms; inside a kind by family, then by
 * name, so each family's samples are contiguous under one # TYPE line. */
static int by_family(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->kind != y->kind)
        return (int)x->kind - (int)y->kind;
    int c = strcmp(x->family, y->family);
    return c ? c : strcmp(x->name, y->name);
}

/* True when family (sorted run e[0, n)) already holds a family name: a
 * counter and a gauge that extract to the same name cannot share it, since
 * Prometheus allows one TYPE per family, so the later kind is dropped. */
static bool family_taken(const entries *e, size_t n, const char *family)
{
    for (size_t lo = 0, hi = n; lo < hi;) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(e->v[mid].family, family);
        if (!c)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static void put_series(sbuf *b, const char *family, const char *suffix, const char *labels,
                       const char *extra)
{
    sbuf_puts(b, family);
    sbuf_puts(b, suffix);
    if (*labels || extra) {
        sbuf_putc(b, '{');
        sbuf_puts(b, labels);
        if (extra) {
            if (*labels)
                sbuf_putc(b, ',');
            sbuf_puts(b, extra);
        }
        sbuf_putc(b, '}');
    }
    sbuf_putc(b, ' ');
}

int stats_format_prometheus(const stats_store *st, const stats_format_opts *o, sbuf *out,
                            char *err, size_t errlen)
{
    matcher m;
    int rc = matcher_init(&m, o ? o->filter : NULL, err, errlen);
    if (rc)
        return rc;
    entries e = {NULL, 0};
    rc = select_stats(st, o, 7u, &m, &e);
    matcher_free(&m);
    if (rc)
        return rc;
    tagger t;
    rc = tagger_init(&t);
    if (rc)
        goto out;
    for (size_t i = 0; i < e.n && !rc; i++) {
        sbuf fam = SBUF_INIT, lab = SBUF_INIT;
        rc = tag_extract(&t, e.v[i].name, &fam, &lab);
        e.v[i].family = fam.p;
        e.v[i].labels = lab.p;
    }
    tagger_free(&t);
    if (rc)
        goto out;
    qsort(e.v, e.n, sizeof *e.v, by_family);

    /* Start of each kind's run, for family_taken(). */
    size_t kind_start[4] = {0, 0, 0, e.n};
    for (int k = 1; k < 3; k++) {
        size_t i = kind_start[k - 1];
        while (i < e.n && (int)e.v[i].kind < k)
            i++;
        kind_start[k] = i;
    }

    hist_t *cum = malloc(sizeof *cum);
    if (!cum) {
        rc = -ENOMEM;
        goto out;
    }
    static const char *type_name[] = {"counter", "gauge", "histogram"};
    uint64_t *counts = NULL;            /* per-bound cumulative counts */
    size_t cap_counts = 0;
    const char *prev = NULL;
    for (size_t i = 0; i < e.n; i++) {
        const entry *x = &e.v[i];
        bool taken = false;
        for (int k = 0; k < (int)x->kind && !taken; k++) {
            entries run = {e.v + kind_start[k], kind_start[k + 1] - kind_start[k]};
            taken = family_taken(&run, run.n, x->family);
        }
        if (taken)
            continue;
        if (!prev || strcmp(prev, x->family) != 0)
            sbuf_printf(out, "# TYPE %s %s\n", x->family, type_name[x->kind]);
        prev = x->family;
        if (x->kind != STAT_HISTOGRAM) {
            put_series(out, x->family, "", x->labels, NULL);
            put_scalar_value(out, st, x);
            sbuf_putc(out, '\n');
            continue;
        }
        stats_hist_merge(st, x->id, cum);
        size_t nb = 0;
        const double *bounds = o && o->bounds ? o->bounds(o->bounds_ctx, x->id, &nb) : NULL;
        if (!bounds) {
            bounds = stats_default_bounds_ms;
            nb = stats_n_default_bounds;
        }
        if (nb > cap_counts) {
            uint64_t *c = realloc(counts, nb * sizeof *c);
            if (!c) {
                rc = -ENOMEM;
                break;
            }
            counts = c;
            cap_counts = nb;
        }
        hist_counts_le(cum, bounds, 1000.0, counts, nb);
        for (size_t j = 0; j < nb; j++) {
            char le[64], v[32];
            stats_fmt_double(v, sizeof v, bounds[j]);
            snprintf(le, sizeof le, "le=\"%s\"", v);
            put_series(out, x->family, "_bucket", x->labels, le);
            sbuf_printf(out, "%llu\n", (unsigned long long)counts[j]);
        }
        char sum[32];
        put_series(out, x->family, "_bucket", x->labels, "le=\"+Inf\"");
        sbuf_printf(out, "%llu\n", (unsigned long long)hist_count(cum));
        stats_fmt_double(sum, sizeof sum, (double)hist_sum(cum) / 1000.0);
        put_series(out, x->family, "_sum", x->labels, NULL);
        sbuf_printf(out, "%s\n", sum);
        put_series(out, x->family, "_count", x->labels, NULL);
        sbuf_printf(out, "%llu\n", (unsigned long long)hist_count(cum));
    }
    free(counts);
    free(cum);
out:
    entries_free(&e);
    return finish(out, rc);
}
