/* The per-stream HTTP filter chain (see filters/filter.h). */
#include "filters/filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/lua/lua_filter.h"
#include "proxy/grpc.h"
#include "proxy/hcm.h"
#include "proxy/log.h"
#include "proxy/route_action.h"
#include "proxy/worker.h"

typedef struct fslot {
    const pf_http_filter_ops *ops;
    void *inst;
    size_t index;                   /* in cfg_hcm.filters */
} fslot;

typedef struct fdir {
    int stop_at;                    /* position (in this direction's order) held at; -1 none */
    bool started;                   /* headers entered */
    bool hdrs_pending;              /* headers held at stop_at */
    bool end_seen;                  /* the last data chunk (end) arrived */
    bool trailers_seen;             /* trailers arrived (end of stream) */
    bool dead;                      /* no more events: answered locally */
    pf_fbuf buf;
} fdir;

struct pf_filter_chain {
    pf_stream *s;
    fslot *f;                       /* active filters in config order; arena */
    size_t n;
    fdir d[2];
    int depth;                      /* chain calls on the stack */
    bool zombie;                    /* the stream ended while depth > 0 */
    bool route_dirty;
    int route_outcome;
};

int pf_filters_worker_init(pf_worker *w)
{
    return pf_lua_worker_init(w);
}

void pf_filters_worker_destroy(pf_worker *w)
{
    pf_lua_worker_destroy(w);
}

pf_filter_chain *pf_filter_chain_new(pf_stream *s, int route_outcome)
{
    const cfg_hcm *h = s->hcm;
    pf_filter_chain *fc = pf_arena_alloc(&s->arena, sizeof *fc);
    fslot *slots = pf_arena_alloc(&s->arena, sizeof *slots * h->n_filters);
    if (!fc || !slots)
        return NULL;
    memset(fc, 0, sizeof *fc);
    fc->s = s;
    fc->f = slots;
    fc->d[0].stop_at = fc->d[1].stop_at = -1;
    fc->route_outcome = route_outcome;
    for (size_t i = 0; i < h->n_filters; i++) {
        const cfg_http_filter *cf = &h->filters[i];
        const pf_http_filter_ops *ops = cf->kind == CFG_FILTER_LUA ? &pf_lua_filter_ops : NULL;
        if (!ops)
            continue;
        void *inst = ops->create(fc, i, cf);
        if (!inst)
            continue;
        slots[fc->n++] = (fslot){ ops, inst, i };
    }
    if (!fc->n)
        return NULL;
    return fc;
}

static void destroy_filters(pf_filter_chain *fc)
{
    for (size_t i = 0; i < fc->n; i++)
        if (fc->f[i].ops->destroy)
            fc->f[i].ops->destroy(fc->f[i].inst);
    fc->n = 0;
    free(fc->d[0].buf.p);
    free(fc->d[1].buf.p);
    fc->d[0].buf = fc->d[1].buf = (pf_fbuf){ 0 };
}

bool pf_filter_chain_release(pf_filter_chain *fc)
{
    if (fc->depth) {
        fc->zombie = true;
        return false;
    }
    destroy_filters(fc);
    return true;
}

static void enter(pf_filter_chain *fc)
{
    fc->depth++;
}

/* Leaves a chain call; frees the stream when it ended meanwhile.  Returns
 * false when the stream is gone. */
static bool leave(pf_filter_chain *fc)
{
    if (--fc->depth > 0)
        return !fc->zombie;
    if (!fc->zombie)
        return true;
    pf_stream *s = fc->s;
    destroy_filters(fc);
    pf_stream_free(s);
    return false;
}

pf_stream *pf_filter_stream(const pf_filter_chain *fc)
{
    return fc->s;
}

pf_fbuf *pf_filter_buffer(pf_filter_chain *fc, pf_filter_dir d)
{
    return &fc->d[d].buf;
}

bool pf_filter_headers_held(const pf_filter_chain *fc, pf_filter_dir d)
{
    return fc->d[d].hdrs_pending;
}

bool pf_filter_encoding(const pf_filter_chain *fc)
{
    return fc->d[PF_ENCODE].started;
}

void pf_filter_clear_route_cache(pf_filter_chain *fc)
{
    fc->route_dirty = true;
}

int pf_filter_route_outcome(pf_filter_chain *fc)
{
    if (fc->route_dirty || fc->route_outcome < 0) {
        fc->route_dirty = false;
        fc->s->route = NULL;
        fc->s->vhost = NULL;
        fc->route_outcome = (int)route_action_select(fc->s);
    }
    return fc->route_outcome;
}

/* The slot at position pos of direction d (encode runs in reverse). */
static fslot *slot_at(pf_filter_chain *fc, pf_filter_dir d, size_t pos)
{
    return &fc->f[d == PF_DECODE ? pos : fc->n - 1 - pos];
}

/* Position in direction d of the filter with config index `index`. */
static size_t pos_of(const pf_filter_chain *fc, pf_filter_dir d, size_t index)
{
    size_t slot = 0;
    while (slot + 1 < fc->n && fc->f[slot].index != index)
        slot++;
    return d == PF_DECODE ? slot : fc->n - 1 - slot;
}

static int buf_append(pf_fbuf *b, const char *p, size_t n)
{
    if (!n)
        return 0;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            return -1;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}

/* ---- terminals ---- */

static void term_headers(pf_filter_chain *fc, pf_filter_dir d, bool end)
{
    if (d == PF_DECODE)
        hcm__route_request(fc->s, end);
    else
        hcm__send_headers(fc->s, end);
}

static void term_data(pf_filter_chain *fc, pf_filter_dir d, const char *p, size_t n, bool end)
{
    if (d == PF_DECODE)
        hcm__request_data(fc->s, p, n, end);
    else
        hcm__send_data(fc->s, p, n, end);
}

static void term_trailers(pf_filter_chain *fc, pf_filter_dir d)
{
    if (d == PF_DECODE)
        hcm__request_trailers(fc->s);
    else
        hcm__send_trailers(fc->s);
}

/* ---- iteration ---- */

static pf_filter_status call_headers(fslot *sl, pf_filter_dir d, bool end)
{
    pf_filter_status (*fn)(void *, bool) =
        d == PF_DECODE ? sl->ops->decode_headers : sl->ops->encode_headers;
    return fn ? fn(sl->inst, end) : PF_FILTER_CONTINUE;
}

static pf_filter_status call_data(fslot *sl, pf_filter_dir d, const char *p, size_t n, bool end)
{
    pf_filter_status (*fn)(void *, const char *, size_t, bool) =
        d == PF_DECODE ? sl->ops->decode_data : sl->ops->encode_data;
    return fn ? fn(sl->inst, p, n, end) : PF_FILTER_CONTINUE;
}

static pf_filter_status call_trailers(fslot *sl, pf_filter_dir d)
{
    pf_filter_status (*fn)(void *) =
        d == PF_DECODE ? sl->ops->decode_trailers : sl->ops->encode_trailers;
    return fn ? fn(sl->inst) : PF_FILTER_CONTINUE;
}

/* Over the body limit while buffering: 413 for requests, 500 for responses
 * (Envoy's "buffer limit reached" answers). */
static void overflow(pf_filter_chain *fc, pf_filter_dir d, size_t pos)
{
    pf_stream *s = fc->s;
    if (d == PF_DECODE) {
        fdir *dd = &fc->d[PF_DECODE];
        s->resp_hdrs = (pf_hdrs){ 0 };
        s->status = 413;
        pf_filter_local_reply(fc, slot_at(fc, d, pos)->index, "Payload Too Large", 17);
        dd->dead = true;
        return;
    }
    fc->d[PF_ENCODE].dead = true;
    hcm__reply_unfiltered(s, 500, "Internal Server Error");
}

static bool buffer_at(pf_filter_chain *fc, pf_filter_dir d, size_t pos, const char *p, size_t n)
{
    fdir *dd = &fc->d[d];
    if (dd->buf.n + n > fc->s->hcm->buffer_limit || buf_append(&dd->buf, p, n) != 0) {
        overflow(fc, d, pos);
        return false;
    }
    return true;
}

/* Runs data (p, n, end) from position pos on.  Stops when a filter stops. */
static void run_data(pf_filter_chain *fc, pf_filter_dir d, size_t pos, const char *p, size_t n,
                     bool end)
{
    fdir *dd = &fc->d[d];
    for (; pos < fc->n; pos++) {
        if (fc->zombie || dd->dead)
            return;
        if (call_data(slot_at(fc, d, pos), d, p, n, end) == PF_FILTER_STOP) {
            if (fc->zombie || dd->dead)
                return;
            dd->stop_at = (int)pos;
            buffer_at(fc, d, pos, p, n);
            return;
        }
    }
    if (!fc->zombie && !dd->dead)
        term_data(fc, d, p, n, end);
}

static void run_trailers(pf_filter_chain *fc, pf_filter_dir d, size_t pos)
{
    fdir *dd = &fc->d[d];
    for (; pos < fc->n; pos++) {
        if (fc->zombie || dd->dead)
            return;
        if (call_trailers(slot_at(fc, d, pos), d) == PF_FILTER_STOP) {
            dd->stop_at = (int)pos;
            return;
        }
    }
    if (!fc->zombie && !dd->dead)
        term_trailers(fc, d);
}

/* Resumes direction d after position pos: pending headers, the buffered
 * body, then trailers / end. */
static void resume(pf_filter_chain *fc, pf_filter_dir d, size_t pos)
{
    fdir *dd = &fc->d[d];
    dd->stop_at = -1;
    if (dd->hdrs_pending) {
        dd->hdrs_pending = false;
        bool hend = dd->end_seen && !dd->trailers_seen && dd->buf.n == 0;
        for (; pos < fc->n; pos++) {
            if (fc->zombie || dd->dead)
                return;
            if (call_headers(slot_at(fc, d, pos), d, hend) == PF_FILTER_STOP) {
                if (fc->zombie || dd->dead)
                    return;
                dd->stop_at = (int)pos;
                dd->hdrs_pending = true;
                /* the buffered body stays buffered for this filter; let it
                 * see the end of the stream if that already came */
                if (dd->end_seen && !hend) {
                    pf_filter_status st = dd->trailers_seen
                        ? call_trailers(slot_at(fc, d, pos), d)
                        : call_data(slot_at(fc, d, pos), d, NULL, 0, true);
                    if (st == PF_FILTER_CONTINUE && !fc->zombie && !dd->dead)
                        resume(fc, d, pos + 1);
                }
                return;
            }
        }
        if (fc->zombie || dd->dead)
            return;
        term_headers(fc, d, hend);
        pos = fc->n;
        if (hend)
            return;
    }
    if (fc->zombie || dd->dead)
        return;
    /* the buffered body: taken out so a later stop can buffer afresh */
    pf_fbuf b = dd->buf;
    dd->buf = (pf_fbuf){ 0 };
    bool dend = dd->end_seen && !dd->trailers_seen;
    if (b.n || dend)
        run_data(fc, d, pos, b.p, b.n, dend);
    free(b.p);
    if (dd->trailers_seen && dd->stop_at < 0 && !fc->zombie && !dd->dead)
        run_trailers(fc, d, pos);
}

static bool do_headers(pf_filter_chain *fc, pf_filter_dir d, bool end)
{
    fdir *dd = &fc->d[d];
    enter(fc);
    dd->started = true;
    if (end)
        dd->end_seen = true;
    size_t pos = 0;
    for (; pos < fc->n; pos++) {
        if (call_headers(slot_at(fc, d, pos), d, end) == PF_FILTER_STOP) {
            if (!fc->zombie && !dd->dead) {
                dd->stop_at = (int)pos;
                dd->hdrs_pending = true;
            }
            return leave(fc);
        }
        if (fc->zombie || dd->dead)
            return leave(fc);
    }
    term_headers(fc, d, end);
    return leave(fc);
}

static bool do_data(pf_filter_chain *fc, pf_filter_dir d, const char *p, size_t n, bool end)
{
    fdir *dd = &fc->d[d];
    if (dd->dead)
        return true;
    enter(fc);
    if (end)
        dd->end_seen = true;
    if (dd->stop_at >= 0) {
        size_t pos = (size_t)dd->stop_at;
        if (buffer_at(fc, d, pos, p, n)) {
            const pf_fbuf *b = &dd->buf;
            pf_filter_status st = call_data(slot_at(fc, d, pos), d, b->p + b->n - n, n, end);
            if (st == PF_FILTER_CONTINUE && !fc->zombie && !dd->dead)
                resume(fc, d, pos + 1);
        }
        return leave(fc);
    }
    run_data(fc, d, 0, p, n, end);
    return leave(fc);
}

static bool do_trailers(pf_filter_chain *fc, pf_filter_dir d)
{
    fdir *dd = &fc->d[d];
    if (dd->dead)
        return true;
    enter(fc);
    dd->end_seen = dd->trailers_seen = true;
    if (dd->stop_at >= 0) {
        size_t pos = (size_t)dd->stop_at;
        if (call_trailers(slot_at(fc, d, pos), d) == PF_FILTER_CONTINUE && !fc->zombie &&
            !dd->dead)
            resume(fc, d, pos + 1);
        return leave(fc);
    }
    run_trailers(fc, d, 0);
    return leave(fc);
}

bool pf_filter_decode_headers(pf_filter_chain *fc, bool end) { return do_headers(fc, PF_DECODE, end); }
bool pf_filter_decode_data(pf_filter_chain *fc, const char *p, size_t n, bool end) { return do_data(fc, PF_DECODE, p, n, end); }
bool pf_filter_decode_trailers(pf_filter_chain *fc) { return do_trailers(fc, PF_DECODE); }
bool pf_filter_encode_headers(pf_filter_chain *fc, bool end) { return do_headers(fc, PF_ENCODE, end); }
bool pf_filter_encode_data(pf_filter_chain *fc, const char *p, size_t n, bool end) { return do_data(fc, PF_ENCODE, p, n, end); }
bool pf_filter_encode_trailers(pf_filter_chain *fc) { return do_trailers(fc, PF_ENCODE); }

bool pf_filter_continue(pf_filter_chain *fc, pf_filter_dir d, size_t index)
{
    fdir *dd = &fc->d[d];
    size_t pos = pos_of(fc, d, index);
    enter(fc);
    if (!dd->dead && dd->stop_at == (int)pos)
        resume(fc, d, pos + 1);
    return leave(fc);
}

bool pf_filter_local_reply(pf_filter_chain *fc, size_t index, const char *body, size_t blen)
{
    pf_stream *s = fc->s;
    enter(fc);
    fdir *dq = &fc->d[PF_DECODE], *dr = &fc->d[PF_ENCODE];
    dq->dead = true;
    dq->hdrs_pending = false;
    dq->stop_at = -1;
    if (dr->started || s->resp_headers_sent) {
        s->codec->reset(s);
        return leave(fc);
    }
    hcm__prepare_filter_reply(s, blen);
    /* through the encode filters that saw the request before `index` */
    dr->started = true;
    size_t pos = pos_of(fc, PF_ENCODE, index) + 1;
    bool end = blen == 0;
    if (end)
        dr->end_seen = true;
    for (; pos < fc->n; pos++) {
        if (fc->zombie || dr->dead)
            return leave(fc);
        if (call_headers(slot_at(fc, PF_ENCODE, pos), PF_ENCODE, end) == PF_FILTER_STOP) {
            if (fc->zombie || dr->dead)
                return leave(fc);
            dr->stop_at = (int)pos;
            dr->hdrs_pending = true;
            if (!end) {
                if (buffer_at(fc, PF_ENCODE, pos, body, blen)) {
                    dr->end_seen = true;
                    if (call_data(slot_at(fc, PF_ENCODE, pos), PF_ENCODE, dr->buf.p, blen, true) ==
                            PF_FILTER_CONTINUE &&
                        !fc->zombie && !dr->dead)
                        resume(fc, PF_ENCODE, pos + 1);
                }
            }
            return leave(fc);
        }
    }
    if (!fc->zombie && !dr->dead) {
        term_headers(fc, PF_ENCODE, end);
        if (!end && !fc->zombie) {
            dr->end_seen = true;
            run_data(fc, PF_ENCODE, fc->n, body, blen, true);
        }
    }
    return leave(fc);
}

bool pf_filter_local_error(pf_filter_chain *fc, size_t index, pf_filter_dir d, const char *msg)
{
    pf_stream *s = fc->s;
    if (d == PF_ENCODE) {
        /* the response is this filter's: replace it unless it is on the wire */
        enter(fc);
        fc->d[PF_DECODE].dead = fc->d[PF_ENCODE].dead = true;
        hcm__reply_unfiltered(s, 500, "");
        return leave(fc);
    }
    s->resp_hdrs = (pf_hdrs){ 0 };
    s->status = 500;
    if (grpc_is_request(s) && !s->internal) {
        /* trailers-only, as the connection manager's own local replies */
        char st[8];
        int n = snprintf(st, sizeof st, "%d", grpc_status_for_local_reply(500, s->response_flags));
        pf_str sts;
        pf_arena_dup(&s->arena, &sts, st, (size_t)n);
        s->status = 200;
        pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("content-type"), PF_STR("application/grpc"));
        pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("grpc-status"), sts);
        pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("grpc-message"),
                    grpc_encode_message(&s->arena, msg, strlen(msg)));
    }
    return pf_filter_local_reply(fc, index, NULL, 0);
}
