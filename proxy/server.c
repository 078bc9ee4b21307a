#include "proxy/server.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "proxy/cluster.h"
#include "proxy/cluster_mgr.h"
#include "proxy/dns.h"
#include "proxy/log.h"
#include "proxy/server_state.h"
#include "proxy/server_stats.h"
#include "proxy/tls.h"
#include "proxy/worker.h"
#include "proxy/xds_fs.h"

static void post_all(pf_server *s, pf_msg_kind kind)
{
    for (int i = 0; i < s->workers_started; i++) {
        pf_msg *m = calloc(1, sizeof *m);
        if (!m)
            continue;
        m->kind = kind;
        pf_worker_post(&s->workers[i], m);
    }
}

static void on_drain_timeout(uv_timer_t *t)
{
    pf_server *s = t->data;
    pf_info("drain time over: closing remaining connections");
    post_all(s, PF_MSG_STOP);
}

void pf_server_begin_drain(pf_server *s)
{
    if (s->draining)
        return;
    s->draining = true;
    pf_info("draining: listeners closed, waiting up to %llums for in-flight requests",
            (unsigned long long)s->opts->drain_time_ms);
    post_all(s, PF_MSG_DRAIN);
    uv_timer_start(&s->drain_timer, on_drain_timeout, s->opts->drain_time_ms, 0);
    if (s->workers_started == 0)
        uv_async_send(&s->worker_exit);
}

static void on_signal(uv_signal_t *h, int signum)
{
    pf_server *s = h->data;
    if (s->draining) {
        pf_info("signal %d while draining: stopping now", signum);
        post_all(s, PF_MSG_STOP);
        return;
    }
    pf_server_begin_drain(s);
}

void pf_server_worker_exited(pf_server *s)
{
    atomic_fetch_add(&s->workers_exited, 1);
    uv_async_send(&s->worker_exit);
}

/* Every worker is gone: close the main loop's handles so uv_run returns. */
static void on_worker_exit(uv_async_t *h)
{
    pf_server *s = h->data;
    if (atomic_load(&s->workers_exited) < s->workers_started)
        return;
    for (size_t i = 0; s->dns && i < s->cfg->n_clusters; i++)
        pf_dns_stop(s->dns[i]);
    pf_cluster_mgr_stop(s);
    pf_xds_fs_stop(s);
    pf_admin_stop(s->admin);
    s->admin = NULL;
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->drain_timer, NULL);
    uv_close((uv_handle_t *)&s->worker_exit, NULL);
    pf_server_stats_stop(s);
}

static int start_clusters(pf_server *s)
{
    const cfg_bootstrap *cfg = s->cfg;
    s->hostsets = calloc(cfg->n_clusters + 1, sizeof *s->hostsets);
    s->dns = calloc(cfg->n_clusters + 1, sizeof *s->dns);
    if (!s->hostsets || !s->dns)
        return UV_ENOMEM;
    int rc = pf_cluster_mgr_init(s);
    if (rc)
        return rc;
    for (size_t i = 0; i < cfg->n_clusters; i++) {
        const cfg_cluster *c = &cfg->clusters[i];
        if (c->type == CFG_CLUSTER_STATIC) {
            pf_hostset *hs = pf_hostset_from_static(c);
            if (!hs)
                return UV_ENOMEM;
            pf_cluster_mgr_set_members(s, i, hs);
        } else if (!(s->dns[i] = pf_dns_start(s, i))) {
            return UV_ENOMEM;
        }
    }
    /* Like Envoy's init manager: listeners open once every cluster has
     * its first host set and, with health checks, its first round of them. */
    while (s->dns_pending > 0 || pf_cluster_mgr_initializing(s))
        uv_run(&s->loop, UV_RUN_ONCE);
    return 0;
}

int pf_server_run(const pf_server_opts *opts, cfg_bootstrap *cfg)
{
    pf_server *s = calloc(1, sizeof *s);
    if (!s)
        return 1;
    s->opts = opts;
    s->cfg = cfg;
    s->concurrency = opts->concurrency;
    s->start_time = uv_hrtime();
    int exit_code = 0;
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&s->loop);
    uv_sem_init(&s->start_sem, 0);
    uv_async_init(&s->loop, &s->worker_exit, on_worker_exit);
    s->worker_exit.data = s;
    uv_timer_init(&s->loop, &s->drain_timer);
    s->drain_timer.data = s;
    uv_signal_init(&s->loop, &s->sigterm);
    uv_signal_init(&s->loop, &s->sigint);
    s->sigterm.data = s->sigint.data = s;
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_start(&s->sigint, on_signal, SIGINT);

    int rc = pf_server_stats_init(s);
    /* TLS contexts (proxy/tls.h): built once here, shared read-only by the workers. */
    struct pf_tls_store *tls = NULL;
    char tls_err[512];
    if (rc == 0 && pf_tls_store_new(cfg, &tls, tls_err, sizeof tls_err) != 0) {
        pf_error("tls: %s", tls_err);
        rc = UV_EINVAL;
    }
    if (rc == 0)
        rc = start_clusters(s);
    if (rc == 0)
        rc = pf_xds_fs_start(s);
    if (rc == 0 && cfg->has_admin) {
        rc = pf_admin_start(s, &cfg->admin, &s->admin);
        if (rc)
            pf_error("admin address %s:%u: %s", cfg->admin.address, cfg->admin.port,
                     uv_strerror(rc));
    }
    s->workers = calloc((size_t)s->concurrency, sizeof *s->workers);
    if (!s->workers)
        rc = UV_ENOMEM;
    for (int i = 0; rc == 0 && i < s->concurrency; i++) {
        rc = pf_worker_start(&s->workers[i], s, i);
        if (s->workers[i].thread_started)
            s->workers_started = i + 1;
    }
    if (rc) {
        exit_code = 1;
        pf_server_begin_drain(s);
        post_all(s, PF_MSG_STOP);
    } else {
        pf_info("pilotfish %s started: %zu listener(s), %zu cluster(s), %d worker(s)", PF_VERSION,
                cfg->n_listeners, cfg->n_clusters, s->concurrency);
    }
    uv_run(&s->loop, UV_RUN_DEFAULT);

    for (int i = 0; i < s->workers_started; i++)
        pf_worker_join(&s->workers[i]);
    for (size_t i = 0; s->hostsets && i < cfg->n_clusters; i++)
        pf_hostset_unref(s->hostsets[i]);
    pf_cluster_mgr_free(s);
    pf_xds_fs_free(s);
    pf_server_state_free(s);
    pf_server_stats_free(s);
    pf_tls_store_free(tls);
    uv_loop_close(&s->loop);
    uv_sem_destroy(&s->start_sem);
    free(s->hostsets);
    free(s->dns);
    free(s->workers);
    free(s);
    if (!exit_code)
        pf_info("exiting");
    return exit_code;
}
