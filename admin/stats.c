/* Stats store: registry of names, per-thread shards, merge on read.
 *
 * Registration and every read run on the main thread; workers only write
 * their own shard (stats.h).  The main thread's shard is created with the
 * store and grown with each registration — safe because only the main thread
 * ever touches it.  Worker shards are sized once at creation, so the first
 * stats_shard_new() freezes the registry: registering a new name after that
 * is a programming error and aborts (a worker could not see the new slot). */
#include "admin/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LD(p) atomic_load_explicit((p), memory_order_relaxed)
#define ST(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)

/* Names of one kind plus an open-addressing index for dedupe. */
typedef struct stats_reg {
    char **names;       /* owned, strdup'ed */
    size_t n, cap;
    uint32_t *slots;    /* id + 1, 0 = empty; nslots is a power of two */
    size_t nslots;
} stats_reg;

struct stats_store {
    stats_reg reg[3];
    stats_shard **shards;       /* owned; shards[0] is the main shard */
    size_t n_shards, cap_shards;
    bool frozen;                /* a worker shard exists */

    uint64_t *counter_base;     /* [n counters] merged value at last reset */
    bool *counter_lazy;         /* [n counters] hidden from output while zero */
    bool *gauge_used;           /* [n gauges] sticky: seen nonzero or set */

    /* Text readouts: main thread only, so registered at any time. */
    char **text_names, **text_values;   /* [n_text]; owned */
    size_t n_text;

    hist_t *hist_prev;          /* [n_flushed] cumulative at the last flush */
    hist_t *hist_interval;      /* [n_flushed] last completed interval */
    size_t n_flushed;
};

static const hist_t empty_hist;

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;            /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static bool reg_rehash(stats_reg *r, size_t nslots)
{
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return false;
    for (size_t id = 0; id < r->n; id++) {
        size_t i = name_hash(r->names[id]) & (nslots - 1);
        while (slots[i])
            i = (i + 1) & (nslots - 1);
        slots[i] = (uint32_t)id + 1;
    }
    free(r->slots);
    r->slots = slots;
    r->nslots = nslots;
    return true;
}

/* Returns the id of name, or -1 when absent. */
static int64_t reg_find(const stats_reg *r, const char *name)
{
    if (!r->nslots)
        return -1;
    for (size_t i = name_hash(name) & (r->nslots - 1); r->slots[i]; i = (i + 1) & (r->nslots - 1))
        if (strcmp(r->names[r->slots[i] - 1], name) == 0)
            return r->slots[i] - 1;
    return -1;
}

static void oom(void)
{
    fprintf(stderr, "pilotfish: stats: out of memory while registering stats\n");
    abort();
}

/* Grows the main shard's array for one kind to n entries (zeroing the new
 * tail); main thread only, so realloc under no reader is safe. */
static void *grow_zeroed(void *p, size_t old_n, size_t new_n, size_t elem)
{
    void *q = realloc(p, new_n * elem);
    if (!q)
        oom();
    memset((char *)q + old_n * elem, 0, (new_n - old_n) * elem);
    return q;
}

static stat_id reg_add(stats_store *st, stat_kind kind, const char *name)
{
    stats_reg *r = &st->reg[kind];
    int64_t found = reg_find(r, name);
    if (found >= 0)
        return (stat_id)found;
    if (st->frozen) {
        fprintf(stderr, "pilotfish: stats: '%s' registered after worker shards exist\n", name);
        abort();
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        char **names = realloc(r->names, cap * sizeof *names);
        if (!names)
            oom();
        r->names = names;
        r->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        oom();
    stat_id id = (stat_id)r->n;
    r->names[r->n++] = copy;
    if (r->n * 2 > r->nslots) {
        if (!reg_rehash(r, r->nslots ? r->nslots * 2 : 128))
            oom();
    } else {
        size_t i = name_hash(name) & (r->nslots - 1);
        while (r->slots[i])
            i = (i + 1) & (r->nslots - 1);
        r->slots[i] = id + 1;
    }

    stats_shard *m = st->shards[0];
    switch (kind) {
    case STAT_COUNTER:
        m->counters = grow_zeroed(m->counters, id, id + 1, sizeof *m->counters);
        st->counter_base = grow_zeroed(st->counter_base, id, id + 1, sizeof *st->counter_base);
        st->counter_lazy = grow_zeroed(st->counter_lazy, id, id + 1, sizeof *st->counter_lazy);
        break;
    case STAT_GAUGE:
        m->gauges = grow_zeroed(m->gauges, id, id + 1, sizeof *m->gauges);
        st->gauge_used = grow_zeroed(st->gauge_used, id, id + 1, sizeof *st->gauge_used);
        break;
    case STAT_HISTOGRAM:
        m->hists = grow_zeroed(m->hists, id, id + 1, sizeof *m->hists);
        break;
    }
    return id;
}

static void shard_free(stats_shard *sh)
{
    if (!sh)
        return;
    free(sh->counters);
    free(sh->gauges);
    free(sh->hists);
    free(sh);
}

stats_store *stats_store_new(void)
{
    stats_store *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->shards = calloc(4, sizeof *st->shards);
    if (!st->shards)
        goto fail_store;
    st->cap_shards = 4;
    st->shards[0] = calloc(1, sizeof(stats_shard));
    if (!st->shards[0])
        goto fail_shards;
    st->n_shards = 1;
    return st;

fail_shards:
    free(st->shards);
fail_store:
    free(st);
    return NULL;
}

void stats_store_free(stats_store *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_shards; i++)
        shard_free(st->shards[i]);
    free(st->shards);
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < st->reg[k].n; i++)
            free(st->reg[k].names[i]);
        free(st->reg[k].names);
        free(st->reg[k].slots);
    }
    for (size_t i = 0; i < st->n_text; i++) {
        free(st->text_names[i]);
        free(st->text_values[i]);
    }
    free(st->text_names);
    free(st->text_values);
    free(st->counter_base);
    free(st->counter_lazy);
    free(st->gauge_used);
    free(st->hist_prev);
    free(st->hist_interval);
    free(st);
}

stat_id stats_counter(stats_store *st, const char *name)
{
    return reg_add(st, STAT_COUNTER, name);
}

static uint64_t counter_raw(const stats_store *st, stat_id id);

stat_id stats_counter_lazy(stats_store *st, const char *name)
{
    stat_id id = reg_add(st, STAT_COUNTER, name);
    st->counter_lazy[id] = true;
    return id;
}

bool stats_hidden(const stats_store *st, stat_kind kind, stat_id id)
{
    return kind == STAT_COUNTER && st->counter_lazy[id] && counter_raw(st, id) == 0;
}

stat_id stats_gauge(stats_store *st, const char *name)
{
    return reg_add(st, STAT_GAUGE, name);
}

stat_id stats_histogram(stats_store *st, const char *name)
{
    return reg_add(st, STAT_HISTOGRAM, name);
}

stats_shard *stats_shard_new(stats_store *st)
{
    if (st->n_shards == st->cap_shards) {
        stats_shard **v = realloc(st->shards, st->cap_shards * 2 * sizeof *v);
        if (!v)
            return NULL;
        st->shards = v;
        st->cap_shards *= 2;
    }
    stats_shard *sh = calloc(1, sizeof *sh);
    if (!sh)
        return NULL;
    /* +1 keeps calloc from returning NULL for an empty kind. */
    sh->counters = calloc(st->reg[STAT_COUNTER].n + 1, sizeof *sh->counters);
    sh->gauges = calloc(st->reg[STAT_GAUGE].n + 1, sizeof *sh->gauges);
    sh->hists = calloc(st->reg[STAT_HISTOGRAM].n + 1, sizeof *sh->hists);
    if (!sh->counters || !sh->gauges || !sh->hists) {
        shard_free(sh);
        return NULL;
    }
    st->shards[st->n_shards++] = sh;
    st->frozen = true;
    return sh;
}

stats_shard *stats_main_shard(stats_store *st)
{
    return st->shards[0];
}

void stats_gauge_set(stats_store *st, stat_id id, int64_t value)
{
    ST(&st->shards[0]->gauges[id], value);
    st->gauge_used[id] = true;          /* Envoy: set() marks used, even to 0 */
}

size_t stats_count(const stats_store *st, stat_kind kind)
{
    return st->reg[kind].n;
}

const char *stats_name(const stats_store *st, stat_kind kind, stat_id id)
{
    return id < st->reg[kind].n ? st->reg[kind].names[id] : NULL;
}

static uint64_t counter_raw(const stats_store *st, stat_id id)
{
    uint64_t v = 0;
    for (size_t i = 0; i < st->n_shards; i++)
        v += LD(&st->shards[i]->counters[id]);
    return v;
}

uint64_t stats_counter_value(const stats_store *st, stat_id id)
{
    uint64_t v = counter_raw(st, id), base = st->counter_base[id];
    return v > base ? v - base : 0;
}

int64_t stats_gauge_value(const stats_store *st, stat_id id)
{
    /* Sum in unsigned arithmetic: per-shard deltas may wrap individually
     * (+1 on one worker, -1 on another) while the total is exact. */
    uint64_t v = 0;
    for (size_t i = 0; i < st->n_shards; i++)
        v += (uint64_t)LD(&st->shards[i]->gauges[id]);
    if (v)
        st->gauge_used[id] = true;      /* pointee is not const: sticky flag */
    return (int64_t)v;
}

void stats_hist_merge(const stats_store *st, stat_id id, hist_t *out)
{
    hist_copy(out, &st->shards[0]->hists[id]);
    for (size_t i = 1; i < st->n_shards; i++)
        hist_add(out, &st->shards[i]->hists[id]);
}

static uint64_t hist_count_merged(const stats_store *st, stat_id id)
{
    uint64_t n = 0;
    for (size_t i = 0; i < st->n_shards; i++)
        n += hist_count(&st->shards[i]->hists[id]);
    return n;
}

bool stats_used(const stats_store *st, stat_kind kind, stat_id id)
{
    switch (kind) {
    case STAT_COUNTER:
        return counter_raw(st, id) != 0;    /* stays used after a reset, as Envoy */
    case STAT_GAUGE:
        stats_gauge_value(st, id);
        return st->gauge_used[id];
    case STAT_HISTOGRAM:
        return hist_count_merged(st, id) != 0;
    }
    return false;
}

void stats_flush(stats_store *st)
{
    size_t n = st->reg[STAT_HISTOGRAM].n;
    if (n > st->n_flushed) {
        /* Histograms registered since the last flush start from zero. */
        hist_t *p = realloc(st->hist_prev, n * sizeof *p);
        if (!p)
            return;
        st->hist_prev = p;
        hist_t *iv = realloc(st->hist_interval, n * sizeof *iv);
        if (!iv)
            return;
        st->hist_interval = iv;
        memset(p + st->n_flushed, 0, (n - st->n_flushed) * sizeof *p);
        memset(iv + st->n_flushed, 0, (n - st->n_flushed) * sizeof *iv);
        st->n_flushed = n;
    }
    hist_t *cur = malloc(sizeof *cur);
    if (!cur)
        return;
    for (stat_id id = 0; id < n; id++) {
        stats_hist_merge(st, id, cur);
        hist_sub(&st->hist_interval[id], cur, &st->hist_prev[id]);
        hist_copy(&st->hist_prev[id], cur);
    }
    free(cur);
    for (stat_id id = 0; id < st->reg[STAT_GAUGE].n; id++)
        stats_gauge_value(st, id);          /* refresh sticky used flags */
}

const hist_t *stats_hist_interval(const stats_store *st, stat_id id)
{
    return id < st->n_flushed ? &st->hist_interval[id] : &empty_hist;
}

void stats_reset_counters(stats_store *st)
{
    for (stat_id id = 0; id < st->reg[STAT_COUNTER].n; id++)
        st->counter_base[id] = counter_raw(st, id);
}

stat_id stats_text(stats_store *st, const char *name)
{
    for (size_t i = 0; i < st->n_text; i++)
        if (strcmp(st->text_names[i], name) == 0)
            return (stat_id)i;
    char **n = realloc(st->text_names, (st->n_text + 1) * sizeof *n);
    if (n)
        st->text_names = n;
    char **v = realloc(st->text_values, (st->n_text + 1) * sizeof *v);
    if (v)
        st->text_values = v;
    char *copy = strdup(name), *empty = strdup("");
    if (!n || !v || !copy || !empty)
        oom();
    st->text_names[st->n_text] = copy;
    st->text_values[st->n_text] = empty;
    return (stat_id)st->n_text++;
}

void stats_text_set(stats_store *st, stat_id id, const char *value)
{
    char *copy = strdup(value ? value : "");
    if (!copy)
        return;             /* keeps the old value */
    free(st->text_values[id]);
    st->text_values[id] = copy;
}

size_t stats_text_count(const stats_store *st)
{
    return st->n_text;
}

const char *stats_text_name(const stats_store *st, stat_id id)
{
    return st->text_names[id];
}

const char *stats_text_value(const stats_store *st, stat_id id)
{
    return st->text_values[id];
}
