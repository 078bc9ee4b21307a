/* /stats (text, ?format=json|prometheus|text, ?filter=, ?usedonly) and
 * /stats/prometheus, delegating to admin/stats_format.h.  Histogram bucket
 * bounds for Prometheus follow stats_config.histogram_bucket_settings. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_http.h"
#include "admin/stats_format.h"
#include "proxy/breakers.h"
#include "proxy/server.h"

typedef struct bounds_ctx {
    const stats_store *st;
    const cfg_stats_config *cfg;
    pcre2_code **re;                /* one per rule; NULL when it failed to compile */
    pcre2_match_data *md;
} bounds_ctx;

/* First rule whose regex matches the whole name wins, else the bootstrap's
 * default buckets. */
static const double *rule_bounds(void *vctx, stat_id hist, size_t *n)
{
    bounds_ctx *c = vctx;
    const char *name = stats_name(c->st, STAT_HISTOGRAM, hist);
    for (size_t i = 0; name && c->md && i < c->cfg->n_bucket_rules; i++) {
        if (c->re[i] && pcre2_match(c->re[i], (PCRE2_SPTR)name, PCRE2_ZERO_TERMINATED, 0,
                                    PCRE2_ANCHORED | PCRE2_ENDANCHORED, c->md, NULL) >= 0) {
            *n = c->cfg->bucket_rules[i].n_buckets;
            return c->cfg->bucket_rules[i].buckets;
        }
    }
    if (c->cfg->n_histogram_buckets) {
        *n = c->cfg->n_histogram_buckets;
        return c->cfg->histogram_buckets;
    }
    return NULL;
}

static void bounds_init(bounds_ctx *c, const pf_server *srv)
{
    memset(c, 0, sizeof *c);
    c->st = srv->stats;
    c->cfg = &srv->cfg->stats;
    if (!c->cfg->n_bucket_rules)
        return;
    c->re = calloc(c->cfg->n_bucket_rules, sizeof *c->re);
    c->md = pcre2_match_data_create(4, NULL);
    for (size_t i = 0; c->re && i < c->cfg->n_bucket_rules; i++) {
        int ec;
        PCRE2_SIZE eo;
        c->re[i] = pcre2_compile((PCRE2_SPTR)c->cfg->bucket_rules[i].regex,
                                 PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
    }
    if (!c->re) {
        pcre2_match_data_free(c->md);
        c->md = NULL;
    }
}

static void bounds_free(bounds_ctx *c)
{
    for (size_t i = 0; c->re && i < c->cfg->n_bucket_rules; i++)
        pcre2_code_free(c->re[i]);
    free(c->re);
    pcre2_match_data_free(c->md);
}

enum { FMT_TEXT, FMT_JSON, FMT_PROM };

static void render(const admin_request *rq, admin_response *rs, int fmt)
{
    pf_server *srv = rq->srv;
    if (!srv->stats) {
        rs->status = 503;
        sbuf_puts(&rs->body, "stats are not available yet\n");
        return;
    }
    pf_breakers_publish(srv);       /* global counters, not per-worker shards */
    bounds_ctx bc;
    bounds_init(&bc, srv);
    stats_format_opts o = {
        .filter = admin_query(rq, "filter"),
        .used_only = admin_query(rq, "usedonly") != NULL,
        .bounds = rule_bounds,
        .bounds_ctx = &bc,
    };
    if (o.filter && !o.filter[0])
        o.filter = NULL;
    char err[256] = "";
    int rc;
    if (fmt == FMT_JSON) {
        rs->content_type = ADMIN_CT_JSON;
        rc = stats_format_json(srv->stats, &o, &rs->body, err, sizeof err);
    } else if (fmt == FMT_PROM) {
        rc = stats_format_prometheus(srv->stats, &o, &rs->body, err, sizeof err);
    } else {
        rc = stats_format_text(srv->stats, &o, &rs->body, err, sizeof err);
    }
    bounds_free(&bc);
    if (rc) {
        sbuf_free(&rs->body);
        rs->content_type = ADMIN_CT_TEXT;
        rs->status = rc == -EINVAL ? 400 : 500;
        sbuf_printf(&rs->body, "%s\n", err[0] ? err : "stats output failed");
    }
}

void admin_h_stats(const admin_request *rq, admin_response *rs)
{
    const char *f = admin_query(rq, "format");
    int fmt = FMT_TEXT;
    if (f && strcmp(f, "json") == 0)
        fmt = FMT_JSON;
    else if (f && strcmp(f, "prometheus") == 0)
        fmt = FMT_PROM;
    else if (f && strcmp(f, "text") != 0) {
        rs->status = 400;
        sbuf_puts(&rs->body, "usage: /stats?format=(json|prometheus|text)\n");
        return;
    }
    render(rq, rs, fmt);
}

void admin_h_stats_prometheus(const admin_request *rq, admin_response *rs)
{
    render(rq, rs, FMT_PROM);
}
