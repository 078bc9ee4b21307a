/* A worker: one thread, one uv loop, share-nothing.
 *
 * Each worker binds its own SO_REUSEPORT listener sockets, owns the
 * connections it accepts, its upstream pools and its caches.  The main
 * thread talks to it only through pf_worker_post() (a mutex-guarded inbox
 * drained by a uv_async_t) — never on the request path. */
#ifndef PF_WORKER_H
#define PF_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "proxy/outq.h"
#include "proxy/queue.h"

struct pf_sock;
struct pf_server;
struct pf_cluster_rt;

#define PF_READ_BUF 65536

typedef struct pf_listener_rt {
    uv_tcp_t tcp;
    struct pf_worker *w;
    const cfg_listener *cfg;
    size_t index;
    bool open;                      /* tcp handle initialized */
} pf_listener_rt;

typedef enum pf_msg_kind {
    PF_MSG_HOSTSET,     /* a cluster's new host set */
    PF_MSG_DRAIN,       /* stop accepting, finish in-flight, then exit */
    PF_MSG_STOP,        /* drain time is over: close everything now */
    PF_MSG_RUNTIME,     /* a new runtime snapshot (admin /runtime_modify) */
    PF_MSG_STOP_LISTENERS,  /* admin /drain_listeners: stop accepting, keep connections */
} pf_msg_kind;

typedef struct pf_msg {
    struct pf_msg *next;
    pf_msg_kind kind;
    size_t cluster;
    struct pf_hostset *hostset;     /* PF_MSG_HOSTSET: one reference, owned by the message */
    struct pf_runtime_snapshot *runtime;    /* PF_MSG_RUNTIME: one reference, owned */
} pf_msg;

/* Work queued to run before the next poll, outside any parser callback. */
typedef struct pf_deferred {
    pf_queue link;
    void (*fn)(struct pf_deferred *d);
} pf_deferred;

typedef struct pf_worker {
    int id;
    pthread_t thread;
    uv_loop_t loop;
    uv_prepare_t flusher;
    uv_async_t inbox_async;
    pthread_mutex_t inbox_lock;
    pf_msg *inbox;

    struct pf_server *server;
    const cfg_bootstrap *cfg;
    pf_listener_rt *listeners;
    size_t n_listeners;
    struct pf_cluster_rt *clusters;     /* one per cfg cluster */
    struct pf_runtime_snapshot *runtime;    /* admin/runtime.h; one reference; swapped by
                                               PF_MSG_RUNTIME, dropped in pf_worker_join */

    pf_chunk_pool chunks;
    pf_queue dirty;                     /* pf_sock.dirty_link: sockets with output to flush */
    char read_buf[PF_READ_BUF];         /* shared by all reads: data is consumed in on_read */
    bool read_buf_busy;
    uint64_t rng[2];

    pf_queue deferred;                  /* pf_deferred.link */
    pf_queue conns;                     /* downstream connections */
    pf_queue async_calls;               /* pf_async_call.link (proxy/async_client.c) */
    size_t n_conns;
    struct pf_stream *stream_free;      /* free list of recycled streams */
    struct pf_lua_worker *lua;          /* filters/lua: this worker's Lua state; owned,
                                           created in pf_worker_start, closed in pf_worker_join */
    struct pf_access_log_worker *alog;  /* proxy/access_log.c; owned, freed in pf_worker_join */
    struct stats_shard *stats;          /* this worker's stat values; owned by the server's store */
    const struct pf_proxy_stats *ps;    /* stat ids (proxy/proxy_stats.h); shared, immutable */
    size_t n_stream_free;
    bool draining, stopping, thread_started;
    int start_status;                   /* 0 or a UV error from binding */
} pf_worker;

/* Starts the worker thread; blocks until its listeners are bound.
 * Returns 0 or the bind error. */
int pf_worker_start(pf_worker *w, struct pf_server *server, int id);
void pf_worker_join(pf_worker *w);
/* Thread-safe: hands msg (malloc'd, ownership moves) to the worker. */
void pf_worker_post(pf_worker *w, pf_msg *msg);
uint64_t pf_worker_random(pf_worker *w);
/* Runs d->fn before the loop's next poll (once, however often deferred). */
void pf_worker_defer(pf_worker *w, pf_deferred *d);
void pf_worker_cancel_defer(pf_worker *w, pf_deferred *d);
/* Called by a connection when it closes, to let a draining worker finish. */
void pf_worker_conn_closed(pf_worker *w);

#endif
