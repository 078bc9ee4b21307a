/* Bootstrap `node` and `dynamic_resources` with filesystem config sources
 * (envoy.config.bootstrap.v3.Bootstrap.DynamicResources, ConfigSource with
 * path_config_source or the older plain `path`).
 *
 * The CDS / LDS files hold a DiscoveryResponse-shaped document
 * (`version_info`, `resources: [{"@type": ..., ...}]`), YAML or JSON by file
 * extension.  At load time their resources are parsed by the same code as
 * static_resources and appended to cfg_bootstrap.clusters / listeners (static
 * ones first), so the rest of the proxy sees one list.  The parsed documents
 * are kept (cfg_xds_source.doc) so the main thread can tell what an update
 * changed (proxy/xds_fs.c). */
#ifndef PF_DYNAMIC_CONFIG_H
#define PF_DYNAMIC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

struct yn_node;

typedef struct cfg_xds_source {
    bool set;                   /* this ConfigSource was given */
    char *path;                 /* the file; owned */
    char *watched_dir;          /* path_config_source.watched_directory.path; owned; NULL:
                                   watch the file's directory for moves onto the file */
    char *version_info;         /* of the document in use; owned; NULL when absent */
    struct yn_node *doc;        /* the document in use; owned (main thread only) */
    size_t first, n;            /* its resources in cfg_bootstrap.clusters / listeners */
} cfg_xds_source;

typedef struct cfg_dynamic {
    char *node_id, *node_cluster;   /* node.id / node.cluster; owned; NULL when absent */
    cfg_xds_source cds, lds;
} cfg_dynamic;

void cfg_dynamic_free(cfg_dynamic *d);

/* A re-read CDS file (proxy/xds_fs.c): its document and clusters, parsed
 * against the live bootstrap.  Owned by the caller; cfg_cds_update_free(). */
typedef struct cfg_cds_update {
    struct yn_node *doc;
    char *version_info;
    cfg_cluster *clusters;
    size_t n_clusters;
    /* After cfg_cds_diff: for each live dynamic cluster (index - cds.first),
     * the update's cluster index whose endpoints replace it, or SIZE_MAX
     * when unchanged. */
    size_t *changed;
} cfg_cds_update;

/* Reads and parses the CDS file of live.  Returns 0, or a negative errno
 * with "file:line:col: path: message" in err (the old config stays). */
int cfg_cds_read(const cfg_bootstrap *live, cfg_cds_update *out, char *err, size_t errlen);
/* Compares an update with the live document.  Returns 0 when every change
 * can be applied while running (only load_assignment / dns_refresh_rate of
 * existing clusters; fills out->changed), or -EPERM with what would need a
 * restart in msg ("cluster 'x' added", "cluster 'x': field 'lb_policy'
 * changed"). */
int cfg_cds_diff(const cfg_bootstrap *live, cfg_cds_update *upd, char *msg, size_t msglen);
/* Moves upd's endpoints of every changed cluster into live (swapping, so
 * freeing upd frees the old ones) and makes upd's document the live one.
 * Main thread: workers never read a cluster's endpoint fields (see
 * cfg_cluster).  Returns the number of clusters changed. */
size_t cfg_cds_apply(cfg_bootstrap *live, cfg_cds_update *upd);
void cfg_cds_update_free(cfg_cds_update *u);

/* Re-reads the LDS file of live, validates it (routes against the live
 * clusters) and compares it with the live document.  Returns 0 when
 * nothing changed, -EPERM with what changed in msg (listener changes are
 * not applied while running yet), or another negative errno with the
 * located error in msg.  *version_out (owned by the caller) gets the new
 * version_info on 0. */
int cfg_lds_check(const cfg_bootstrap *live, char **version_out, char *msg, size_t msglen);

#endif
