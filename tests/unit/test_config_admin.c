/* Config: layered_runtime and stats_config / stats_flush_interval. */
#include "config/config.h"
#include "config/runtime_config.h"

#include <string.h>

#include "pftest.h"

static cfg_bootstrap *load(const char *y, char *err, size_t n)
{
    cfg_bootstrap *b = NULL;
    if (cfg_load_string("t", y, strlen(y), &b, err, n) != 0)
        return NULL;
    return b;
}

static void expect_err(const char *y, const char *needle)
{
    char err[CFG_ERR_MAX] = "";
    cfg_bootstrap *b = load(y, err, sizeof err);
    CHECK(b == NULL);
    if (!strstr(err, needle)) {
        fprintf(stderr, "expected '%s' in: %s\n", needle, err);
        pf_test_failures++;
    }
    cfg_free(b);
}

int main(void)
{
    char err[CFG_ERR_MAX];
    cfg_bootstrap *b = load("{}", err, sizeof err);
    CHECK(b && b->stats.flush_interval_ms == 5000 && b->stats.n_histogram_buckets == 19);
    CHECK(b && b->stats.histogram_buckets[0] == 0.5 &&
          b->stats.histogram_buckets[18] == 3600000);
    CHECK(b && b->runtime == NULL);
    cfg_free(b);
    b = load("", err, sizeof err);
    CHECK(b && b->stats.flush_interval_ms == 5000);
    cfg_free(b);

    b = load("stats_flush_interval: 0.5s\n"
             "stats_config:\n"
             "  histogram_bucket_settings:\n"
             "  - match: {prefix: cluster.}\n"
             "    buckets: [10, 1, 5]\n"
             "  - match: {safe_regex: {regex: \"http\\\\..*_time\"}}\n"
             "    buckets: [0.1]\n"
             "  - match: {exact: a.b}\n"
             "    buckets: [1]\n",
             err, sizeof err);
    CHECK(b != NULL);
    if (b) {
        CHECK(b->stats.flush_interval_ms == 500);
        CHECK(b->stats.n_bucket_rules == 3);
        CHECK(strcmp(b->stats.bucket_rules[0].regex, "cluster\\..*") == 0);
        CHECK(b->stats.bucket_rules[0].n_buckets == 3 && b->stats.bucket_rules[0].buckets[0] == 1 &&
              b->stats.bucket_rules[0].buckets[2] == 10);
        CHECK(strcmp(b->stats.bucket_rules[1].regex, "http\\..*_time") == 0);
        CHECK(strcmp(b->stats.bucket_rules[2].regex, "a\\.b") == 0);
    } else {
        fprintf(stderr, "%s\n", err);
    }
    cfg_free(b);

    expect_err("stats_flush_interval: 301s\n", "stats_flush_interval");
    expect_err("stats_config: {stats_tags: []}\n", "not supported yet");
    expect_err("stats_config: {histogram_bucket_settings: [{match: {prefix: a}, buckets: []}]}\n",
               "at least one bucket");
    expect_err("stats_config: {histogram_bucket_settings: [{match: {prefix: a}, buckets: [0]}]}\n",
               "greater than 0");
    expect_err("stats_config: {histogram_bucket_settings: [{match: {safe_regex: {regex: \"(\"}}, "
               "buckets: [1]}]}\n", "invalid regex");
    expect_err("stats_config: {histogram_bucket_settings: [{match: {prefix: a}, "
               "buckets: [1, 1]}]}\n", "duplicate bucket");

    b = load("layered_runtime:\n  layers:\n  - name: s\n    static_layer: {a: {b: {c: 1}}, "
             "d: x}\n  - name: adm\n    admin_layer: {}\n", err, sizeof err);
    CHECK(b && b->runtime && b->runtime->n_layers == 2);
    if (b && b->runtime) {
        CHECK(b->runtime->layers[0].n_entries == 2);
        CHECK(strcmp(b->runtime->layers[0].entries[0].key, "a.b.c") == 0);
        CHECK(strcmp(b->runtime->layers[0].entries[0].value, "1") == 0);
        CHECK(b->runtime->layers[1].kind == CFG_RUNTIME_ADMIN);
    }
    cfg_free(b);
    expect_err("layered_runtime: {layers: [{name: d, disk_layer: {symlink_root: /x}}]}\n",
               "not supported yet");
    expect_err("layered_runtime: {layers: [{name: r, rtds_layer: {}}]}\n", "not supported yet");
    expect_err("layered_runtime: {layers: [{name: a, admin_layer: {}}, {name: b, "
               "admin_layer: {}}]}\n", "Too many admin layers");
    expect_err("layered_runtime: {layers: [{name: a, static_layer: {}}, {name: a, "
               "admin_layer: {}}]}\n", "Duplicate layer name: a");
    expect_err("layered_runtime: {layers: [{name: a, static_layer: {k: [1]}}]}\n",
               "Invalid runtime entry value for k");
    expect_err("layered_runtime: {layers: [{name: a}]}\n", "is required");
    return TEST_DONE();
}
