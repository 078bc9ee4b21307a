/* layered_runtime from the bootstrap: an ordered list of named layers.
 *
 * A static layer is Envoy's google.protobuf.Struct flattened to dotted keys
 * ("health_check.min_interval" -> "5"), every value kept as the string the
 * user wrote (fractional percents {numerator, denominator} are rendered as
 * "{\"numerator\":N,\"denominator\":\"HUNDRED\"}").  The admin layer holds
 * no config; it marks where /runtime_modify overrides sit in the order.
 * Without layered_runtime the loader leaves cfg_bootstrap.runtime NULL and
 * the run time uses Envoy's default: [base (empty static), admin]. */
#ifndef PF_RUNTIME_CONFIG_H
#define PF_RUNTIME_CONFIG_H

#include <stddef.h>

typedef struct cfg_runtime_kv {
    char *key;                  /* owned */
    char *value;                /* owned */
} cfg_runtime_kv;

typedef enum cfg_runtime_layer_kind {
    CFG_RUNTIME_STATIC,
    CFG_RUNTIME_ADMIN,
} cfg_runtime_layer_kind;

typedef struct cfg_runtime_layer {
    char *name;                 /* owned; "" when not given */
    cfg_runtime_layer_kind kind;
    cfg_runtime_kv *entries;    /* CFG_RUNTIME_STATIC: sorted by key, unique; owned */
    size_t n_entries;
} cfg_runtime_layer;

typedef struct cfg_runtime {
    cfg_runtime_layer *layers;  /* in bootstrap order: later layers override */
    size_t n_layers;
} cfg_runtime;

/* Frees rt and everything it owns; NULL is fine. */
void cfg_runtime_free(cfg_runtime *rt);

#endif
