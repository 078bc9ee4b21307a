/* Helpers shared by the config_*.c files: error reporting with a dotted field
 * path, field-set checking and typed scalar getters over yn_node trees. */
#ifndef PF_CONFIG_INTERNAL_H
#define PF_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "config/yaml_node.h"

typedef struct cfg_ctx {
    char *err;
    size_t errlen;
    char path[768];
    size_t plen;
    cfg_bootstrap *b;          /* being built; clusters are parsed first */
    const struct cfg_route_config *route_config;   /* being parsed: its named
                                                      cluster_specifier_plugins */
} cfg_ctx;

/* Format "file:line:col: path: msg" for node n into c->err; returns -EINVAL. */
int cfg_err(cfg_ctx *c, const yn_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Path stack: push returns a mark to pop back to. */
size_t cfg_push(cfg_ctx *c, const char *field);
size_t cfg_push_idx(cfg_ctx *c, size_t i);
void cfg_pop(cfg_ctx *c, size_t mark);

/* Field sets, NULL-terminated lists.
 * handled:     fields this loader reads (the caller looks them up)
 * ignored:     harmless Envoy fields accepted without effect
 * unsupported: real Envoy fields that would change behaviour -> "not supported yet"
 * Anything else is "unknown field".  Also checks that n is a map. */
typedef struct cfg_fields {
    const char *const *handled;
    const char *const *ignored;
    const char *const *unsupported;
} cfg_fields;

int cfg_check_map(cfg_ctx *c, const yn_node *n, const cfg_fields *f);

/* Value of a field, NULL when absent or YAML null. */
const yn_node *cfg_get(const yn_node *map, const char *key);

/* The key node for a field (for locations), or the map itself. */
const yn_node *cfg_key_node(const yn_node *map, const char *key);

/* Getters: field is looked up in map; path is pushed while checking.
 * When absent: required -> error "missing required field", else *out keeps
 * its default (strings: NULL). */
int cfg_get_str(cfg_ctx *c, const yn_node *map, const char *key, bool required,
                char **out);
int cfg_get_u32(cfg_ctx *c, const yn_node *map, const char *key, bool required,
                uint32_t lo, uint32_t hi, uint32_t *out);
int cfg_get_bool(cfg_ctx *c, const yn_node *map, const char *key, bool *out);
int cfg_get_duration(cfg_ctx *c, const yn_node *map, const char *key,
                     uint64_t *out_ms);
/* Enums: `known` are all values Envoy accepts, `supported` the ones we do;
 * *out is the index into `supported`. */
int cfg_get_enum(cfg_ctx *c, const yn_node *map, const char *key,
                 const char *const *known, const char *const *supported, int *out);

/* typed_config["@type"] (in map tc) must be `want`. */
int cfg_check_type_url(cfg_ctx *c, const yn_node *tc, const char *want);

/* At most one of keys[0..n) may be set in map; *found is its index or -1.
 * required: none set is an error naming them all. */
int cfg_one_of(cfg_ctx *c, const yn_node *map, const char *const *keys, int n, bool required,
               int *found);

/* Scalar conversions on a node (path already pushed by the caller). */
int cfg_node_str(cfg_ctx *c, const yn_node *n, char **out);
int cfg_node_u64(cfg_ctx *c, const yn_node *n, uint64_t *out);
int cfg_node_duration(cfg_ctx *c, const yn_node *n, uint64_t *out_ms);

/* Require a sequence (or null -> empty); returns 0 and sets *n_out. */
int cfg_expect_seq(cfg_ctx *c, const yn_node *n, size_t *n_out);

/* socket_address inside an Address map (the "address" field value). */
int cfg_parse_address(cfg_ctx *c, const yn_node *addr, bool need_ip,
                      cfg_socket_address *out);
bool cfg_is_ip_literal(const char *s);

/* Reads a whole file (at most 64 MiB) into *buf (caller frees).  Returns 0
 * or a negative errno (with "path:0:0: (file): ..." in err when given). */
int cfg_read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen);

/* Sections. */
int cfg_parse_clusters(cfg_ctx *c, const yn_node *seq);
/* One envoy.config.cluster.v3.Cluster map into *cl (zeroed by the caller;
 * freed with cfg_free_cluster even on error). */
int cfg_parse_cluster(cfg_ctx *c, const yn_node *n, cfg_cluster *cl);
/* One envoy.config.listener.v3.Listener map (idx names an unnamed one) into
 * *l (zeroed by the caller; freed with cfg_free_listener even on error). */
int cfg_parse_listener(cfg_ctx *c, const yn_node *n, size_t idx, cfg_listener *l);
void cfg_free_listener(cfg_listener *l);
/* config_dynamic.c: node and dynamic_resources (the ConfigSources), then the
 * CDS file's clusters (after the static ones) and the LDS file's listeners
 * (after the static ones); root is the bootstrap map. */
int cfg_parse_dynamic(cfg_ctx *c, const yn_node *root);
int cfg_load_cds(cfg_ctx *c, const yn_node *root);
int cfg_load_lds(cfg_ctx *c, const yn_node *root);
struct cfg_retry_policy;
/* route.retry_policy (config/config_retry.c); *out is owned by the route. */
int cfg_parse_retry_policy(cfg_ctx *c, const yn_node *n, struct cfg_retry_policy **out);
/* A cluster's HTTP protocol to its hosts (config/config_http_protocol.c). */
int cfg_parse_cluster_http_protocol(cfg_ctx *c, const yn_node *cluster, cfg_cluster *cl);
/* common_lb_config, *_lb_config, circuit_breakers, outlier_detection into cl->lb
 * (config/config_lb.c), and health_checks (config/config_health.c). */
int cfg_parse_cluster_lb(cfg_ctx *c, const yn_node *cluster, cfg_cluster *cl);
int cfg_parse_health_checks(cfg_ctx *c, const yn_node *cluster, cfg_cluster *cl);
int cfg_parse_route_config(cfg_ctx *c, const yn_node *rc, cfg_route_config *out);
void cfg_free_route_config(cfg_route_config *rc);
void cfg_free_cluster(cfg_cluster *cl);
/* config_stats.c: stats_flush_interval, stats_config (always fills defaults). */
int cfg_parse_stats(cfg_ctx *c, const yn_node *root);
void cfg_free_stats(cfg_stats_config *s);
/* config_runtime.c: layered_runtime -> c->b->runtime. */
int cfg_parse_runtime(cfg_ctx *c, const yn_node *root);
/* config_tls.c (types in config/tls_config.h).  transport_socket nodes;
 * *out stays NULL for raw_buffer and is set (owned by the caller, freed
 * even on error) otherwise. */
struct cfg_tls_server;
struct cfg_tls_client;
struct cfg_filter_chain_match;
int cfg_parse_downstream_tls(cfg_ctx *c, const yn_node *ts, struct cfg_tls_server **out);
int cfg_parse_upstream_tls(cfg_ctx *c, const yn_node *ts, struct cfg_tls_client **out);
int cfg_parse_filter_chain_match(cfg_ctx *c, const yn_node *n,
                                 struct cfg_filter_chain_match *out);
/* listener_filters: sets *tls_inspector when envoy.filters.listener.tls_inspector is listed. */
int cfg_parse_listener_filters(cfg_ctx *c, const yn_node *seq, bool *tls_inspector);

#endif
