/* Log-linear histogram: bucket geometry, merge, quantiles (see histogram.h). */
#include "admin/histogram.h"

#include <math.h>
#include <string.h>

#define LD(p) atomic_load_explicit((p), memory_order_relaxed)
#define ST(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)

uint64_t hist_bucket_low(uint32_t i)
{
    if (i < HIST_SUB)
        return i;
    unsigned shift = (i >> HIST_SUB_BITS) - 1;
    return (uint64_t)(i - (shift << HIST_SUB_BITS)) << shift;
}

uint64_t hist_bucket_high(uint32_t i)
{
    if (i < HIST_SUB)
        return i;
    unsigned shift = (i >> HIST_SUB_BITS) - 1;
    return hist_bucket_low(i) + (UINT64_C(1) << shift) - 1;
}

double hist_bucket_mid(uint32_t i)
{
    return ((double)hist_bucket_low(i) + (double)hist_bucket_high(i)) / 2.0;
}

void hist_reset(hist_t *h)
{
    for (uint32_t i = 0; i < HIST_BUCKETS; i++)
        ST(&h->buckets[i], 0);
    ST(&h->count, 0);
    ST(&h->sum, 0);
}

void hist_copy(hist_t *dst, const hist_t *src)
{
    /* Count is derived from the buckets copied, not src->count, so that a
     * snapshot taken while the owner records stays self-consistent
     * (quantile ranks never exceed the bucket total). */
    uint64_t n = 0;
    for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
        uint64_t b = LD(&src->buckets[i]);
        ST(&dst->buckets[i], b);
        n += b;
    }
    ST(&dst->count, n);
    ST(&dst->sum, LD(&src->sum));
}

void hist_add(hist_t *dst, const hist_t *src)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
        uint64_t b = LD(&src->buckets[i]);
        ST(&dst->buckets[i], LD(&dst->buckets[i]) + b);
        n += b;
    }
    ST(&dst->count, LD(&dst->count) + n);
    ST(&dst->sum, LD(&dst->sum) + LD(&src->sum));
}

void hist_sub(hist_t *dst, const hist_t *now, const hist_t *prev)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
        uint64_t a = LD(&now->buckets[i]), b = LD(&prev->buckets[i]);
        uint64_t d = a > b ? a - b : 0;
        ST(&dst->buckets[i], d);
        n += d;
    }
    ST(&dst->count, n);
    uint64_t sa = LD(&now->sum), sb = LD(&prev->sum);
    ST(&dst->sum, sa > sb ? sa - sb : 0);
}

uint64_t hist_count(const hist_t *h)
{
    return LD(&h->count);
}

uint64_t hist_sum(const hist_t *h)
{
    return LD(&h->sum);
}

uint64_t hist_rank(double q, uint64_t n)
{
    if (n == 0)
        return 0;
    if (!(q > 0))                                   /* also catches NaN */
        return 1;
    if (q >= 1)
        return n;
    double r = ceil(q * (double)n - 1e-7);
    if (r < 1)
        return 1;
    if (r > (double)n)
        return n;
    return (uint64_t)r;
}

void hist_quantiles(const hist_t *h, const double *qs, double *out, int nq)
{
    uint64_t n = LD(&h->count);
    if (n == 0) {
        for (int j = 0; j < nq; j++)
            out[j] = NAN;
        return;
    }
    uint64_t seen = 0;
    uint32_t i = 0;
    uint32_t last = 0;                              /* last nonempty bucket seen */
    for (int j = 0; j < nq; j++) {
        uint64_t rank = hist_rank(qs[j], n);
        while (seen < rank && i < HIST_BUCKETS) {
            uint64_t b = LD(&h->buckets[i]);
            if (b) {
                seen += b;
                last = i;
            }
            i++;
        }
        /* seen < rank only if count ran ahead of the buckets (a racy
         * snapshot); the highest bucket seen is then the best answer. */
        out[j] = hist_bucket_mid(last);
    }
}

double hist_quantile(const hist_t *h, double q)
{
    double v;
    hist_quantiles(h, &q, &v, 1);
    return v;
}

uint64_t hist_count_le(const hist_t *h, double bound_us)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < HIST_BUCKETS && (double)hist_bucket_high(i) <= bound_us; i++)
        n += LD(&h->buckets[i]);
    return n;
}

void hist_counts_le(const hist_t *h, const double *bounds, double scale, uint64_t *out, size_t n)
{
    uint64_t acc = 0;
    uint32_t i = 0;
    for (size_t j = 0; j < n; j++) {
        double bound = bounds[j] * scale;
        for (; i < HIST_BUCKETS && (double)hist_bucket_high(i) <= bound; i++)
            acc += LD(&h->buckets[i]);
        out[j] = acc;
    }
}
