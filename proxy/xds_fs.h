/* Filesystem xDS (dynamic_resources with path_config_source / path) on the
 * main thread: watches the CDS and LDS files and applies what can change
 * while running.
 *
 * As Envoy, an update is a file moved onto the watched path (`mv` is atomic;
 * writing the file in place is not seen), or, with watched_directory, any
 * entry moved into that directory.  CDS: changed endpoints (load_assignment)
 * and dns_refresh_rate of existing clusters become new host sets through
 * proxy/cluster_mgr.c; anything else (clusters added or removed, other
 * fields) is rejected with a warning naming it, as is a file that does not
 * parse (the error located in the file): the running config stays.  LDS:
 * an unchanged document is accepted; listener changes need a restart (the
 * workers hold the listener config without snapshots) and are rejected.
 * Stats: cluster_manager.cds.* and listener_manager.lds.* (update_attempt,
 * update_success, update_failure, update_rejected, config_reload). */
#ifndef PF_XDS_FS_H
#define PF_XDS_FS_H

struct pf_server;

/* After the clusters started, before the workers (registers stats).
 * Nothing to do without dynamic_resources.  Returns 0 or a UV error. */
int pf_xds_fs_start(struct pf_server *srv);
/* Closes the watches (the main loop is ending). */
void pf_xds_fs_stop(struct pf_server *srv);
/* After the loop ended. */
void pf_xds_fs_free(struct pf_server *srv);

#endif
