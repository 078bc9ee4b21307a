/* Log-linear latency histogram over microseconds (HdrHistogram-style).
 *
 * Values 0..127 µs get one bucket each (exact).  Above that, every power of
 * two [2^e, 2^(e+1)) is split into 64 equal sub-buckets of width 2^(e-6), so
 * a bucket's midpoint is within 1/128 (0.78 %) of any value in it — under
 * the 1 % budget for latency quantiles.  The top power of two is 2^31, so
 * the range is 0 … 2^32-1 µs (~71.6 min, > 1 h); larger values are clamped
 * into the last bucket (the exact sum still counts them).
 *
 * Threading: one owner thread writes with relaxed load + store (no atomic
 * read-modify-write, no fence); any thread may read with relaxed loads and
 * sees a slightly stale but torn-free value per field.  Merging is bucket
 * addition, so shards and intervals compose. */
#ifndef PF_HISTOGRAM_H
#define PF_HISTOGRAM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 6                              /* 64 sub-buckets per 2^e */
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_EXP 31                              /* top power of two */
#define HIST_MAX_VALUE ((UINT64_C(1) << (HIST_MAX_EXP + 1)) - 1)
#define HIST_BUCKETS ((HIST_MAX_EXP - HIST_SUB_BITS + 1) * HIST_SUB + HIST_SUB)  /* 1728 */

typedef struct hist {
    _Atomic uint64_t buckets[HIST_BUCKETS];
    _Atomic uint64_t count;
    _Atomic uint64_t sum;                            /* µs, unclamped */
} hist_t;

/* Bucket index of a value: branch-free except the clamp (a cmov).  OR-ing
 * in 2*HIST_SUB-1 makes clz well defined for 0 and maps every value below
 * 128 to shift 0, i.e. its own bucket. */
static inline uint32_t hist_index(uint64_t us)
{
    uint64_t v = us > HIST_MAX_VALUE ? HIST_MAX_VALUE : us;
    unsigned e = 63u - (unsigned)__builtin_clzll(v | (2u * HIST_SUB - 1u));
    unsigned shift = e - HIST_SUB_BITS;
    return (uint32_t)((shift << HIST_SUB_BITS) + (v >> shift));
}

/* Owner thread only: a few ns, no allocation, no loop, no division. */
static inline void hist_record(hist_t *h, uint64_t us)
{
    _Atomic uint64_t *b = &h->buckets[hist_index(us)];
    atomic_store_explicit(b, atomic_load_explicit(b, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&h->count, atomic_load_explicit(&h->count, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&h->sum, atomic_load_explicit(&h->sum, memory_order_relaxed) + us,
                          memory_order_relaxed);
}

/* Smallest and largest value (inclusive) that land in bucket i. */
uint64_t hist_bucket_low(uint32_t i);
uint64_t hist_bucket_high(uint32_t i);
/* The value reported for bucket i: (low + high) / 2. */
double hist_bucket_mid(uint32_t i);

void hist_reset(hist_t *h);
/* Copies src into dst with relaxed loads (a consistent-enough snapshot). */
void hist_copy(hist_t *dst, const hist_t *src);
/* dst += src, bucket by bucket.  dst must not be concurrently written. */
void hist_add(hist_t *dst, const hist_t *src);
/* dst = now - prev (the interval between two cumulative snapshots).  A
 * bucket that went backwards (cannot happen for snapshots of one series)
 * saturates at 0. */
void hist_sub(hist_t *dst, const hist_t *now, const hist_t *prev);

uint64_t hist_count(const hist_t *h);
uint64_t hist_sum(const hist_t *h);                  /* µs */

/* q in [0,1].  Returns the midpoint (µs) of the bucket holding the sample of
 * rank ceil(q*count) (rank 1 for q = 0: P0 is the min bucket, P100 the max
 * bucket), so the result is within 0.78 % of that exact order statistic.
 * NAN when the histogram is empty. */
double hist_quantile(const hist_t *h, double q);
/* The 1-based rank hist_quantile uses: ceil(q*n) clamped to [1, n]; a tiny
 * slack absorbs float noise so q = 0.995, n = 1e6 gives rank 995000. */
uint64_t hist_rank(double q, uint64_t n);
/* Fills out[i] = hist_quantile(h, qs[i]) in one pass; qs ascending. */
void hist_quantiles(const hist_t *h, const double *qs, double *out, int n);

/* Number of samples whose bucket lies entirely at or below bound_us, i.e.
 * buckets with hist_bucket_high(i) <= bound_us (Prometheus `le`).  Samples
 * in the one bucket that straddles the bound are not counted, so the result
 * is a lower bound off by at most that bucket (values within 1/64 of the
 * bound); for bounds below 128 µs it is exact. */
uint64_t hist_count_le(const hist_t *h, double bound_us);
/* hist_count_le for n ascending bounds, scaled by `scale` (1000 for bounds
 * in ms), in one pass over the buckets. */
void hist_counts_le(const hist_t *h, const double *bounds, double scale, uint64_t *out, size_t n);

#endif
