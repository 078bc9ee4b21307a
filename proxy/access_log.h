/* HTTP access logs: rendering a finished stream with a compiled format
 * (proxy/access_log_format.c) and writing the lines without blocking a
 * worker (proxy/access_log.c).
 *
 * Writing: each worker appends rendered lines to a per-file 64 KiB block.
 * A full block, or every block once a second (flush timer), is handed to one
 * process-wide writer thread that owns the file descriptors and writes whole
 * blocks, so lines from different workers never interleave mid-line.  When
 * the writer falls more than PF_ALOG_MAX_PENDING bytes behind, new lines are
 * dropped and counted instead of queued. */
#ifndef PF_ACCESS_LOG_H
#define PF_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "config/access_log_config.h"
#include "config/config.h"

struct pf_stream;
struct pf_worker;

#define PF_ALOG_BLOCK (64u * 1024)              /* flush threshold per file and worker */
#define PF_ALOG_MAX_PENDING (16u * 1024 * 1024) /* queued bytes before lines are dropped */
#define PF_ALOG_FLUSH_MS 1000                   /* flush interval */

/* A growable output buffer, reused across lines (no malloc per line). */
typedef struct pf_alog_buf {
    char *p;
    size_t n, cap;
} pf_alog_buf;

void pf_alog_buf_free(pf_alog_buf *b);

/* Appends one rendered entry of `al` for stream s to out (text as the format
 * says, JSON as one object plus "\n").  cfg resolves the cluster name;
 * now_ms is the loop time used for %DURATION%.  Returns 0 or -ENOMEM. */
int pf_access_log_render(const struct cfg_access_log *al, const struct pf_stream *s,
                         const cfg_bootstrap *cfg, uint64_t now_ms, pf_alog_buf *out);

/* Called by pf_worker_start() on the main thread before the worker runs.
 * The first call opens every configured log file (append mode) and starts
 * the writer thread.  Returns 0, or a negative UV error after logging
 * "access log: cannot open '<path>': <reason>"; nothing is left allocated
 * on error. */
int pf_access_log_init_worker(struct pf_worker *w);

/* Renders and queues one line per access log of s's listener.  Called once
 * when a stream ends (completed or reset), on the worker thread. */
void pf_access_log_emit(struct pf_stream *s);

/* Hands the worker's buffered lines to the writer (worker thread). */
void pf_access_log_flush_worker(struct pf_worker *w);

/* After the worker thread has exited (its loop has closed the flush timer):
 * flushes what is left and frees the worker's state.  The last worker to go
 * waits for the writer thread to write everything and closes the files. */
void pf_access_log_destroy_worker(struct pf_worker *w);

/* Lines dropped because the writer fell behind (process total). */
uint64_t pf_access_log_dropped(void);

#endif
