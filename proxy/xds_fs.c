/* Filesystem xDS watches and updates: see proxy/xds_fs.h. */
#include "proxy/xds_fs.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "admin/stats.h"
#include "config/dynamic_config.h"
#include "proxy/cluster_mgr.h"
#include "proxy/log.h"
#include "proxy/server.h"

typedef struct xds_stats {
    stat_id attempt, success, failure, rejected, reload;
    stat_id version_text;       /* text readout: version_info of the document in use */
} xds_stats;

typedef struct xds_watch {
    pf_server *srv;
    const char *api;            /* "cds" / "lds" (log prefix) */
    void (*reload)(struct xds_watch *w);
    char *dir;                  /* watched directory; owned */
    char *base;                 /* the file's name in dir; owned; NULL: any entry */
    uv_fs_event_t ev;
    uv_timer_t batch;           /* one reload per batch of events */
    bool open;
    xds_stats st;
} xds_watch;

struct pf_xds_fs {
    xds_watch cds, lds;
};

static void count(pf_server *srv, stat_id id)
{
    stats_inc(stats_main_shard(srv->stats), id);
}

static void reload_cds(xds_watch *w)
{
    pf_server *srv = w->srv;
    cfg_bootstrap *cfg = srv->cfg;
    const char *path = cfg->dynamic->cds.path;
    char err[CFG_ERR_MAX];
    cfg_cds_update upd;
    int rc = cfg_cds_read(cfg, &upd, err, sizeof err);
    if (rc == -ENOENT) {
        pf_debug("cds: %s moved away; waiting for a new one", path);
        return;
    }
    /* Log lines go out before the counters move (tests wait on counters). */
    if (rc) {
        pf_warn("cds: update rejected, keeping the current clusters: %s", err);
        count(srv, w->st.attempt);
        count(srv, rc == -EINVAL ? w->st.rejected : w->st.failure);
        return;
    }
    if ((rc = cfg_cds_diff(cfg, &upd, err, sizeof err)) != 0) {
        pf_warn("cds: update of %s rejected, keeping the current clusters: %s (needs a restart; "
                "only load_assignment and dns_refresh_rate of existing clusters apply while "
                "running)", path, err);
        count(srv, w->st.attempt);
        count(srv, w->st.rejected);
        cfg_cds_update_free(&upd);
        return;
    }
    count(srv, w->st.attempt);
    size_t first = cfg->dynamic->cds.first, n = cfg->dynamic->cds.n;
    size_t changed = cfg_cds_apply(cfg, &upd);
    for (size_t k = 0; k < n; k++) {
        if (upd.changed[k] == SIZE_MAX)
            continue;
        pf_info("cds: cluster '%s': new endpoints (%zu)", cfg->clusters[first + k].name,
                cfg->clusters[first + k].n_endpoints);
        pf_cluster_mgr_endpoints_replaced(srv, first + k);
    }
    stats_text_set(srv->stats, w->st.version_text, cfg->dynamic->cds.version_info);
    count(srv, w->st.success);
    if (changed)
        count(srv, w->st.reload);
    pf_info("cds: version '%s' of %s applied (%zu cluster(s) changed)",
            cfg->dynamic->cds.version_info ? cfg->dynamic->cds.version_info : "", path, changed);
    cfg_cds_update_free(&upd);
}

static void reload_lds(xds_watch *w)
{
    pf_server *srv = w->srv;
    cfg_xds_source *src = &srv->cfg->dynamic->lds;
    char err[CFG_ERR_MAX];
    char *version = NULL;
    int rc = cfg_lds_check(srv->cfg, &version, err, sizeof err);
    if (rc == -ENOENT) {
        pf_debug("lds: %s moved away; waiting for a new one", src->path);
        return;
    }
    count(srv, w->st.attempt);
    if (rc == -EPERM) {
        pf_warn("lds: update of %s rejected, keeping the current listeners: %s (listener "
                "changes are not applied while running yet: restart to apply them)",
                src->path, err);
        count(srv, w->st.rejected);
    } else if (rc) {
        pf_warn("lds: update rejected, keeping the current listeners: %s", err);
        count(srv, rc == -EINVAL ? w->st.rejected : w->st.failure);
    } else {
        pf_info("lds: version '%s' of %s: no listener changed", version ? version : "",
                src->path);
        free(src->version_info);
        src->version_info = version;
        stats_text_set(srv->stats, w->st.version_text, version);
        count(srv, w->st.success);
    }
}

static void on_batch(uv_timer_t *t)
{
    xds_watch *w = t->data;
    w->reload(w);
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    xds_watch *w = h->data;
    if (status < 0) {
        pf_warn("%s: watching %s: %s", w->api, w->dir, uv_strerror(status));
        return;
    }
    /* UV_RENAME: an entry appeared or went (moves included); UV_CHANGE
     * (writes in place) is not an update, as in Envoy. */
    if (!(events & UV_RENAME))
        return;
    if (w->base && (!filename || strcmp(filename, w->base) != 0))
        return;
    if (!uv_is_active((uv_handle_t *)&w->batch))
        uv_timer_start(&w->batch, on_batch, 0, 0);
}

static void reg(pf_server *srv, xds_watch *w, const char *prefix, const char *version)
{
    char name[96];
    stat_id *ids[] = {&w->st.attempt, &w->st.success, &w->st.failure, &w->st.rejected,
                      &w->st.reload};
    const char *names[] = {"update_attempt", "update_success", "update_failure",
                           "update_rejected", "config_reload"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        snprintf(name, sizeof name, "%s.%s", prefix, names[i]);
        *ids[i] = stats_counter(srv->stats, name);
    }
    snprintf(name, sizeof name, "%s.version_text", prefix);
    w->st.version_text = stats_text(srv->stats, name);
    stats_text_set(srv->stats, w->st.version_text, version);
    /* The file read at start-up was the first update, as Envoy counts it. */
    count(srv, w->st.attempt);
    count(srv, w->st.success);
    count(srv, w->st.reload);
}

static int watch_start(pf_server *srv, xds_watch *w, const cfg_xds_source *src,
                       const char *api, const char *prefix, void (*reload)(xds_watch *))
{
    w->srv = srv;
    w->api = api;
    w->reload = reload;
    reg(srv, w, prefix, src->version_info);
    char *copy = strdup(src->path);
    if (!copy)
        return UV_ENOMEM;
    if (src->watched_dir) {
        w->dir = strdup(src->watched_dir);
    } else {
        w->dir = strdup(dirname(copy));
        strcpy(copy, src->path);
        w->base = strdup(basename(copy));
    }
    free(copy);
    if (!w->dir || (!src->watched_dir && !w->base))
        return UV_ENOMEM;
    uv_timer_init(&srv->loop, &w->batch);
    w->batch.data = w;
    uv_fs_event_init(&srv->loop, &w->ev);
    w->ev.data = w;
    w->open = true;
    int rc = uv_fs_event_start(&w->ev, on_fs_event, w->dir, 0);
    if (rc) {
        pf_error("%s: cannot watch %s: %s", api, w->dir, uv_strerror(rc));
        return rc;
    }
    pf_info("%s: watching %s for moves onto %s", api, w->dir,
            w->base ? w->base : "any entry (watched_directory)");
    return 0;
}

int pf_xds_fs_start(pf_server *srv)
{
    const cfg_dynamic *d = srv->cfg->dynamic;
    if (!d || (!d->cds.set && !d->lds.set))
        return 0;
    if (!(srv->xds = calloc(1, sizeof *srv->xds)))
        return UV_ENOMEM;
    int rc = 0;
    if (d->cds.set)
        rc = watch_start(srv, &srv->xds->cds, &d->cds, "cds", "cluster_manager.cds", reload_cds);
    if (!rc && d->lds.set)
        rc = watch_start(srv, &srv->xds->lds, &d->lds, "lds", "listener_manager.lds", reload_lds);
    return rc;
}

static void watch_stop(xds_watch *w)
{
    if (!w->open)
        return;
    w->open = false;
    uv_close((uv_handle_t *)&w->ev, NULL);
    uv_close((uv_handle_t *)&w->batch, NULL);
}

void pf_xds_fs_stop(pf_server *srv)
{
    if (!srv->xds)
        return;
    watch_stop(&srv->xds->cds);
    watch_stop(&srv->xds->lds);
}

void pf_xds_fs_free(pf_server *srv)
{
    if (!srv->xds)
        return;
    xds_watch *ws[2] = {&srv->xds->cds, &srv->xds->lds};
    for (int i = 0; i < 2; i++) {
        free(ws[i]->dir);
        free(ws[i]->base);
    }
    free(srv->xds);
    srv->xds = NULL;
}
