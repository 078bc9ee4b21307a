/* Stats store and its admin output: registration dedupe, shard merge,
 * gauges, /reset_counters baseline, usedonly, and golden text / JSON /
 * Prometheus output (checked with promtool when it is installed). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/stats.h"
#include "admin/stats_format.h"
#include "tests/unit/pftest.h"

static bool contains(const sbuf *b, const char *s)
{
    return b->p && strstr(b->p, s) != NULL;
}

static void check_prom_name(const char *name, const char *family, const char *labels)
{
    sbuf f = SBUF_INIT, l = SBUF_INIT;
    CHECK(stats_prom_name(name, &f, &l) == 0);
    if (strcmp(f.p, family) != 0 || strcmp(l.p, labels) != 0) {
        fprintf(stderr, "%s -> %s{%s}, want %s{%s}\n", name, f.p, l.p, family, labels);
        CHECK(!"prom name");
    }
    sbuf_free(&f);
    sbuf_free(&l);
}

static void test_tag_extraction(void)
{
    check_prom_name("cluster.app.upstream_rq_total", "envoy_cluster_upstream_rq_total",
                    "envoy_cluster_name=\"app\"");
    check_prom_name("cluster.app.upstream_rq_503", "envoy_cluster_upstream_rq",
                    "envoy_response_code=\"503\",envoy_cluster_name=\"app\"");
    check_prom_name("cluster.app.upstream_rq_5xx", "envoy_cluster_upstream_rq_xx",
                    "envoy_response_code_class=\"5\",envoy_cluster_name=\"app\"");
    check_prom_name("http.ingress_http.downstream_rq_2xx", "envoy_http_downstream_rq_xx",
                    "envoy_response_code_class=\"2\",envoy_http_conn_manager_prefix=\"ingress_http\"");
    check_prom_name("http.ingress_http.downstream_rq_time", "envoy_http_downstream_rq_time",
                    "envoy_http_conn_manager_prefix=\"ingress_http\"");
    check_prom_name("listener.0.0.0.0_10000.downstream_cx_total",
                    "envoy_listener_downstream_cx_total",
                    "envoy_listener_address=\"0.0.0.0_10000\"");
    check_prom_name("listener.[__1]_443.downstream_cx_total", "envoy_listener_downstream_cx_total",
                    "envoy_listener_address=\"[__1]_443\"");
    check_prom_name("listener.0.0.0.0_80.http.ingress.downstream_rq_2xx",
                    "envoy_listener_http_downstream_rq_xx",
                    "envoy_response_code_class=\"2\",envoy_http_conn_manager_prefix=\"ingress\","
                    "envoy_listener_address=\"0.0.0.0_80\"");
    check_prom_name("listener.admin.downstream_cx_total", "envoy_listener_admin_downstream_cx_total",
                    "");
    check_prom_name("server.uptime", "envoy_server_uptime", "");
    check_prom_name("cluster_manager.active_clusters", "envoy_cluster_manager_active_clusters", "");
}

static const double tight_bounds[] = {1, 10};

static const double *bounds_cb(void *ctx, stat_id id, size_t *n)
{
    if (id != *(stat_id *)ctx)
        return NULL;
    *n = 2;
    return tight_bounds;
}

static void promtool_check(const sbuf *b)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        printf("promtool not installed: skipping promtool check\n");
        return;
    }
    char path[] = "/tmp/pf_test_stats_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK(write(fd, b->p, b->n) == (ssize_t)b->n);
    close(fd);
    /* promtool exits 1 on a parse error and 3 when the text parses but
     * breaks naming conventions; Envoy's own names (no HELP, counters
     * without _total, "_ms") trip only the latter, so exit 3 is accepted
     * when nothing but those lints is reported. */
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "promtool check metrics < %s 2> %s.err; rc=$?; "
             "if grep -v -e 'no help text' -e 'should have \"_total\" suffix' "
             "-e 'should not contain abbreviated units' %s.err; then exit 1; fi; "
             "[ $rc -eq 0 ] || [ $rc -eq 3 ]",
             path, path, path);
    int rc = system(cmd);
    CHECK(rc == 0);
    printf("promtool check metrics (%zu bytes): %s\n", b->n,
           rc == 0 ? "parses; only Envoy-naming lints" : "FAILED");
    snprintf(cmd, sizeof cmd, "%s.err", path);
    unlink(cmd);
    unlink(path);
}

int main(void)
{
    test_tag_extraction();

    stats_store *st = stats_store_new();
    CHECK(st != NULL);
    stat_id rq_total = stats_counter(st, "cluster.app.upstream_rq_total");
    stat_id rq_503 = stats_counter(st, "cluster.app.upstream_rq_503");
    stat_id rq_200 = stats_counter(st, "cluster.app.upstream_rq_200");
    stat_id rq_5xx = stats_counter(st, "cluster.app.upstream_rq_5xx");
    stat_id dn_2xx = stats_counter(st, "http.ingress_http.downstream_rq_2xx");
    stat_id lis = stats_counter(st, "listener.0.0.0.0_10000.downstream_cx_total");
    stat_id unused = stats_counter(st, "cluster.app.upstream_rq_timeout");
    stat_id lazy_404 = stats_counter_lazy(st, "cluster.app.upstream_rq_404");
    CHECK(stats_counter(st, "cluster.app.upstream_rq_total") == rq_total);     /* dedupe */
    CHECK(stats_hidden(st, STAT_COUNTER, lazy_404));                          /* zero: hidden */
    CHECK(!stats_hidden(st, STAT_COUNTER, unused));
    CHECK(rq_503 != rq_total);
    stat_id cx_active = stats_gauge(st, "cluster.app.upstream_cx_active");
    stat_id uptime = stats_gauge(st, "server.uptime");
    stat_id g_unused = stats_gauge(st, "server.hot_restart_epoch");
    stat_id rq_time = stats_histogram(st, "cluster.app.upstream_rq_time");
    stat_id dn_time = stats_histogram(st, "http.ingress_http.downstream_rq_time");
    stat_id h_unused = stats_histogram(st, "cluster.app.upstream_cx_connect_ms");
    CHECK(stats_histogram(st, "cluster.app.upstream_rq_time") == rq_time);
    /* Same name in another kind is a different stat. */
    CHECK(stats_count(st, STAT_COUNTER) == 8);
    CHECK(stats_count(st, STAT_GAUGE) == 3);
    CHECK(stats_count(st, STAT_HISTOGRAM) == 3);
    CHECK(strcmp(stats_name(st, STAT_GAUGE, uptime), "server.uptime") == 0);

    /* Many registrations: the dedupe index grows. */
    char name[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "cluster.c%d.upstream_cx_total", i);
        stats_counter(st, name);
    }
    snprintf(name, sizeof name, "cluster.c%d.upstream_cx_total", 500);
    CHECK(stats_counter(st, name) == 8 + 500);
    CHECK(stats_count(st, STAT_COUNTER) == 1008);
    stat_id big = 8 + 999;

    stats_shard *w1 = stats_shard_new(st), *w2 = stats_shard_new(st);
    stats_shard *m = stats_main_shard(st);
    CHECK(w1 && w2 && m && w1 != m);

    for (int i = 0; i < 5; i++)
        stats_inc(w1, rq_total);
    stats_add(w2, rq_total, 10);
    stats_inc(m, rq_total);
    stats_inc(w1, rq_503);
    stats_inc(w1, rq_5xx);
    stats_add(w2, rq_200, 14);
    stats_add(w2, dn_2xx, 14);
    stats_inc(w1, lis);
    stats_inc(w2, big);
    CHECK(stats_counter_value(st, rq_total) == 16);
    CHECK(stats_counter_value(st, big) == 1);

    stats_gauge_add(w1, cx_active, 3);
    stats_gauge_add(w2, cx_active, -1);             /* closed on another worker */
    CHECK(stats_gauge_value(st, cx_active) == 2);
    stats_gauge_set(st, uptime, 0);
    CHECK(stats_gauge_value(st, uptime) == 0);
    CHECK(stats_used(st, STAT_GAUGE, uptime));      /* set, even to 0, is a use */
    stats_gauge_set(st, uptime, 42);
    CHECK(stats_gauge_value(st, uptime) == 42);

    CHECK(stats_used(st, STAT_COUNTER, rq_total));
    CHECK(!stats_used(st, STAT_COUNTER, unused));
    CHECK(!stats_used(st, STAT_GAUGE, g_unused));
    CHECK(!stats_used(st, STAT_HISTOGRAM, rq_time));

    /* Histograms: 1000 µs on w1, 3000 µs on w2. */
    for (int i = 0; i < 3; i++)
        stats_record(w1, rq_time, 1000);
    stats_record(w2, rq_time, 3000);
    stats_record(w1, dn_time, 120);
    hist_t *h = malloc(sizeof *h);
    stats_hist_merge(st, rq_time, h);
    CHECK(hist_count(h) == 4 && hist_sum(h) == 6000);
    CHECK(stats_used(st, STAT_HISTOGRAM, rq_time));
    CHECK(!stats_used(st, STAT_HISTOGRAM, h_unused));

    /* Interval: nothing until the first flush, then the delta. */
    CHECK(hist_count(stats_hist_interval(st, rq_time)) == 0);
    stats_flush(st);
    CHECK(hist_count(stats_hist_interval(st, rq_time)) == 4);
    stats_record(w2, rq_time, 3000);
    stats_flush(st);
    CHECK(hist_count(stats_hist_interval(st, rq_time)) == 1);
    CHECK(hist_quantile(stats_hist_interval(st, rq_time), 0.5) == hist_bucket_mid(hist_index(3000)));

    /* /reset_counters: a baseline, the workers' cells are untouched. */
    stats_reset_counters(st);
    CHECK(stats_counter_value(st, rq_total) == 0);
    CHECK(atomic_load(&w1->counters[rq_total]) == 5);
    stats_inc(w1, rq_total);
    CHECK(stats_counter_value(st, rq_total) == 1);
    CHECK(stats_used(st, STAT_COUNTER, rq_503));    /* used survives reset */
    CHECK(stats_gauge_value(st, cx_active) == 2);   /* gauges are not reset */

    /* ---- text ---- */
    char err[256];
    sbuf b = SBUF_INIT;
    stats_format_opts o = {.filter = "^cluster\\.app\\.|^server|^http"};
    CHECK(stats_format_text(st, &o, &b, err, sizeof err) == 0);
    const char *golden_text =
        "cluster.app.upstream_cx_active: 2\n"
        "cluster.app.upstream_rq_200: 0\n"
        "cluster.app.upstream_rq_503: 0\n"
        "cluster.app.upstream_rq_5xx: 0\n"
        "cluster.app.upstream_rq_timeout: 0\n"
        "cluster.app.upstream_rq_total: 1\n"
        "http.ingress_http.downstream_rq_2xx: 0\n"
        "server.hot_restart_epoch: 0\n"
        "server.uptime: 42\n"
        "cluster.app.upstream_cx_connect_ms: No recorded values\n"
        "cluster.app.upstream_rq_time: P0(2.9915,1.0035) P25(2.9915,1.0035) P50(2.9915,1.0035) "
        "P75(2.9915,2.9915) P90(2.9915,2.9915) P95(2.9915,2.9915) P99(2.9915,2.9915) "
        "P99.5(2.9915,2.9915) P99.9(2.9915,2.9915) P99.99(2.9915,2.9915) P100(2.9915,2.9915)\n"
        "http.ingress_http.downstream_rq_time: P0(nan,0.12) P25(nan,0.12) P50(nan,0.12) "
        "P75(nan,0.12) P90(nan,0.12) P95(nan,0.12) P99(nan,0.12) P99.5(nan,0.12) "
        "P99.9(nan,0.12) P99.99(nan,0.12) P100(nan,0.12)\n";
    if (strcmp(b.p, golden_text) != 0) {
        fprintf(stderr, "text output:\n%s", b.p);
        CHECK(!"text golden");
    }
    sbuf_free(&b);

    o = (stats_format_opts){.filter = "cluster\\.app\\.upstream_rq_t", .used_only = true};
    CHECK(stats_format_text(st, &o, &b, err, sizeof err) == 0);
    CHECK(strcmp(b.p, "cluster.app.upstream_rq_total: 1\n"
                      "cluster.app.upstream_rq_time: P0(2.9915,1.0035) P25(2.9915,1.0035) "
                      "P50(2.9915,1.0035) P75(2.9915,2.9915) P90(2.9915,2.9915) "
                      "P95(2.9915,2.9915) P99(2.9915,2.9915) P99.5(2.9915,2.9915) "
                      "P99.9(2.9915,2.9915) P99.99(2.9915,2.9915) P100(2.9915,2.9915)\n") == 0);
    sbuf_free(&b);

    o = (stats_format_opts){.filter = "cluster.(app"};
    err[0] = 0;
    CHECK(stats_format_text(st, &o, &b, err, sizeof err) == -EINVAL);
    CHECK(strstr(err, "regex") != NULL);
    CHECK(stats_format_json(st, &o, &b, err, sizeof err) == -EINVAL);
    CHECK(stats_format_prometheus(st, &o, &b, err, sizeof err) == -EINVAL);
    sbuf_free(&b);

    /* ---- JSON ---- */
    o = (stats_format_opts){.filter = "^(server|http)\\."};
    CHECK(stats_format_json(st, &o, &b, err, sizeof err) == 0);
    const char *golden_json =
        "{\"stats\":[{\"name\":\"http.ingress_http.downstream_rq_2xx\",\"value\":0},"
        "{\"name\":\"server.hot_restart_epoch\",\"value\":0},"
        "{\"name\":\"server.uptime\",\"value\":42},"
        "{\"histograms\":{\"supported_quantiles\":[0,25,50,75,90,95,99,99.5,99.9,99.99,100],"
        "\"computed_quantiles\":[{\"name\":\"http.ingress_http.downstream_rq_time\",\"values\":["
        "{\"cumulative\":0.12,\"interval\":null},{\"cumulative\":0.12,\"interval\":null},"
        "{\"cumulative\":0.12,\"interval\":null},{\"cumulative\":0.12,\"interval\":null},"
        "{\"cumulative\":0.12,\"interval\":null},{\"cumulative\":0.12,\"interval\":null},"
        "{\"cumulative\":0.12,\"interval\":null},{\"cumulative\":0.12,\"interval\":null},"
        "{\"cumulative\":0.12,\"interval\":null},{\"cumulative\":0.12,\"interval\":null},"
        "{\"cumulative\":0.12,\"interval\":null}]}]}}]}";
    if (strcmp(b.p, golden_json) != 0) {
        fprintf(stderr, "json output:\n%s\n", b.p);
        CHECK(!"json golden");
    }
    sbuf_free(&b);
    o = (stats_format_opts){.filter = "^server\\.uptime$"};
    CHECK(stats_format_json(st, &o, &b, err, sizeof err) == 0);
    CHECK(strcmp(b.p, "{\"stats\":[{\"name\":\"server.uptime\",\"value\":42}]}") == 0);
    sbuf_free(&b);

    /* ---- Prometheus ---- */
    o = (stats_format_opts){.filter = "^(cluster\\.app|http|listener|server)\\.",
                            .bounds = bounds_cb, .bounds_ctx = &dn_time};
    CHECK(stats_format_prometheus(st, &o, &b, err, sizeof err) == 0);
    const char *golden_prom_parts[] = {
        "# TYPE envoy_cluster_upstream_rq counter\n"
        "envoy_cluster_upstream_rq{envoy_response_code=\"200\",envoy_cluster_name=\"app\"} 0\n"
        "envoy_cluster_upstream_rq{envoy_response_code=\"503\",envoy_cluster_name=\"app\"} 0\n",
        "# TYPE envoy_cluster_upstream_rq_xx counter\n"
        "envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"5\",envoy_cluster_name=\"app\"} 0\n",
        "# TYPE envoy_http_downstream_rq_xx counter\n"
        "envoy_http_downstream_rq_xx{envoy_response_code_class=\"2\","
        "envoy_http_conn_manager_prefix=\"ingress_http\"} 0\n",
        "# TYPE envoy_listener_downstream_cx_total counter\n"
        "envoy_listener_downstream_cx_total{envoy_listener_address=\"0.0.0.0_10000\"} 0\n",
        "# TYPE envoy_cluster_upstream_rq_total counter\n"
        "envoy_cluster_upstream_rq_total{envoy_cluster_name=\"app\"} 1\n",
        "# TYPE envoy_server_uptime gauge\nenvoy_server_uptime 42\n",
        "# TYPE envoy_cluster_upstream_cx_active gauge\n"
        "envoy_cluster_upstream_cx_active{envoy_cluster_name=\"app\"} 2\n",
        "# TYPE envoy_cluster_upstream_rq_time histogram\n"
        "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"app\",le=\"0.5\"} 0\n"
        /* 1000 µs sits in bucket [1000, 1007], which reaches past 1 ms: by
         * hist_count_le's documented rule it is not counted under le="1". */
        "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"app\",le=\"1\"} 0\n"
        "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"app\",le=\"5\"} 5\n",
        "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"app\",le=\"3600000\"} 5\n"
        "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"app\",le=\"+Inf\"} 5\n"
        "envoy_cluster_upstream_rq_time_sum{envoy_cluster_name=\"app\"} 9\n"
        "envoy_cluster_upstream_rq_time_count{envoy_cluster_name=\"app\"} 5\n",
        "# TYPE envoy_http_downstream_rq_time histogram\n"
        "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress_http\","
        "le=\"1\"} 1\n"
        "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress_http\","
        "le=\"10\"} 1\n"
        "envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress_http\","
        "le=\"+Inf\"} 1\n"
        "envoy_http_downstream_rq_time_sum{envoy_http_conn_manager_prefix=\"ingress_http\"} 0.12\n",
        "# TYPE envoy_cluster_upstream_cx_connect_ms histogram\n",
    };
    for (size_t i = 0; i < sizeof golden_prom_parts / sizeof *golden_prom_parts; i++) {
        if (!contains(&b, golden_prom_parts[i])) {
            fprintf(stderr, "prometheus output lacks:\n%s\n", golden_prom_parts[i]);
            CHECK(!"prometheus golden");
        }
    }
    /* One # TYPE per family. */
    for (const char *p = b.p; (p = strstr(p, "# TYPE ")) != NULL; p++) {
        const char *eol = strchr(p, '\n');
        char line[256];
        snprintf(line, sizeof line, "%.*s", (int)(eol - p + 1), p);
        CHECK(strstr(eol, line) == NULL);
    }
    promtool_check(&b);
    sbuf_free(&b);

    /* Everything, unfiltered, must also be valid exposition. */
    CHECK(stats_format_prometheus(st, NULL, &b, err, sizeof err) == 0);
    promtool_check(&b);
    sbuf_free(&b);
    o = (stats_format_opts){.used_only = true};
    CHECK(stats_format_prometheus(st, &o, &b, err, sizeof err) == 0);
    CHECK(!contains(&b, "upstream_cx_connect_ms"));
    CHECK(contains(&b, "envoy_cluster_upstream_cx_total{envoy_cluster_name=\"c999\"} 0\n"));
    CHECK(!contains(&b, "c998"));
    sbuf_free(&b);

    char d[32];
    stats_fmt_double(d, sizeof d, 1.0505);
    CHECK(strcmp(d, "1.0505") == 0);
    stats_fmt_double(d, sizeof d, 3600000);
    CHECK(strcmp(d, "3600000") == 0);
    stats_fmt_double(d, sizeof d, 0.001);
    CHECK(strcmp(d, "0.001") == 0);

    free(h);
    stats_store_free(st);
    return TEST_DONE();
}
