/* Route metadata (envoy.config.core.v3.Metadata): filter_metadata is kept as
 * a YAML subtree (a map from filter name to a Struct) for the filters that
 * read it -- the Lua filter's handle:metadata().  Built by
 * config/config_metadata.c; owned by the route, immutable after load. */
#ifndef PF_METADATA_CONFIG_H
#define PF_METADATA_CONFIG_H

struct cfg_ctx;
struct yn_node;

/* map.metadata (absent: *out stays NULL): checks its shape and stores a
 * deep copy of metadata.filter_metadata in *out (free with yn_free). */
int cfg_parse_metadata(struct cfg_ctx *c, const struct yn_node *map, struct yn_node **out);

/* The Struct of filter_metadata (may be NULL) for key, or NULL. */
const struct yn_node *cfg_metadata_entry(const struct yn_node *filter_metadata,
                                         const char *key);

#endif
