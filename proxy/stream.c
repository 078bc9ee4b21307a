#include "proxy/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/worker.h"

#define STREAM_CACHE_MAX 1024

/* Zeroes the per-request fields; keeps the object's timer and arena block. */
static void stream_reset_fields(pf_stream *s)
{
    size_t off = offsetof(pf_stream, method);
    memset((char *)s + off, 0, offsetof(pf_stream, arena) - off);
}

pf_stream *pf_stream_new(pf_worker *w, const pf_server_codec_ops *codec, void *codec_conn,
                         const cfg_listener *listener)
{
    pf_stream *s = w->stream_free;
    if (s) {
        w->stream_free = s->free_next;
        w->n_stream_free--;
    } else {
        if (!(s = malloc(sizeof *s)))
            return NULL;
        uv_timer_init(&w->loop, &s->timer);
        pf_arena_init(&s->arena);
    }
    s->w = w;
    s->codec = codec;
    s->codec_conn = codec_conn;
    s->listener = listener;
    s->hcm = &listener->chains[0].hcm;    /* the codec sets the chain's (dc->hcm) */
    s->listener_index = (size_t)(listener - w->cfg->listeners);
    s->free_next = NULL;
    s->timer.data = s;
    stream_reset_fields(s);
    s->start_ms = uv_now(&w->loop);
    s->start_ns = uv_hrtime();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s->start_wall_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    return s;
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

void pf_stream_free(pf_stream *s)
{
    pf_worker *w = s->w;
    uv_timer_stop(&s->timer);
    pf_outq_clear(&s->retry_body, &w->chunks);
    pf_arena_reset(&s->arena);
    if (w->n_stream_free >= STREAM_CACHE_MAX || w->stopping) {
        uv_close((uv_handle_t *)&s->timer, on_timer_closed);
        return;
    }
    s->free_next = w->stream_free;
    w->stream_free = s;
    w->n_stream_free++;
}

void pf_stream_cache_destroy(pf_worker *w)
{
    while (w->stream_free) {
        pf_stream *s = w->stream_free;
        w->stream_free = s->free_next;
        uv_close((uv_handle_t *)&s->timer, on_timer_closed);
    }
    w->n_stream_free = 0;
}

void pf_stream_flags_str(uint32_t flags, char *buf, size_t len)
{
    static const char *const names[] = { "NR", "UF", "UH", "UT", "UC", "UR", "DC", "DPE", "UPE", "NC", "URX", "UO",
                                           "SI" };
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(flags & (1u << i)))
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? "," : "", names[i]);
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
    if (!used)
        snprintf(buf, len, "-");
}
