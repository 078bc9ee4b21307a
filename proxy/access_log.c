/* Access log writing: per-worker 64 KiB blocks per file, one writer thread.
 *
 * Workers never call write(2) for a log line: they render into their current
 * block for the line's file and hand full blocks (and, from a 1 s timer,
 * partial ones) to the writer thread through a mutex-guarded queue - one
 * lock per block, not per line.  The writer owns the file descriptors and
 * writes each block whole, so lines stay intact whatever the interleaving of
 * workers.  The process-wide state (files, queue, thread) is created by the
 * first worker's init and torn down by the last worker's destroy, both on
 * the main thread. */
#include "proxy/access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "proxy/log.h"
#include "proxy/stream.h"
#include "proxy/worker.h"

#define FREE_BLOCKS_MAX 64

typedef struct alog_block {
    struct alog_block *next;
    size_t file;                /* index into mgr.files */
    size_t len, cap;
    char data[];
} alog_block;

typedef struct alog_file {
    char *path;                 /* NULL for stdout/stderr */
    int fd;
    bool own_fd;
    bool failed;                /* a write error was reported */
} alog_file;

/* Process-wide; the fields below `lock` are guarded by it. */
static struct {
    int users;                  /* workers initialized (main thread only) */
    alog_file *files;
    size_t n_files;
    pthread_t thread;
    atomic_size_t pending;      /* bytes queued, not yet written */
    atomic_uint_fast64_t dropped;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    alog_block *head, *tail;    /* queue for the writer */
    alog_block *free_list;
    size_t n_free;
    bool stop;
} mgr = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* One per worker (pf_worker.alog); owned by the worker, freed by
 * pf_access_log_destroy_worker(). */
struct pf_access_log_worker {
    uv_timer_t timer;
    bool timer_started;
    pf_alog_buf line;           /* the line being rendered, reused */
    alog_block **cur;           /* per file: current block or NULL */
    size_t *first;              /* per filter chain (cfg_hcm.index): its first log in file_of */
    size_t *file_of;            /* per (chain, log): file index */
};

uint64_t pf_access_log_dropped(void)
{
    return atomic_load(&mgr.dropped);
}

/* ---- writer thread ---- */

static void write_block(const alog_block *b)
{
    alog_file *f = &mgr.files[b->file];
    size_t off = 0;
    while (off < b->len) {
        ssize_t n = write(f->fd, b->data + off, b->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (!f->failed)
                pf_error("access log %s: write failed: %s",
                         f->path ? f->path : f->fd == 1 ? "/dev/stdout" : "/dev/stderr",
                         n < 0 ? strerror(errno) : "short write");
            f->failed = true;
            return;
        }
        off += (size_t)n;
    }
}

static void *writer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mgr.lock);
    for (;;) {
        while (!mgr.head && !mgr.stop)
            pthread_cond_wait(&mgr.cond, &mgr.lock);
        alog_block *list = mgr.head;
        mgr.head = mgr.tail = NULL;
        if (!list && mgr.stop)
            break;
        pthread_mutex_unlock(&mgr.lock);
        size_t written = 0;
        alog_block *keep = NULL, *last = NULL;
        size_t n_keep = 0;
        while (list) {
            alog_block *b = list;
            list = b->next;
            write_block(b);
            written += b->len;
            if (b->cap == PF_ALOG_BLOCK && n_keep < FREE_BLOCKS_MAX) {
                b->next = keep;
                if (!keep)
                    last = b;
                keep = b;
                n_keep++;
            } else {
                free(b);
            }
        }
        atomic_fetch_sub(&mgr.pending, written);
        pthread_mutex_lock(&mgr.lock);
        if (keep && mgr.n_free < FREE_BLOCKS_MAX) {
            last->next = mgr.free_list;
            mgr.free_list = keep;
            mgr.n_free += n_keep;
        } else {
            while (keep) {
                alog_block *b = keep;
                keep = b->next;
                free(b);
            }
        }
    }
    pthread_mutex_unlock(&mgr.lock);
    return NULL;
}

/* ---- process-wide start / stop (main thread) ---- */

static void close_files(void)
{
    for (size_t i = 0; i < mgr.n_files; i++) {
        if (mgr.files[i].own_fd && mgr.files[i].fd >= 0)
            close(mgr.files[i].fd);
        free(mgr.files[i].path);
    }
    free(mgr.files);
    mgr.files = NULL;
    mgr.n_files = 0;
}

/* Finds or adds the file of one access log; returns its index or -errno. */
static long file_index(const struct cfg_access_log *al)
{
    int std_fd = al->sink == CFG_ALOG_SINK_STDOUT ? 1 : al->sink == CFG_ALOG_SINK_STDERR ? 2 : -1;
    for (size_t i = 0; i < mgr.n_files; i++) {
        const alog_file *f = &mgr.files[i];
        if (std_fd >= 0 ? (!f->path && f->fd == std_fd) : (f->path && !strcmp(f->path, al->path)))
            return (long)i;
    }
    alog_file *nf = realloc(mgr.files, (mgr.n_files + 1) * sizeof *nf);
    if (!nf)
        return -ENOMEM;
    mgr.files = nf;
    alog_file f = { .fd = std_fd };
    if (std_fd < 0) {
        f.fd = open(al->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (f.fd < 0) {
            int e = errno;
            pf_error("access log: cannot open '%s': %s", al->path, strerror(e));
            return -e;
        }
        f.own_fd = true;
        if (!(f.path = strdup(al->path))) {
            close(f.fd);
            return -ENOMEM;
        }
    }
    mgr.files[mgr.n_files] = f;
    return (long)mgr.n_files++;
}

static int mgr_start(const cfg_bootstrap *cfg)
{
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        for (size_t c = 0; c < cfg->listeners[i].n_chains; c++) {
            const cfg_hcm *h = &cfg->listeners[i].chains[c].hcm;
            for (size_t j = 0; j < h->n_access_logs; j++) {
                long k = file_index(&h->access_logs[j]);
                if (k < 0) {
                    close_files();
                    return uv_translate_sys_error((int)-k);
                }
            }
        }
    }
    if (!mgr.n_files)
        return 0;
    mgr.stop = false;
    if (pthread_create(&mgr.thread, NULL, writer_main, NULL) != 0) {
        close_files();
        return UV_EAGAIN;
    }
    return 0;
}

static void mgr_stop(void)
{
    if (mgr.n_files) {
        pthread_mutex_lock(&mgr.lock);
        mgr.stop = true;
        pthread_cond_signal(&mgr.cond);
        pthread_mutex_unlock(&mgr.lock);
        pthread_join(mgr.thread, NULL);
    }
    while (mgr.free_list) {
        alog_block *b = mgr.free_list;
        mgr.free_list = b->next;
        free(b);
    }
    mgr.n_free = 0;
    close_files();
    if (atomic_load(&mgr.dropped))
        pf_warn("access log: %llu line(s) dropped (writer too slow)",
                (unsigned long long)atomic_load(&mgr.dropped));
}

/* ---- worker side ---- */

/* Queues b for the writer.  b may be NULL or empty (then it is kept). */
static void hand_off(struct pf_access_log_worker *aw, size_t file)
{
    alog_block *b = aw->cur[file];
    if (!b || !b->len)
        return;
    aw->cur[file] = NULL;
    b->next = NULL;
    atomic_fetch_add(&mgr.pending, b->len);
    pthread_mutex_lock(&mgr.lock);
    if (mgr.tail)
        mgr.tail->next = b;
    else
        mgr.head = b;
    mgr.tail = b;
    pthread_cond_signal(&mgr.cond);
    pthread_mutex_unlock(&mgr.lock);
}

static alog_block *get_block(size_t need)
{
    alog_block *b = NULL;
    if (need <= PF_ALOG_BLOCK) {
        pthread_mutex_lock(&mgr.lock);
        if ((b = mgr.free_list) != NULL) {
            mgr.free_list = b->next;
            mgr.n_free--;
        }
        pthread_mutex_unlock(&mgr.lock);
    }
    if (!b) {
        size_t cap = need <= PF_ALOG_BLOCK ? PF_ALOG_BLOCK : need;
        if (!(b = malloc(sizeof *b + cap)))
            return NULL;
        b->cap = cap;
    }
    b->len = 0;
    b->next = NULL;
    return b;
}

void pf_access_log_flush_worker(pf_worker *w)
{
    struct pf_access_log_worker *aw = w->alog;
    if (!aw)
        return;
    for (size_t i = 0; i < mgr.n_files; i++)
        hand_off(aw, i);
}

static void on_flush_timer(uv_timer_t *t)
{
    pf_access_log_flush_worker(t->data);
}

/* Appends one rendered line to the file's current block. */
static void append_line(pf_worker *w, struct pf_access_log_worker *aw, size_t file,
                        const char *p, size_t n)
{
    if (atomic_load(&mgr.pending) + n > PF_ALOG_MAX_PENDING) {
        atomic_fetch_add(&mgr.dropped, 1);
        return;
    }
    alog_block *b = aw->cur[file];
    if (b && b->cap - b->len < n) {
        hand_off(aw, file);
        b = NULL;
    }
    if (!b) {
        if (!(b = aw->cur[file] = get_block(n))) {
            atomic_fetch_add(&mgr.dropped, 1);
            return;
        }
        b->file = file;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    if (b->len >= PF_ALOG_BLOCK)
        hand_off(aw, file);
    else if (!aw->timer_started) {
        /* Lazily: the loop exists by now.  Unreferenced, so it never keeps a
         * draining worker alive; the loop's final walk closes it. */
        uv_timer_init(&w->loop, &aw->timer);
        aw->timer.data = w;
        uv_timer_start(&aw->timer, on_flush_timer, PF_ALOG_FLUSH_MS, PF_ALOG_FLUSH_MS);
        uv_unref((uv_handle_t *)&aw->timer);
        aw->timer_started = true;
    }
}

void pf_access_log_emit(pf_stream *s)
{
    pf_worker *w = s->w;
    struct pf_access_log_worker *aw = w->alog;
    const cfg_hcm *h = s->hcm;
    if (!aw || !h || !h->n_access_logs)
        return;
    const cfg_bootstrap *cfg = w->cfg;
    if (h->index >= cfg->n_hcms)
        return;
    size_t li = h->index;
    uint64_t now = uv_now(&w->loop);
    for (size_t j = 0; j < h->n_access_logs; j++) {
        aw->line.n = 0;
        if (pf_access_log_render(&h->access_logs[j], s, cfg, now, &aw->line) != 0) {
            atomic_fetch_add(&mgr.dropped, 1);
            continue;
        }
        if (aw->line.n)
            append_line(w, aw, aw->file_of[aw->first[li] + j], aw->line.p, aw->line.n);
    }
    /* One huge line must not pin its buffer for the worker's lifetime. */
    if (aw->line.cap > 4 * PF_ALOG_BLOCK)
        pf_alog_buf_free(&aw->line);
}

static void free_worker_state(struct pf_access_log_worker *aw)
{
    if (!aw)
        return;
    pf_alog_buf_free(&aw->line);
    for (size_t i = 0; aw->cur && i < mgr.n_files; i++)
        free(aw->cur[i]);
    free(aw->cur);
    free(aw->first);
    free(aw->file_of);
    free(aw);
}

int pf_access_log_init_worker(pf_worker *w)
{
    const cfg_bootstrap *cfg = w->cfg;
    size_t total = 0;
    for (size_t i = 0; i < cfg->n_listeners; i++)
        for (size_t c = 0; c < cfg->listeners[i].n_chains; c++)
            total += cfg->listeners[i].chains[c].hcm.n_access_logs;
    w->alog = NULL;
    if (!total)
        return 0;
    if (mgr.users == 0) {
        int rc = mgr_start(cfg);
        if (rc)
            return rc;
    }
    struct pf_access_log_worker *aw = calloc(1, sizeof *aw);
    if (aw) {
        aw->cur = calloc(mgr.n_files, sizeof *aw->cur);
        aw->first = calloc(cfg->n_hcms + 1, sizeof *aw->first);
        aw->file_of = calloc(total, sizeof *aw->file_of);
    }
    if (!aw || !aw->cur || !aw->first || !aw->file_of) {
        free_worker_state(aw);
        if (mgr.users == 0)
            mgr_stop();
        return UV_ENOMEM;
    }
    /* All files are open: the lookups below only find. */
    size_t k = 0;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        for (size_t c = 0; c < cfg->listeners[i].n_chains; c++) {
            const cfg_hcm *h = &cfg->listeners[i].chains[c].hcm;
            aw->first[h->index] = k;
            for (size_t j = 0; j < h->n_access_logs; j++)
                aw->file_of[k++] = (size_t)file_index(&h->access_logs[j]);
        }
    }
    mgr.users++;
    w->alog = aw;
    return 0;
}

void pf_access_log_destroy_worker(pf_worker *w)
{
    struct pf_access_log_worker *aw = w->alog;
    if (!aw)
        return;
    pf_access_log_flush_worker(w);
    free_worker_state(aw);
    w->alog = NULL;
    if (--mgr.users == 0)
        mgr_stop();
}
