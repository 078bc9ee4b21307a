#include "proxy/worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "admin/runtime.h"
#include "admin/stats.h"
#include "filters/filter.h"
#include "proxy/access_log.h"
#include "proxy/async_client.h"
#include "proxy/cluster.h"
#include "proxy/downstream.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/server_state.h"
#include "proxy/sock.h"
#include "proxy/stream.h"

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* xorshift128+: fast, per worker, no locks; not for secrets. */
uint64_t pf_worker_random(pf_worker *w)
{
    uint64_t s1 = w->rng[0];
    const uint64_t s0 = w->rng[1];
    w->rng[0] = s0;
    s1 ^= s1 << 23;
    w->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return w->rng[1] + s0;
}

void pf_worker_defer(pf_worker *w, pf_deferred *d)
{
    if (pf_queue_empty(&d->link))
        pf_queue_insert_tail(&w->deferred, &d->link);
}

void pf_worker_cancel_defer(pf_worker *w, pf_deferred *d)
{
    (void)w;
    pf_queue_remove(&d->link);
}

void pf_worker_post(pf_worker *w, pf_msg *msg)
{
    pthread_mutex_lock(&w->inbox_lock);
    pf_msg **tail = &w->inbox;
    while (*tail)
        tail = &(*tail)->next;
    msg->next = NULL;
    *tail = msg;
    pthread_mutex_unlock(&w->inbox_lock);
    uv_async_send(&w->inbox_async);
}

/* Before each poll: run deferred work, then write out everything queued. */
static void on_prepare(uv_prepare_t *h)
{
    pf_worker *w = h->data;
    while (!pf_queue_empty(&w->deferred)) {
        pf_queue *q = w->deferred.next;
        pf_queue_remove(q);
        pf_deferred *d = pf_queue_data(q, pf_deferred, link);
        d->fn(d);
    }
    pf_sock_flush_all(w);
}

static void on_connection(uv_stream_t *server, int status)
{
    pf_listener_rt *l = server->data;
    if (status < 0) {
        pf_warn("listener %s: accept: %s", l->cfg->name, uv_strerror(status));
        return;
    }
    pf_downstream_accept(l);
}

static int listener_bind(pf_worker *w, pf_listener_rt *l)
{
    struct sockaddr_storage addr;
    if (pf_sockaddr_from(l->cfg->address.address, l->cfg->address.port, &addr) != 0)
        return UV_EINVAL;
    int rc = uv_tcp_init_ex(&w->loop, &l->tcp, addr.ss_family);
    if (rc)
        return rc;
    l->open = true;
    l->tcp.data = l;
    uv_os_fd_t fd;
    uv_fileno((uv_handle_t *)&l->tcp, &fd);
    int one = 1;
    /* Each worker has its own accept queue: the kernel spreads connections. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        return uv_translate_sys_error(errno);
    if ((rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&addr, 0)) != 0)
        return rc;
    return uv_listen((uv_stream_t *)&l->tcp, 1024, on_connection);
}

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void close_listeners(pf_worker *w)
{
    for (size_t i = 0; i < w->n_listeners; i++)
        if (w->listeners[i].open)
            close_handle((uv_handle_t *)&w->listeners[i].tcp, NULL);
}

/* Ends the loop: everything still open is closed; run_loop returns after. */
static void worker_shutdown(pf_worker *w)
{
    if (w->stopping)
        return;
    w->stopping = true;
    pf_downstream_close_all(w);
    pf_async_calls_abort(w);                    /* Lua httpCall requests */
    for (size_t i = 0; i < w->cfg->n_clusters; i++)
        pf_cluster_rt_destroy(&w->clusters[i]);
    pf_stream_cache_destroy(w);
    close_listeners(w);
    close_handle((uv_handle_t *)&w->inbox_async, NULL);
    close_handle((uv_handle_t *)&w->flusher, NULL);
}

static void worker_begin_drain(pf_worker *w)
{
    if (w->draining)
        return;
    w->draining = true;
    close_listeners(w);
    pf_downstream_drain_all(w);
    if (w->n_conns == 0)
        worker_shutdown(w);
}

void pf_worker_conn_closed(pf_worker *w)
{
    w->n_conns--;
    if (w->draining && w->n_conns == 0)
        worker_shutdown(w);
}

static void on_inbox(uv_async_t *h)
{
    pf_worker *w = h->data;
    pthread_mutex_lock(&w->inbox_lock);
    pf_msg *m = w->inbox;
    w->inbox = NULL;
    pthread_mutex_unlock(&w->inbox_lock);
    while (m) {
        pf_msg *next = m->next;
        switch (m->kind) {
        case PF_MSG_HOSTSET:
            if (!w->stopping)
                pf_cluster_rt_set_hostset(w, &w->clusters[m->cluster], m->hostset);
            else
                pf_hostset_unref(m->hostset);
            break;
        case PF_MSG_DRAIN:
            worker_begin_drain(w);
            break;
        case PF_MSG_STOP:
            worker_begin_drain(w);
            worker_shutdown(w);
            break;
        case PF_MSG_RUNTIME:
            runtime_snapshot_unref(w->runtime);
            w->runtime = m->runtime;
            break;
        case PF_MSG_STOP_LISTENERS:
            close_listeners(w);
            break;
        }
        free(m);
        m = next;
    }
}

static void worker_main(void *arg)
{
    pf_worker *w = arg;
    int rc = 0;
    for (size_t i = 0; i < w->n_listeners && rc == 0; i++) {
        rc = listener_bind(w, &w->listeners[i]);
        if (rc)
            pf_error("listener '%s' (%s:%u): %s", w->listeners[i].cfg->name,
                     w->listeners[i].cfg->address.address, w->listeners[i].cfg->address.port,
                     uv_strerror(rc));
    }
    w->start_status = rc;
    uv_sem_post(&w->server->start_sem);
    if (rc)
        worker_shutdown(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_walk(&w->loop, close_handle, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    pf_server_worker_exited(w->server);
}

static void *worker_thread(void *arg)
{
    worker_main(arg);
    return NULL;
}

int pf_worker_start(pf_worker *w, pf_server *server, int id)
{
    memset(w, 0, sizeof *w);
    w->id = id;
    w->server = server;
    w->cfg = server->cfg;
    int arc = pf_access_log_init_worker(w);     /* opens log files; nothing to undo on error */
    if (arc)
        return arc;
    uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)id << 32) ^ (uint64_t)(uintptr_t)w;
    w->rng[0] = splitmix(&seed);
    w->rng[1] = splitmix(&seed);
    pf_queue_init(&w->deferred);
    pf_queue_init(&w->conns);
    pf_queue_init(&w->async_calls);
    pf_queue_init(&w->dirty);
    pf_chunk_pool_init(&w->chunks, 256);
    pthread_mutex_init(&w->inbox_lock, NULL);
    if (uv_loop_init(&w->loop) != 0)
        return UV_ENOMEM;
    uv_prepare_init(&w->loop, &w->flusher);
    w->flusher.data = w;
    uv_prepare_start(&w->flusher, on_prepare);
    uv_async_init(&w->loop, &w->inbox_async, on_inbox);
    w->inbox_async.data = w;

    const cfg_bootstrap *cfg = server->cfg;
    w->n_listeners = cfg->n_listeners;
    w->listeners = calloc(cfg->n_listeners ? cfg->n_listeners : 1, sizeof *w->listeners);
    w->clusters = calloc(cfg->n_clusters ? cfg->n_clusters : 1, sizeof *w->clusters);
    if (!w->listeners || !w->clusters)
        return UV_ENOMEM;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        w->listeners[i].w = w;
        w->listeners[i].cfg = &cfg->listeners[i];
        w->listeners[i].index = i;
    }
    for (size_t i = 0; i < cfg->n_clusters; i++) {
        pf_cluster_rt_init(&w->clusters[i], &cfg->clusters[i], i, server->host_tables[i]);
        if (server->hostsets[i])
            pf_cluster_rt_set_hostset(w, &w->clusters[i], pf_hostset_ref(server->hostsets[i]));
    }
    w->runtime = runtime_snapshot_ref(runtime_loader_snapshot(pf_server_runtime(server)));
    w->ps = server->ps;
    if (!(w->stats = stats_shard_new(server->stats)))
        return UV_ENOMEM;
    if (pf_filters_worker_init(w) != 0)         /* Lua states, scripts loaded once */
        return UV_ENOMEM;
    if (pthread_create(&w->thread, NULL, worker_thread, w) != 0)
        return UV_EAGAIN;
    w->thread_started = true;
    uv_sem_wait(&server->start_sem);
    return w->start_status;
}

void pf_worker_join(pf_worker *w)
{
    if (w->thread_started)
        pthread_join(w->thread, NULL);
    pf_access_log_destroy_worker(w);            /* writes out what the worker buffered */
    while (w->inbox) {
        pf_msg *m = w->inbox;
        w->inbox = m->next;
        if (m->kind == PF_MSG_HOSTSET)
            pf_hostset_unref(m->hostset);
        else if (m->kind == PF_MSG_RUNTIME)
            runtime_snapshot_unref(m->runtime);
        free(m);
    }
    pf_filters_worker_destroy(w);
    uv_loop_close(&w->loop);
    pthread_mutex_destroy(&w->inbox_lock);
    pf_chunk_pool_destroy(&w->chunks);
    runtime_snapshot_unref(w->runtime);
    w->runtime = NULL;
    free(w->listeners);
    free(w->clusters);
}
