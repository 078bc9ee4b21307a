/* Runtime snapshots: layer precedence, static-layer flattening, value parsing. */
#include "admin/runtime.h"
#include "config/config.h"
#include "config/runtime_config.h"

#include <string.h>

#include "pftest.h"

static const char CFG[] =
    "layered_runtime:\n"
    "  layers:\n"
    "  - name: base\n"
    "    static_layer:\n"
    "      health_check: {min_interval: 5, max: {deep: \"x\"}}\n"
    "      pct: 25\n"
    "      big: 150\n"
    "      flag: true\n"
    "      neg: -3\n"
    "      frac: {numerator: 5, denominator: TEN_THOUSAND}\n"
    "  - name: over\n"
    "    static_layer: {pct: 50}\n"
    "  - name: admin\n"
    "    admin_layer: {}\n";

int main(void)
{
    cfg_bootstrap *b = NULL;
    char err[CFG_ERR_MAX];
    CHECK(cfg_load_string("t", CFG, sizeof CFG - 1, &b, err, sizeof err) == 0);
    if (!b) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    CHECK(b->runtime && b->runtime->n_layers == 3);
    CHECK(strcmp(b->runtime->layers[0].entries[0].key, "big") == 0);   /* sorted */
    runtime_loader *l = runtime_loader_new(b->runtime);
    CHECK(l != NULL);
    pf_runtime_snapshot *s = runtime_loader_snapshot(l);
    CHECK(runtime_get_uint(s, "health_check.min_interval", 0) == 5);
    CHECK(strcmp(runtime_get(s, "health_check.max.deep"), "x") == 0);
    CHECK(runtime_get(s, "health_check") == NULL);
    CHECK(runtime_get_uint(s, "pct", 0) == 50);                /* later layer wins */
    CHECK(runtime_get_uint(s, "neg", 7) == 7);                 /* negative: not a uint */
    CHECK(runtime_get_double(s, "neg", 0) == -3);
    CHECK(runtime_get_bool(s, "flag", false));
    CHECK(runtime_get_uint(s, "missing", 9) == 9);

    uint32_t num, den;
    runtime_get_fraction(s, "frac", 0, 100, &num, &den);
    CHECK(num == 5 && den == 10000);
    runtime_get_fraction(s, "pct", 0, 100, &num, &den);
    CHECK(num == 50 && den == 100);
    runtime_get_fraction(s, "missing", 3, 1000000, &num, &den);
    CHECK(num == 3 && den == 1000000);
    CHECK(runtime_fraction_enabled(s, "frac", 0, 100, 4));
    CHECK(!runtime_fraction_enabled(s, "frac", 0, 100, 5));
    CHECK(runtime_fraction_enabled(s, "frac", 0, 100, 10004));
    CHECK(runtime_fraction_enabled(s, "big", 0, 100, 99));      /* > 100: always */
    CHECK(runtime_feature_enabled(s, "pct", 0, 49));
    CHECK(!runtime_feature_enabled(s, "pct", 0, 50));
    CHECK(runtime_feature_enabled(s, "big", 0, 99));
    CHECK(!runtime_feature_enabled(s, "missing", 0, 0));

    /* admin layer overrides everything; "" removes the override */
    pf_runtime_snapshot *old = runtime_snapshot_ref(s);
    const char *k[] = {"pct", "new"}, *v[] = {"10", "y"};
    CHECK(runtime_loader_merge(l, k, v, 2, err, sizeof err) == 0);
    s = runtime_loader_snapshot(l);
    CHECK(runtime_get_uint(s, "pct", 0) == 10);
    CHECK(strcmp(runtime_get(s, "new"), "y") == 0);
    CHECK(runtime_get_uint(old, "pct", 0) == 50);              /* old snapshot unchanged */
    CHECK(s->n_layers == 3 && s->layers[2].n == 2);
    const char *v2[] = {"", ""};
    CHECK(runtime_loader_merge(l, k, v2, 2, err, sizeof err) == 0);
    s = runtime_loader_snapshot(l);
    CHECK(runtime_get_uint(s, "pct", 0) == 50);
    CHECK(runtime_get(s, "new") == NULL);
    runtime_snapshot_unref(old);
    runtime_loader_free(l);
    cfg_free(b);

    /* default layers without layered_runtime; no admin layer -> error */
    l = runtime_loader_new(NULL);
    s = runtime_loader_snapshot(l);
    CHECK(s->n_layers == 2 && strcmp(s->layers[0].name, "base") == 0 &&
          strcmp(s->layers[1].name, "admin") == 0);
    runtime_loader_free(l);
    cfg_runtime rt = {0};
    l = runtime_loader_new(&rt);
    CHECK(runtime_loader_merge(l, k, v, 1, err, sizeof err) < 0);
    CHECK(strcmp(err, "No admin layer specified") == 0);
    runtime_loader_free(l);

    /* value parsing */
    runtime_entry e = {.value = (char *)"1e2"};
    runtime_entry_resolve(&e);
    CHECK(e.has_uint && e.uint_value == 100);
    e.value = (char *)"FALSE";
    runtime_entry_resolve(&e);
    CHECK(e.has_bool && !e.bool_value && !e.has_uint);
    e.value = (char *)"numerator: 7\ndenominator: MILLION";
    runtime_entry_resolve(&e);
    CHECK(e.has_fraction && e.numerator == 7 && e.denominator == 1000000);
    e.value = (char *)"abc";
    runtime_entry_resolve(&e);
    CHECK(!e.has_uint && !e.has_double && !e.has_bool && !e.has_fraction);
    return TEST_DONE();
}
