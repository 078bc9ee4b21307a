/* Micro-benchmark of the stats hot path: ns per stats_inc and per
 * stats_record on a worker shard, single thread and with one writer per
 * core (shards are private, so writers must not slow each other down).
 *
 * The stores are relaxed atomics, which compilers do not elide, and the
 * totals are read back and printed, so the loops cannot be optimized away. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "admin/stats.h"

#define N_IDS 10                /* a request bumps ~10 counters */

static stats_store *st;
static stat_id cids[N_IDS], hids[3];
static uint64_t iters = 100000000;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double bench_inc(stats_shard *sh)
{
    double t0 = now_ns();
    for (uint64_t i = 0; i < iters; i += N_IDS)
        for (int k = 0; k < N_IDS; k++)
            stats_inc(sh, cids[k]);
    return (now_ns() - t0) / (double)iters;
}

static double bench_record(stats_shard *sh)
{
    /* Latencies spread over ~1 µs … 16 s (an LCG, a couple of cycles) so
     * that bucket indexes vary as in real traffic. */
    uint64_t x = 88172645463325252ull;
    double t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t us = (x >> 40) >> ((x >> 20) & 15);      /* 24-bit, scaled down */
        stats_record(sh, hids[i % 3], us);
    }
    return (now_ns() - t0) / (double)iters;
}

static double bench_lcg_only(void)
{
    uint64_t x = 88172645463325252ull, acc = 0;
    double t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        acc += (x >> 40) >> ((x >> 20) & 15);
        __asm__ volatile("" : "+r"(acc));
    }
    double ns = (now_ns() - t0) / (double)iters;
    return acc ? ns : ns;
}

typedef struct job {
    stats_shard *sh;
    double inc_ns, rec_ns;
} job;

static void *worker(void *arg)
{
    job *j = arg;
    j->inc_ns = bench_inc(j->sh);
    j->rec_ns = bench_record(j->sh);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        iters = strtoull(argv[1], NULL, 10);
    iters -= iters % N_IDS;
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    if (threads < 1 || threads > 64)
        threads = 2;

    st = stats_store_new();
    char name[64];
    for (int k = 0; k < N_IDS; k++) {
        snprintf(name, sizeof name, "cluster.app.bench_counter_%d", k);
        cids[k] = stats_counter(st, name);
    }
    hids[0] = stats_histogram(st, "cluster.app.upstream_rq_time");
    hids[1] = stats_histogram(st, "http.ingress_http.downstream_rq_time");
    hids[2] = stats_histogram(st, "cluster.app.upstream_cx_connect_ms");

    stats_shard *sh = stats_shard_new(st);
    bench_inc(sh);                                   /* warm-up: page in, clocks up */
    double inc = bench_inc(sh);
    double rec = bench_record(sh);
    double lcg = bench_lcg_only();
    printf("iterations          %" PRIu64 "\n", iters);
    printf("stats_inc           %.2f ns/op\n", inc);
    printf("stats_record        %.2f ns/op (incl. %.2f ns value generator)\n", rec, lcg);

    job jobs[64];
    pthread_t tid[64];
    for (int t = 0; t < threads; t++) {
        jobs[t].sh = stats_shard_new(st);
        pthread_create(&tid[t], NULL, worker, &jobs[t]);
    }
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        printf("thread %d/%d         stats_inc %.2f ns/op, stats_record %.2f ns/op\n", t + 1,
               threads, jobs[t].inc_ns, jobs[t].rec_ns);
    }

    hist_t *h = malloc(sizeof *h);
    stats_hist_merge(st, hids[0], h);
    uint64_t total = stats_counter_value(st, cids[0]);
    printf("check: counter %" PRIu64 " (want %" PRIu64 "), hist count %" PRIu64 "\n", total,
           (uint64_t)(iters / N_IDS) * (uint64_t)(threads + 2), hist_count(h));
    free(h);
    stats_store_free(st);
    return 0;
}
