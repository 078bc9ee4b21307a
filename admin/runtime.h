/* The runtime (Envoy's layered runtime) at run time.
 *
 * A pf_runtime_snapshot is immutable and reference-counted: the main thread
 * builds one from the configured layers (static layers from the bootstrap,
 * the admin layer from /runtime_modify) and posts a reference to every
 * worker (PF_MSG_RUNTIME), which swaps its pointer and unrefs the old one.
 * Readers never lock.  Values keep the raw string; numeric, boolean and
 * fractional-percent interpretations are parsed once at build time, with
 * Envoy's rules (SnapshotImpl::resolveEntryType). */
#ifndef PF_RUNTIME_H
#define PF_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg_runtime;

typedef struct runtime_entry {
    char *key, *value;              /* owned by the snapshot */
    bool has_uint, has_double, has_bool, has_fraction;
    uint64_t uint_value;            /* non-negative numbers (truncated), as Envoy */
    double double_value;
    bool bool_value;
    uint32_t numerator, denominator;  /* has_fraction: denominator 100, 10000 or 1000000 */
} runtime_entry;

typedef struct runtime_layer {
    char *name;
    bool is_admin;
    runtime_entry *entries;         /* sorted by key */
    size_t n;
} runtime_layer;

typedef struct pf_runtime_snapshot {
    _Atomic int refs;
    runtime_layer *layers;          /* in override order: later wins */
    size_t n_layers;
    runtime_entry *entries;         /* merged final values, sorted by key */
    size_t n;
} pf_runtime_snapshot;

pf_runtime_snapshot *runtime_snapshot_ref(pf_runtime_snapshot *s);
/* Drops one reference; the last frees it.  NULL is fine.  Any thread. */
void runtime_snapshot_unref(pf_runtime_snapshot *s);

/* Lookups (NULL snapshot: everything absent). */
const runtime_entry *runtime_find(const pf_runtime_snapshot *s, const char *key);
const char *runtime_get(const pf_runtime_snapshot *s, const char *key);
uint64_t runtime_get_uint(const pf_runtime_snapshot *s, const char *key, uint64_t def);
double runtime_get_double(const pf_runtime_snapshot *s, const char *key, double def);
bool runtime_get_bool(const pf_runtime_snapshot *s, const char *key, bool def);
/* The key as a fractional percent: a {numerator, denominator} value, or an
 * integer read as percent (denominator 100); otherwise the default. */
void runtime_get_fraction(const pf_runtime_snapshot *s, const char *key, uint32_t def_num,
                          uint32_t def_den, uint32_t *num, uint32_t *den);
/* Envoy's featureEnabled(key, default_percent 0..100, random):
 * random % 100 < min(get_uint(key, default), 100). */
bool runtime_feature_enabled(const pf_runtime_snapshot *s, const char *key, uint64_t def_pct,
                             uint64_t random);
/* Envoy's featureEnabled(key, FractionalPercent default, random): integer
 * values above 100 are always enabled; else random % den < num. */
bool runtime_fraction_enabled(const pf_runtime_snapshot *s, const char *key, uint32_t def_num,
                              uint32_t def_den, uint64_t random);

/* Parses a raw value into e (key/value untouched). */
void runtime_entry_resolve(runtime_entry *e);

/* ---- main thread: the layers and the current snapshot ---- */

typedef struct runtime_loader runtime_loader;

/* cfg NULL: Envoy's default layers [base (empty static), admin].  Copies
 * what it needs from cfg.  Returns NULL on allocation failure. */
runtime_loader *runtime_loader_new(const struct cfg_runtime *cfg);
void runtime_loader_free(runtime_loader *l);
/* The current snapshot (borrowed: ref it to keep it). */
pf_runtime_snapshot *runtime_loader_snapshot(runtime_loader *l);
/* Sets keys[i]=values[i] in the admin layer ("" removes the key) and builds
 * a new snapshot.  Returns 0, -ENOENT when there is no admin layer (err
 * says "No admin layer specified"), or -ENOMEM. */
int runtime_loader_merge(runtime_loader *l, const char *const *keys,
                         const char *const *values, size_t n, char *err, size_t errlen);

#endif
