/* The main thread: starts workers, resolves DNS clusters, serves admin,
 * handles signals and the drain sequence.  It never touches a worker's
 * connections; it talks to workers only through pf_worker_post(). */
#ifndef PF_SERVER_H
#define PF_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"

struct pf_worker;
struct pf_hostset;
struct pf_admin;

typedef struct pf_server_opts {
    const char *config_path;
    const char *config_yaml;
    int concurrency;
    uint64_t drain_time_ms;
} pf_server_opts;

typedef struct pf_server {
    uv_loop_t loop;
    const pf_server_opts *opts;
    cfg_bootstrap *cfg;
    int concurrency;
    struct pf_worker *workers;
    struct pf_hostset **hostsets;   /* current host set per cluster (one reference each) */
    struct pf_dns_cluster **dns;    /* one per cluster; NULL for STATIC */
    int dns_pending;                /* initial resolutions still running */
    uv_signal_t sigterm, sigint;
    uv_timer_t drain_timer;
    uv_async_t worker_exit;
    uv_sem_t start_sem;             /* a starting worker posts once bound */
    atomic_int workers_exited;
    int workers_started;
    atomic_bool draining;           /* written by the main thread; read by workers (Lua extension) */
    struct pf_admin *admin;
    uint64_t start_time;
    struct stats_store *stats;      /* created at start-up; owned */
    struct pf_proxy_stats *ps;      /* data-path stat ids; owned */
    struct pf_host_table **host_tables; /* per cluster (proxy/host_stats.h); owned */
    uv_timer_t stats_timer;         /* stats_flush_interval */
    atomic_bool hc_failed;          /* admin /healthcheck/fail (proxy/server_state.h); read by workers */
    struct runtime_loader *runtime; /* layers + current snapshot; main thread; owned */
    struct pf_cluster_mgr *cm;      /* host health, publishing, breakers (proxy/cluster_mgr.h); owned */
    struct pf_xds_fs *xds;          /* filesystem xDS watches (proxy/xds_fs.h); owned; NULL: none */
} pf_server;

/* Runs the server until it has drained and stopped.  Returns the exit code. */
int pf_server_run(const pf_server_opts *opts, cfg_bootstrap *cfg);
/* Called by a worker thread as its last act. */
void pf_server_worker_exited(pf_server *s);
/* Begins the graceful drain (signals, admin /quitquitquit). */
void pf_server_begin_drain(pf_server *s);

#endif
