/* Log-linear histogram: bucket geometry, quantile accuracy against an exact
 * sort of 10^6 samples per distribution, merge, interval subtraction and
 * the 1 µs / 1 h extremes.
 *
 * Bound tested: every reported quantile q is within 1 % (and in fact within
 * the design bound 1/128 = 0.78 %) of the exact order statistic of rank
 * ceil(q*n) (hist_rank). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "admin/histogram.h"
#include "tests/unit/pftest.h"

#define N 1000000

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)                          /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double unif(void)                            /* (0, 1) */
{
    return ((double)(rng() >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(void)
{
    return sqrt(-2 * log(unif())) * cos(2 * M_PI * unif());
}

static uint64_t clampv(double v)
{
    if (v < 1)
        return 1;
    if (v > 3.6e9)
        return 3600000000ull;
    return (uint64_t)v;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static const double qs[] = {0,    0.001, 0.01, 0.1,   0.25,  0.333, 0.5,    0.6,
                            0.75, 0.9,   0.95, 0.99,  0.995, 0.999, 0.9999, 1};
#define NQS (sizeof qs / sizeof qs[0])

static double worst_err;

static void check_quantiles(const char *dist, uint64_t *v, size_t n)
{
    static hist_t h;
    hist_reset(&h);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        hist_record(&h, v[i]);
        sum += v[i];
    }
    CHECK(hist_count(&h) == n);
    CHECK(hist_sum(&h) == sum);
    qsort(v, n, sizeof *v, cmp_u64);
    double got[NQS];
    hist_quantiles(&h, qs, got, NQS);
    for (size_t j = 0; j < NQS; j++) {
        double exact = (double)v[hist_rank(qs[j], n) - 1];
        double err = fabs(got[j] - exact) / exact;
        CHECK(fabs(hist_quantile(&h, qs[j]) - got[j]) < 1e-9);
        if (err > worst_err)
            worst_err = err;
        if (err > 1.0 / 128) {
            fprintf(stderr, "%s q=%g exact=%.0f got=%.1f err=%.4f%%\n", dist, qs[j], exact, got[j],
                    err * 100);
            CHECK(err <= 0.01);
            CHECK(err <= 1.0 / 128);
        }
    }
    /* Prometheus-style cumulative counts: a lower bound that misses at most
     * the one bucket straddling the bound. */
    static const double bounds[] = {1, 100, 500, 1000, 5000, 25000, 1e6, 3.6e9};
    for (size_t j = 0; j < sizeof bounds / sizeof bounds[0]; j++) {
        size_t exact_le = 0, exact_lo = 0;
        for (size_t i = 0; i < n; i++) {
            exact_le += v[i] <= bounds[j];
            exact_lo += v[i] < bounds[j] * (1 - 1.0 / 64);
        }
        uint64_t c = hist_count_le(&h, bounds[j]);
        CHECK(c <= exact_le);
        CHECK(c >= exact_lo);
    }
}

static void test_geometry(void)
{
    for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
        uint64_t lo = hist_bucket_low(i), hi = hist_bucket_high(i);
        CHECK(lo <= hi);
        CHECK(hist_index(lo) == i);
        CHECK(hist_index(hi) == i);
        if (i + 1 < HIST_BUCKETS)
            CHECK(hi + 1 == hist_bucket_low(i + 1));
        /* The midpoint is within 1/128 of every value in the bucket. */
        double mid = hist_bucket_mid(i);
        if (lo > 0)
            CHECK((mid - (double)lo) / (double)lo <= 1.0 / 128 + 1e-12);
        if (hi > 0)
            CHECK(((double)hi - mid) / (double)hi <= 1.0 / 128 + 1e-12);
    }
    CHECK(hist_bucket_low(0) == 0);
    CHECK(hist_bucket_high(HIST_BUCKETS - 1) == HIST_MAX_VALUE);
    CHECK(hist_index(UINT64_MAX) == HIST_BUCKETS - 1);
    CHECK(hist_index(3600000000ull) < HIST_BUCKETS - 1);    /* 1 h is in range */
    for (uint64_t v = 0; v < 128; v++)
        CHECK(hist_index(v) == v && hist_bucket_mid((uint32_t)v) == (double)v);
}

static void test_extremes(void)
{
    static hist_t h;
    hist_reset(&h);
    CHECK(isnan(hist_quantile(&h, 0.5)));
    hist_record(&h, 1);
    CHECK(hist_quantile(&h, 0) == 1 && hist_quantile(&h, 1) == 1);
    hist_record(&h, 3600000000ull);
    double top = hist_quantile(&h, 1);
    CHECK(fabs(top - 3.6e9) / 3.6e9 <= 1.0 / 128);
    CHECK(hist_quantile(&h, 0) == 1);
    CHECK(hist_quantile(&h, 0.5) == 1);
    hist_record(&h, UINT64_MAX);                    /* clamped, still counted */
    CHECK(hist_count(&h) == 3);
    CHECK(hist_quantile(&h, 1) == hist_bucket_mid(HIST_BUCKETS - 1));
    hist_record(&h, 0);
    CHECK(hist_quantile(&h, 0) == 0);
}

static void test_merge_and_interval(uint64_t *v, size_t n)
{
    static hist_t whole, parts[4], merged, first, interval, second;
    hist_reset(&whole);
    hist_reset(&merged);
    for (int k = 0; k < 4; k++)
        hist_reset(&parts[k]);
    for (size_t i = 0; i < n; i++) {
        hist_record(&whole, v[i]);
        hist_record(&parts[i % 4], v[i]);
    }
    for (int k = 0; k < 4; k++)
        hist_add(&merged, &parts[k]);
    CHECK(memcmp(&whole, &merged, sizeof whole) == 0);

    /* interval = now - prev equals a histogram of just the second half. */
    hist_reset(&first);
    hist_reset(&second);
    for (size_t i = 0; i < n / 2; i++)
        hist_record(&first, v[i]);
    for (size_t i = n / 2; i < n; i++)
        hist_record(&second, v[i]);
    hist_sub(&interval, &whole, &first);
    CHECK(memcmp(&interval, &second, sizeof second) == 0);
    CHECK(hist_count(&interval) == n - n / 2);
    hist_sub(&interval, &whole, &whole);
    CHECK(hist_count(&interval) == 0 && isnan(hist_quantile(&interval, 0.5)));
    hist_copy(&interval, &whole);
    CHECK(memcmp(&interval, &whole, sizeof whole) == 0);
}

int main(void)
{
    uint64_t *v = malloc(N * sizeof *v);
    if (!v)
        return 1;
    test_geometry();
    test_extremes();

    for (size_t i = 0; i < N; i++)
        v[i] = 1 + rng() % 1000000;
    test_merge_and_interval(v, N);
    check_quantiles("uniform", v, N);

    for (size_t i = 0; i < N; i++)
        v[i] = clampv(1 - 5000 * log(unif()));
    check_quantiles("exponential", v, N);

    for (size_t i = 0; i < N; i++)
        v[i] = clampv(exp(log(2000) + 1.5 * normal()));
    check_quantiles("lognormal", v, N);

    for (size_t i = 0; i < N; i++)
        v[i] = clampv(unif() < 0.9 ? 800 + 50 * normal() : 250000 + 20000 * normal());
    check_quantiles("bimodal", v, N);

    for (size_t i = 0; i < N; i++)
        v[i] = 4242;
    check_quantiles("constant", v, N);

    for (size_t i = 0; i < N; i++)
        v[i] = (i & 1) ? 1 : 3600000000ull;
    check_quantiles("extremes", v, N);

    printf("worst relative quantile error: %.4f%%\n", worst_err * 100);
    free(v);
    return TEST_DONE();
}
