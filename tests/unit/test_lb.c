/* Load balancers (proxy/lb.c): priority loads, panic, and each policy's
 * distribution, driven with synthetic host sets, randomness and hashes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cluster_config.h"
#include "proxy/cluster.h"
#include "pftest.h"

static uint64_t rng_state = 88172645463325252ull;

static uint64_t xorshift(void *arg)
{
    (void)arg;
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int64_t active[64];

static int64_t get_active(void *arg, uint32_t h)
{
    (void)arg;
    return active[h];
}

/* n hosts 10.0.0.(i+1):80 with weights w (NULL: 1), priorities p (NULL: 0). */
static pf_hostset *make(size_t n, const uint32_t *w, const uint32_t *p, const uint16_t *flags)
{
    pf_hostset *hs = pf_hostset_new(n);
    for (size_t i = 0; i < n; i++) {
        char ip[32];
        snprintf(ip, sizeof ip, "10.0.0.%zu", i + 1);
        pf_sockaddr_from(ip, 80, &hs->addrs[i]);
        if (w)
            hs->info[i].weight = w[i];
        if (p)
            hs->info[i].priority = p[i];
        if (flags)
            hs->info[i].flags = flags[i];
    }
    return hs;
}

static cfg_cluster cluster_of(cfg_lb_policy pol, cfg_cluster_lb *lb)
{
    *lb = cfg_cluster_lb_defaults;
    cfg_cluster c;
    memset(&c, 0, sizeof c);
    c.name = "t";
    c.lb_policy = pol;
    c.lb = lb;
    return c;
}

static void count(pf_hostset *hs, size_t picks, unsigned *out, bool with_hash)
{
    pf_lb_rt rt;
    memset(&rt, 0, sizeof rt);
    CHECK(pf_lb_rt_reset(&rt, hs) == 0);
    for (size_t i = 0; i < picks; i++) {
        pf_lb_ctx ctx = {.random = xorshift, .active = get_active, .has_hash = with_hash,
                         .hash = with_hash ? xorshift(NULL) : 0};
        int h = pf_lb_choose(hs, &rt, &ctx);
        CHECK(h >= 0 && (size_t)h < hs->n);
        if (h >= 0)
            out[h]++;
    }
    pf_lb_rt_free(&rt);
}

static bool near(unsigned got, double want, double tol)
{
    return got >= want * (1 - tol) && got <= want * (1 + tol);
}

static void test_weighted(cfg_lb_policy pol, bool hash, double tol)
{
    cfg_cluster_lb lb;
    cfg_cluster c = cluster_of(pol, &lb);
    uint32_t w[3] = {1, 2, 5};
    pf_hostset *hs = make(3, w, NULL, NULL);
    CHECK(pf_hostset_build_lb(hs, &c) == 0);
    unsigned n[3] = {0};
    count(hs, 80000, n, hash);
    for (int i = 0; i < 3; i++) {
        if (!near(n[i], 80000.0 * w[i] / 8, tol))
            fprintf(stderr, "policy %d host %d: %u picks, want ~%.0f\n", pol, i, n[i],
                    80000.0 * w[i] / 8);
        CHECK(near(n[i], 80000.0 * w[i] / 8, tol));
    }
    pf_hostset_unref(hs);
}

static void test_rr_exact(void)
{
    cfg_cluster_lb lb;
    cfg_cluster c = cluster_of(CFG_LB_ROUND_ROBIN, &lb);
    uint32_t w[3] = {1, 2, 5};
    pf_hostset *hs = make(3, w, NULL, NULL);
    CHECK(pf_hostset_build_lb(hs, &c) == 0);
    unsigned n[3] = {0};
    count(hs, 800, n, false);       /* smooth WRR is exact per cycle */
    CHECK(n[0] == 100 && n[1] == 200 && n[2] == 500);
    pf_hostset_unref(hs);
}

static void test_priority_spill(void)
{
    cfg_cluster_lb lb;
    cfg_cluster c = cluster_of(CFG_LB_ROUND_ROBIN, &lb);
    uint32_t p[4] = {0, 0, 1, 1};
    /* All healthy: P0 takes everything. */
    pf_hostset *hs = make(4, NULL, p, NULL);
    CHECK(pf_hostset_build_lb(hs, &c) == 0);
    CHECK(hs->n_prio == 2 && hs->prio[0].load == 100 && hs->prio[1].load == 0);
    pf_hostset_unref(hs);
    /* Half of P0 down: health 1.4 * 50 = 70 -> 70 / 30. */
    uint16_t f1[4] = {PF_HOST_FAILED_ACTIVE_HC, 0, 0, 0};
    hs = make(4, NULL, p, f1);
    CHECK(pf_hostset_build_lb(hs, &c) == 0);
    CHECK(hs->prio[0].load == 70 && hs->prio[1].load == 30);
    CHECK(!hs->prio[0].panic);
    unsigned n[4] = {0};
    count(hs, 10000, n, false);
    CHECK(n[0] == 0 && near(n[1], 7000, 0.05) && near(n[2] + n[3], 3000, 0.1));
    pf_hostset_unref(hs);
    /* P0 all down: everything to P1. */
    uint16_t f2[4] = {PF_HOST_FAILED_ACTIVE_HC, PF_HOST_FAILED_OUTLIER, 0, 0};
    hs = make(4, NULL, p, f2);
    CHECK(pf_hostset_build_lb(hs, &c) == 0);
    CHECK(hs->prio[0].load == 0 && hs->prio[1].load == 100);
    memset(n, 0, sizeof n);
    count(hs, 1000, n, false);
    CHECK(n[0] == 0 && n[1] == 0 && n[2] == 500 && n[3] == 500);
    pf_hostset_unref(hs);
    /* overprovisioning_factor 100: half healthy P0 -> 50 / 50. */
    lb.overprovisioning_factor = 100;
    hs = make(4, NULL, p, f1);
    CHECK(pf_hostset_build_lb(hs, &c) == 0);
    CHECK(hs->prio[0].load == 50 && hs->prio[1].load == 50);
    pf_hostset_unref(hs);
}

static void test_panic(void)
{
    cfg_cluster_lb lb;
    cfg_cluster c = cluster_of(CFG_LB_ROUND_ROBIN, &lb);
    /* One priority, 1 of 4 healthy (25% < 50%): panic, all hosts used. */
    uint16_t f[4] = {PF_HOST_FAILED_ACTIVE_HC, PF_HOST_FAILED_ACTIVE_HC, PF_HOST_FAILED_OUTLIER, 0};
    pf_hostset *hs = make(4, NULL, NULL, f);
    CHECK(pf_hostset_build_lb(hs, &c) == 0);
    CHECK(hs->prio[0].panic && hs->prio[0].load == 100);
    unsigned n[4] = {0};
    pf_lb_rt rt;
    memset(&rt, 0, sizeof rt);
    CHECK(pf_lb_rt_reset(&rt, hs) == 0);
    pf_lb_ctx ctx = {.random = xorshift};
    for (int i = 0; i < 400; i++) {
        int h = pf_lb_choose(hs, &rt, &ctx);
        CHECK(ctx.panic);
        if (h >= 0)
            n[h]++;
    }
    CHECK(n[0] == 100 && n[1] == 100 && n[2] == 100 && n[3] == 100);
    pf_lb_rt_free(&rt);
    pf_hostset_unref(hs);
    /* 3 of 4 healthy (75%): not in panic, only healthy hosts. */
    uint16_t g[4] = {PF_HOST_FAILED_ACTIVE_HC, 0, 0, 0};
    hs = make(4, NULL, NULL, g);
    CHECK(pf_hostset_build_lb(hs, &c) == 0);
    CHECK(!hs->prio[0].panic);
    memset(n, 0, sizeof n);
    count(hs, 300, n, false);
    CHECK(n[0] == 0 && n[1] == 100);
    pf_hostset_unref(hs);
    /* Panic threshold 0 disables panic: no healthy host, no pick. */
    lb.panic_threshold = 0;
    uint16_t all[2] = {PF_HOST_FAILED_ACTIVE_HC, PF_HOST_FAILED_ACTIVE_HC};
    hs = make(2, NULL, NULL, all);
    CHECK(pf_hostset_build_lb(hs, &c) == 0);
    CHECK(pf_lb_rt_reset(&rt, hs) == 0);
    pf_lb_ctx ctx2 = {.random = xorshift};
    CHECK(pf_lb_choose(hs, &rt, &ctx2) == -1);
    pf_lb_rt_free(&rt);
    pf_hostset_unref(hs);
}

static void test_least_request(void)
{
    cfg_cluster_lb lb;
    cfg_cluster c = cluster_of(CFG_LB_LEAST_REQUEST, &lb);
    pf_hostset *hs = make(4, NULL, NULL, NULL);
    CHECK(pf_hostset_build_lb(hs, &c) == 0);
    memset(active, 0, sizeof active);
    active[0] = 100;       /* a busy host is almost never chosen */
    unsigned n[4] = {0};
    count(hs, 10000, n, false);
    CHECK(n[0] < 10000 / 16 + 200);     /* only when both choices are host 0 */
    CHECK(n[1] > 2500 && n[2] > 2500 && n[3] > 2500);
    memset(active, 0, sizeof active);
    pf_hostset_unref(hs);
}

/* The same hash goes to the same host; removing a host moves only its keys. */
static void test_hash_stability(cfg_lb_policy pol)
{
    cfg_cluster_lb lb;
    cfg_cluster c = cluster_of(pol, &lb);
    pf_hostset *a = make(5, NULL, NULL, NULL);
    uint16_t f[5] = {0, 0, PF_HOST_FAILED_ACTIVE_HC, 0, 0};
    pf_hostset *b = make(5, NULL, NULL, f);
    CHECK(pf_hostset_build_lb(a, &c) == 0 && pf_hostset_build_lb(b, &c) == 0);
    pf_lb_rt rt;
    memset(&rt, 0, sizeof rt);
    CHECK(pf_lb_rt_reset(&rt, a) == 0);
    unsigned moved = 0, on_removed = 0, per[5] = {0};
    for (uint64_t k = 0; k < 20000; k++) {
        uint64_t h = k * 0x9E3779B97F4A7C15ull;
        pf_lb_ctx ctx = {.random = xorshift, .has_hash = true, .hash = h};
        int ha = pf_lb_choose(a, &rt, &ctx);
        int ha2 = pf_lb_choose(a, &rt, &ctx);
        int hb = pf_lb_choose(b, &rt, &ctx);
        CHECK(ha == ha2);
        CHECK(hb != 2);
        if (ha >= 0)
            per[ha]++;
        if (ha == 2)
            on_removed++;
        else if (ha != hb)
            moved++;
    }
    /* Maglev moves few other keys; the ring is rebuilt with more points per
     * host when one leaves (Envoy's sizing), moving a bounded share. */
    if (pol == CFG_LB_MAGLEV)
        CHECK(moved < 20000 / 20);
    else
        CHECK(moved < 20000 / 4);
    for (int i = 0; i < 5; i++)
        CHECK(near(per[i], 4000, pol == CFG_LB_MAGLEV ? 0.05 : 0.25));
    CHECK(on_removed > 0);
    pf_lb_rt_free(&rt);
    pf_hostset_unref(a);
    pf_hostset_unref(b);
}

static void test_ring_sizes(void)
{
    cfg_cluster_lb lb;
    cfg_cluster c = cluster_of(CFG_LB_RING_HASH, &lb);
    lb.ring_min = 64;
    lb.ring_max = 128;
    uint32_t w[2] = {1, 3};
    pf_hostset *hs = make(2, w, NULL, NULL);
    CHECK(pf_hostset_build_lb(hs, &c) == 0);
    CHECK(hs->prio[0].healthy.ring_n >= 64 && hs->prio[0].healthy.ring_n <= 130);
    pf_hostset_unref(hs);
    lb.maglev_table_size = 101;
    c.lb_policy = CFG_LB_MAGLEV;
    hs = make(2, w, NULL, NULL);
    CHECK(pf_hostset_build_lb(hs, &c) == 0);
    unsigned n1 = 0;
    for (uint32_t i = 0; i < hs->prio[0].healthy.maglev_n; i++)
        n1 += hs->prio[0].healthy.maglev[i] == 1;
    CHECK(hs->prio[0].healthy.maglev_n == 101 && n1 >= 72 && n1 <= 79);
    pf_hostset_unref(hs);
}

/* locality_weighted_lb_config: hosts 0,1 in locality A (weight 1), 2,3 in B
 * (weight 3), 4 in C (no weight), one priority. */
static void locality_counts(const uint16_t *flags, unsigned *n, size_t picks, bool fail_on_panic)
{
    cfg_cluster_lb lb;
    cfg_cluster c = cluster_of(CFG_LB_ROUND_ROBIN, &lb);
    cfg_locality locs[3] = {{"r", "a", "", 1}, {"r", "b", "", 3}, {"r", "c", "", 0}};
    lb.localities = locs;
    lb.n_localities = 3;
    lb.locality_weighted = true;
    lb.fail_traffic_on_panic = fail_on_panic;
    pf_hostset *hs = make(5, NULL, NULL, flags);
    uint32_t loc[5] = {0, 0, 1, 1, 2};
    for (size_t i = 0; i < 5; i++)
        hs->info[i].locality = loc[i];
    CHECK(pf_hostset_build_lb(hs, &c) == 0);
    pf_lb_rt rt;
    memset(&rt, 0, sizeof rt);
    CHECK(pf_lb_rt_reset(&rt, hs) == 0);
    for (size_t i = 0; i < picks; i++) {
        pf_lb_ctx ctx = {.random = xorshift, .active = get_active};
        int h = pf_lb_choose(hs, &rt, &ctx);
        n[h < 0 ? 5 : h]++;
    }
    pf_lb_rt_free(&rt);
    pf_hostset_unref(hs);
}

static void test_locality_weighted(void)
{
    /* All healthy: A gets 1/4, B 3/4, C (no weight) nothing; exact per cycle. */
    unsigned n[6] = {0};
    locality_counts(NULL, n, 800, false);
    CHECK(n[0] + n[1] == 200 && n[2] + n[3] == 600 && n[4] == 0);
    CHECK(n[0] == 100 && n[2] == 300);
    /* Half of B down: availability 140% x 1/2 = 70% -> weight 2.1 against 1. */
    uint16_t f[5] = {0, 0, PF_HOST_FAILED_ACTIVE_HC, 0, 0};
    memset(n, 0, sizeof n);
    locality_counts(f, n, 3100, false);
    CHECK(n[0] + n[1] == 1000 && n[3] == 2100 && n[2] == 0);
    /* All of B down: A takes it all (C still has no weight). */
    uint16_t g[5] = {0, 0, PF_HOST_FAILED_ACTIVE_HC, PF_HOST_FAILED_ACTIVE_HC, 0};
    memset(n, 0, sizeof n);
    locality_counts(g, n, 100, false);
    CHECK(n[0] + n[1] == 100);
    /* Only C healthy: 1 of 5 is below the panic threshold -> all hosts; with
     * fail_traffic_on_panic, no host. */
    uint16_t h[5] = {PF_HOST_FAILED_ACTIVE_HC, PF_HOST_FAILED_ACTIVE_HC,
                     PF_HOST_FAILED_ACTIVE_HC, PF_HOST_FAILED_ACTIVE_HC, 0};
    memset(n, 0, sizeof n);
    locality_counts(h, n, 50, false);
    CHECK(n[0] == 10 && n[4] == 10 && n[5] == 0);
    memset(n, 0, sizeof n);
    locality_counts(h, n, 50, true);
    CHECK(n[5] == 50);
}

int main(void)
{
    test_locality_weighted();
    test_rr_exact();
    test_weighted(CFG_LB_ROUND_ROBIN, false, 0.01);
    test_weighted(CFG_LB_LEAST_REQUEST, false, 0.05);
    test_weighted(CFG_LB_RING_HASH, true, 0.25);  /* 128-point ring for the lightest */
    test_weighted(CFG_LB_MAGLEV, true, 0.05);
    test_priority_spill();
    test_panic();
    test_least_request();
    test_hash_stability(CFG_LB_RING_HASH);
    test_hash_stability(CFG_LB_MAGLEV);
    test_ring_sizes();
    /* RANDOM is uniform (Envoy ignores weights there). */
    {
        cfg_cluster_lb lb;
        cfg_cluster c = cluster_of(CFG_LB_RANDOM, &lb);
        pf_hostset *hs = make(4, NULL, NULL, NULL);
        CHECK(pf_hostset_build_lb(hs, &c) == 0);
        unsigned n[4] = {0};
        count(hs, 40000, n, false);
        for (int i = 0; i < 4; i++)
            CHECK(near(n[i], 10000, 0.05));
        pf_hostset_unref(hs);
    }
    TEST_DONE();
}
