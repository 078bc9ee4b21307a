/* Stats store: Envoy-named counters, gauges and histograms.
 *
 * Names are registered once, on the main thread, before workers start
 * (stats_counter() etc. return a dense id).  Each worker then owns a
 * stats_shard: plain arrays indexed by id.  Recording is a relaxed atomic
 * load + store by the shard's single writer — on x86-64 and arm64 a plain
 * load/add/store, no lock prefix, no fence — so the hot path takes no lock
 * and no read-modify-write atomic.  The main thread reads every shard with
 * relaxed loads and merges on demand (admin /stats, Prometheus, flush).
 *
 * Histograms record microseconds into a fixed log-linear bucket array
 * (admin/histogram.h): no allocation on record, mergeable by addition. */
#ifndef PF_STATS_H
#define PF_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin/histogram.h"

typedef uint32_t stat_id;

typedef enum stat_kind {
    STAT_COUNTER,
    STAT_GAUGE,
    STAT_HISTOGRAM,
} stat_kind;

typedef struct stats_store stats_store;

/* One worker's (or the main thread's) private values. */
typedef struct stats_shard {
    _Atomic uint64_t *counters;     /* [n_counters] */
    _Atomic int64_t *gauges;        /* [n_gauges] */
    hist_t *hists;                  /* [n_hists]; buckets written by the owner only */
} stats_shard;

stats_store *stats_store_new(void);
void stats_store_free(stats_store *st);

/* Registration (main thread, before any shard is created).  Registering an
 * existing name returns its id.  Names are Envoy's full dotted names, e.g.
 * "cluster.app.upstream_rq_total", "http.ingress_http.downstream_rq_time". */
stat_id stats_counter(stats_store *st, const char *name);
stat_id stats_gauge(stats_store *st, const char *name);
stat_id stats_histogram(stats_store *st, const char *name);
/* A counter that output (text, JSON, Prometheus) omits while it is zero —
 * Envoy creates such stats on first use (cluster.X.upstream_rq_503); we
 * register them up front so workers never register names. */
stat_id stats_counter_lazy(stats_store *st, const char *name);
/* True for a lazy counter that is still zero: every output skips it. */
bool stats_hidden(const stats_store *st, stat_kind kind, stat_id id);

/* Creates a zeroed shard for one thread; shards stay valid until
 * stats_store_free().  Returns NULL on allocation failure. */
stats_shard *stats_shard_new(stats_store *st);

/* ---- recording: owner thread only ---- */

static inline void stats_inc(stats_shard *sh, stat_id id)
{
    _Atomic uint64_t *c = &sh->counters[id];
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static inline void stats_add(stats_shard *sh, stat_id id, uint64_t n)
{
    _Atomic uint64_t *c = &sh->counters[id];
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Gauges are per-shard deltas; the merged value is the sum over shards. */
static inline void stats_gauge_add(stats_shard *sh, stat_id id, int64_t delta)
{
    _Atomic int64_t *g = &sh->gauges[id];
    atomic_store_explicit(g, atomic_load_explicit(g, memory_order_relaxed) + delta,
                          memory_order_relaxed);
}

/* Value in microseconds (Envoy prints histograms in milliseconds). */
static inline void stats_record(stats_shard *sh, stat_id id, uint64_t us)
{
    hist_record(&sh->hists[id], us);
}

/* ---- reading: main thread ---- */

/* Sets a gauge on the main thread's own shard (e.g. server.uptime). */
void stats_gauge_set(stats_store *st, stat_id id, int64_t value);
stats_shard *stats_main_shard(stats_store *st);

size_t stats_count(const stats_store *st, stat_kind kind);
const char *stats_name(const stats_store *st, stat_kind kind, stat_id id);
/* Merged values over every shard. */
uint64_t stats_counter_value(const stats_store *st, stat_id id);
int64_t stats_gauge_value(const stats_store *st, stat_id id);
/* Fills out with the merged cumulative histogram. */
void stats_hist_merge(const stats_store *st, stat_id id, hist_t *out);
/* True once the stat was written (for ?usedonly). */
bool stats_used(const stats_store *st, stat_kind kind, stat_id id);

/* Interval histograms: called by the main thread every flush interval
 * (stats_flush_interval, default 5 s); keeps the previous cumulative merge
 * so that interval = cumulative - previous. */
void stats_flush(stats_store *st);
/* The last completed interval's histogram. */
const hist_t *stats_hist_interval(const stats_store *st, stat_id id);

/* Text readouts (Envoy's TextReadout, e.g. cluster_manager.cds.version_text):
 * main thread only, registered at any time (workers never see them); the
 * value starts "" and is copied on set.  Output lists them before counters
 * and gauges (text and JSON; Prometheus omits them, as Envoy by default). */
stat_id stats_text(stats_store *st, const char *name);
void stats_text_set(stats_store *st, stat_id id, const char *value);
size_t stats_text_count(const stats_store *st);
const char *stats_text_name(const stats_store *st, stat_id id);
const char *stats_text_value(const stats_store *st, stat_id id);

/* /reset_counters: zeroes counters (not gauges, not histograms), as Envoy. */
void stats_reset_counters(stats_store *st);

#endif
