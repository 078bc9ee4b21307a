#include "admin/admin_access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/access_log_config.h"
#include "proxy/access_log.h"
#include "proxy/log.h"
#include "proxy/stream.h"

struct admin_alog {
    const cfg_bootstrap *cfg;
    int *fds;                       /* one per cfg->admin_access_logs entry */
    size_t n;
    pf_stream *s;                   /* reused to describe each request to the renderer */
    pf_alog_buf buf;
};

int admin_alog_open(const cfg_bootstrap *cfg, admin_alog **out)
{
    *out = NULL;
    if (!cfg->n_admin_access_logs)
        return 0;
    admin_alog *l = calloc(1, sizeof *l);
    if (!l || !(l->fds = calloc(cfg->n_admin_access_logs, sizeof *l->fds)) ||
        !(l->s = calloc(1, sizeof *l->s))) {
        admin_alog_close(l);
        return -ENOMEM;
    }
    l->cfg = cfg;
    pf_arena_init(&l->s->arena);
    for (size_t i = 0; i < cfg->n_admin_access_logs; i++) {
        const struct cfg_access_log *al = &cfg->admin_access_logs[i];
        int fd = al->sink == CFG_ALOG_SINK_STDOUT   ? dup(1)
                 : al->sink == CFG_ALOG_SINK_STDERR ? dup(2)
                 : open(al->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            int err = errno;
            pf_error("admin access log: cannot open '%s': %s", al->path ? al->path : "-",
                     strerror(err));
            admin_alog_close(l);
            return -err;
        }
        l->fds[l->n++] = fd;
    }
    *out = l;
    return 0;
}

void admin_alog_write(admin_alog *l, const char *method, const char *target, int status,
                      size_t bytes_sent, uint64_t start_wall_us, uint64_t duration_ms,
                      const struct sockaddr_storage *peer, const struct sockaddr_storage *local)
{
    if (!l)
        return;
    pf_stream *s = l->s;
    pf_arena_reset(&s->arena);
    s->method = (pf_str){ method, strlen(method) };
    s->path = (pf_str){ target, strlen(target) };
    s->authority = PF_STR("");
    s->protocol = PF_STR("HTTP/1.1");
    s->status = status;
    s->resp_headers_sent = true;
    s->bytes_sent = bytes_sent;
    s->start_wall_us = start_wall_us;
    s->start_ms = 1;                /* durations are given relative to it */
    s->downstream_remote = peer;
    s->downstream_local = local;
    for (size_t i = 0; i < l->n; i++) {
        l->buf.n = 0;
        if (pf_access_log_render(&l->cfg->admin_access_logs[i], s, l->cfg, 1 + duration_ms,
                                 &l->buf) == 0 &&
            write(l->fds[i], l->buf.p, l->buf.n) < 0)
            pf_debug("admin access log: write: %s", strerror(errno));
    }
}

void admin_alog_close(admin_alog *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        close(l->fds[i]);
    free(l->fds);
    if (l->s)
        pf_arena_reset(&l->s->arena);
    free(l->s);
    pf_alog_buf_free(&l->buf);
    free(l);
}
