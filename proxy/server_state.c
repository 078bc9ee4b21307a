#include "proxy/server_state.h"

#include <stdlib.h>

#include "admin/runtime.h"
#include "proxy/worker.h"

pf_server_state pf_server_state_get(const pf_server *s)
{
    if (s->workers_started < s->concurrency && !s->draining)
        return PF_STATE_PRE_INITIALIZING;
    if (s->draining || s->hc_failed)
        return PF_STATE_DRAINING;
    return PF_STATE_LIVE;
}

const char *pf_server_state_name(pf_server_state st)
{
    switch (st) {
    case PF_STATE_LIVE: return "LIVE";
    case PF_STATE_DRAINING: return "DRAINING";
    case PF_STATE_PRE_INITIALIZING: return "PRE_INITIALIZING";
    case PF_STATE_INITIALIZING: return "INITIALIZING";
    }
    return "LIVE";
}

void pf_server_set_hc_failed(pf_server *s, bool failed)
{
    s->hc_failed = failed;
}

void pf_server_stop_listeners(pf_server *s)
{
    for (int i = 0; i < s->workers_started; i++) {
        pf_msg *m = calloc(1, sizeof *m);
        if (!m)
            continue;
        m->kind = PF_MSG_STOP_LISTENERS;
        pf_worker_post(&s->workers[i], m);
    }
}

struct runtime_loader *pf_server_runtime(pf_server *s)
{
    if (!s->runtime)
        s->runtime = runtime_loader_new(s->cfg->runtime);
    return s->runtime;
}

void pf_server_publish_runtime(pf_server *s)
{
    pf_runtime_snapshot *snap = runtime_loader_snapshot(pf_server_runtime(s));
    if (!snap)
        return;
    for (int i = 0; i < s->workers_started; i++) {
        pf_msg *m = calloc(1, sizeof *m);
        if (!m)
            continue;
        m->kind = PF_MSG_RUNTIME;
        m->runtime = runtime_snapshot_ref(snap);
        pf_worker_post(&s->workers[i], m);
    }
}

void pf_server_state_free(pf_server *s)
{
    runtime_loader_free(s->runtime);
    s->runtime = NULL;
}
