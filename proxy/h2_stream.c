/* HTTP/2 downstream streams: the request going in (headers, body under
 * flow control, trailers) and the pf_server_codec_ops the connection
 * manager answers through.
 *
 * Request bodies: a DATA chunk is handed to the connection manager and
 * consumed (window given back to the peer) at once, unless the stream is
 * paused (the upstream is full) — then it is copied into h->req and
 * consumed only when delivered after the resume.  The peer can therefore
 * never have more than the advertised window in flight: per stream at most
 * initial_stream_window_size, per connection initial_connection_window_size
 * bytes are buffered here.
 *
 * Response bodies: encode_data copies into h->resp; nghttp2 pulls from it
 * as the peer's window allows (NO_COPY: h2__send_data writes frame header
 * and payload straight to the socket). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "admin/stats.h"
#include "proxy/h2_internal.h"
#include "proxy/hcm.h"
#include "proxy/log.h"
#include "proxy/sock.h"

static inline h2stream *h2_of(pf_stream *s) { return s->codec_conn; }

h2stream *h2__stream_new(h2conn *c, int32_t id)
{
    h2stream *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    pf_stream *s = pf_stream_new(c->w, &h2__ops, h, c->dc->listener);
    if (!s) {
        free(h);
        return NULL;
    }
    h->c = c;
    h->id = id;
    h->s = s;
    pf_outq_init(&h->resp);
    pf_outq_init(&h->req);
    h->start_ms = h->last_active_ms = uv_now(&c->w->loop);
    s->hcm = c->dc->hcm;
    s->downstream_remote = &c->dc->peer;
    s->downstream_local = &c->dc->local;
    s->protocol = PF_STR("HTTP/2");
    hcm_stream_started(s, c->dc);
    pf_queue_insert_tail(&c->streams, &h->link);
    c->n_streams++;
    c->opened++;
    stats_inc(c->w->stats, c->ls->rq_total);
    stats_inc(c->w->stats, c->ls->rq_http2_total);
    stats_gauge_add(c->w->stats, c->ls->rq_active, 1);
    stats_gauge_add(c->w->stats, c->hs->streams_active, 1);
    return h;
}

void h2__stream_free(h2stream *h)
{
    h2conn *c = h->c;
    pf_queue_remove(&h->link);
    c->n_streams--;
    if (h->blocked)
        c->n_blocked--;
    pf_outq_clear(&h->resp, &c->w->chunks);
    pf_outq_clear(&h->req, &c->w->chunks);
    free(h->trailers);
    stats_gauge_add(c->w->stats, c->hs->streams_active, -1);
    free(h);
}

/* Gives back the window of request bytes we hold and will never deliver. */
static void drop_request_buffer(h2stream *h)
{
    h2conn *c = h->c;
    /* bytes being delivered right now were consumed already */
    if (h->req.bytes > h->req_inflight && !c->dead)
        nghttp2_session_consume(c->ng, h->id, h->req.bytes - h->req_inflight);
    pf_outq_clear(&h->req, &c->w->chunks);
    h->req_end_pending = h->req_trailers_pending = false;
}

static void detach(h2stream *h)
{
    h->s = NULL;
    if (h->blocked) {
        h->blocked = false;
        h->c->n_blocked--;
    }
    drop_request_buffer(h);
}

void h2__stream_reset_hcm(h2stream *h, uint32_t flags)
{
    pf_stream *s = h->s;
    if (!s)
        return;
    detach(h);
    hcm_on_stream_reset(s, flags);
}

/* ---- request ---- */

static int set_pseudo(pf_stream *s, pf_str *dst, const uint8_t *v, size_t n)
{
    if (dst->p)
        return -1;                  /* duplicates: nghttp2 rejects them first */
    return pf_arena_dup(&s->arena, dst, (const char *)v, n);
}

/* Called for every header field nghttp2 decoded (names are lower-case and
 * validated by nghttp2's HTTP messaging checks).  Returns 0 or an nghttp2
 * error that resets the stream. */
int h2__on_header(h2stream *h, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                  const uint8_t *value, size_t valuelen)
{
    h2conn *c = h->c;
    pf_stream *s = h->s;
    if (!s)
        return 0;
    h->header_bytes += namelen + valuelen;
    if (h->header_bytes > c->header_limit) {
        stats_inc(c->w->stats, c->hs->header_overflow);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    bool trailers = frame->headers.cat == NGHTTP2_HCAT_HEADERS;
    if (!trailers && namelen && name[0] == ':') {
        pf_str *dst = NULL;
        pf_str nm = { (const char *)name, namelen };
        if (pf_str_eq_lit(nm, ":method"))
            dst = &s->method;
        else if (pf_str_eq_lit(nm, ":path"))
            dst = &s->path;
        else if (pf_str_eq_lit(nm, ":authority"))
            dst = &s->authority;
        else if (pf_str_eq_lit(nm, ":scheme"))
            dst = &s->scheme;
        if (!dst)
            return 0;
        return set_pseudo(s, dst, value, valuelen) ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
    }
    if (!trailers && namelen == 6 && memcmp(name, "cookie", 6) == 0) {
        /* RFC 9113 8.2.3: crumbs are joined with "; " for HTTP/1.1 */
        int rc = h->cookie.p ? pf_arena_append(&s->arena, &h->cookie, "; ", 2) : 0;
        if (!rc && !h->cookie.p)
            rc = pf_arena_dup(&s->arena, &h->cookie, (const char *)value, valuelen);
        else if (!rc)
            rc = pf_arena_append(&s->arena, &h->cookie, (const char *)value, valuelen);
        return rc ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
    }
    pf_hdrs *into = trailers ? &s->req_trailers : &s->req_hdrs;
    switch (hcm_check_header(s, into, (pf_str){ (const char *)name, namelen })) {
    case HCM_HDR_ADD:
        break;
    case HCM_HDR_DROP:
        stats_inc(c->w->stats, c->w->ps->http2_hdrs.dropped_underscores);
        return 0;
    case HCM_HDR_REJECT:
        stats_inc(c->w->stats, c->w->ps->http2_hdrs.rejected_underscores);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;   /* Envoy resets the stream */
    case HCM_HDR_TOO_MANY:
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    pf_str n, v;
    if (pf_arena_dup(&s->arena, &n, (const char *)name, namelen) ||
        pf_arena_dup(&s->arena, &v, (const char *)value, valuelen) ||
        pf_hdrs_add(into, &s->arena, n, v))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

/* The request's header block is complete. */
void h2__on_request_headers(h2stream *h, bool end)
{
    h2conn *c = h->c;
    pf_stream *s = h->s;
    if (!s)
        return;
    if (!s->scheme.p)
        s->scheme = PF_STR("http");
    if (h->cookie.p)
        pf_hdrs_add(&s->req_hdrs, &s->arena, PF_STR("cookie"), h->cookie);
    pf_hdr *host = pf_hdrs_get_lit(&s->req_hdrs, "host");
    if (host && !s->authority.p)
        s->authority = host->value;
    pf_hdrs_remove_lit(&s->req_hdrs, "host");
    if (!s->authority.p)
        s->authority = PF_STR("");
    s->is_head = pf_str_eq_lit(s->method, "HEAD");
    s->req_headers_done = true;
    h->header_bytes = 0;
    if (pf_str_eq_lit(s->method, "CONNECT")) {
        /* Envoy without allow_connect / upgrade_configs refuses CONNECT. */
        if (end)
            s->req_end = true;
        hcm_local_reply(s, 403, NULL, 0);
        return;
    }
    /* Envoy answers Expect: 100-continue itself and does not forward it. */
    pf_hdr *expect = pf_hdrs_get_lit(&s->req_hdrs, "expect");
    if (expect && pf_str_ieq(expect->value, "100-continue", 12)) {
        pf_hdrs_remove_lit(&s->req_hdrs, "expect");
        if (!end) {
            static const nghttp2_nv cont[] = {
                { (uint8_t *)":status", (uint8_t *)"100", 7, 3, NGHTTP2_NV_FLAG_NONE } };
            nghttp2_submit_headers(c->ng, NGHTTP2_FLAG_NONE, h->id, NULL, cont, 1, NULL);
        }
    }
    pf_hdrs_strip_hop_by_hop(&s->req_hdrs);
    hcm_on_request_headers(s, end);
    h2__kick(c);
}

void h2__on_request_trailers(h2stream *h)
{
    pf_stream *s = h->s;
    if (!s)
        return;
    stats_inc(h->c->w->stats, h->c->hs->trailers);
    if (h->req_paused || h->req.bytes) {
        h->req_trailers_pending = true;
        return;
    }
    if (s->req_trailers.n)
        hcm_on_request_trailers(s);
    else
        hcm_on_request_end(s);
    h2__kick(h->c);
}

void h2__on_request_end(h2stream *h)
{
    pf_stream *s = h->s;
    if (!s || s->req_end)
        return;
    if (h->req_paused || h->req.bytes) {
        h->req_end_pending = true;
        return;
    }
    hcm_on_request_end(s);
    h2__kick(h->c);
}

void h2__on_request_data(h2stream *h, const uint8_t *data, size_t len)
{
    h2conn *c = h->c;
    pf_stream *s = h->s;
    if (!s || s->req_end) {
        nghttp2_session_consume(c->ng, h->id, len);     /* nobody wants it */
        return;
    }
    s->bytes_received += len;
    if (h->req_paused || h->req.bytes) {
        if (pf_outq_append(&h->req, &c->w->chunks, data, len) < 0) {
            nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, h->id, NGHTTP2_INTERNAL_ERROR);
            h2__stream_reset_hcm(h, 0);
        }
        return;
    }
    nghttp2_session_consume(c->ng, h->id, len);
    hcm_on_request_data(s, (const char *)data, len);
}

/* Delivers what h held while paused, until it pauses again. */
static void resume_stream(h2stream *h)
{
    h2conn *c = h->c;
    h->resume_pending = false;
    while (h->s && !h->req_paused && h->req.bytes) {
        uv_buf_t b;
        if (pf_outq_peek(&h->req, &b, 1) != 1)
            break;
        size_t n = b.len;
        nghttp2_session_consume(c->ng, h->id, n);
        h->req_inflight = n;
        hcm_on_request_data(h->s, b.base, n);
        h->req_inflight = 0;
        /* the stream may have been reset or finished meanwhile */
        if (h->req.bytes >= n)
            pf_outq_consume(&h->req, &c->w->chunks, n);
    }
    if (!h->s || h->req_paused || h->req.bytes)
        return;
    if (h->req_trailers_pending) {
        h->req_trailers_pending = false;
        if (h->s->req_trailers.n)
            hcm_on_request_trailers(h->s);
        else
            hcm_on_request_end(h->s);
    } else if (h->req_end_pending) {
        h->req_end_pending = false;
        hcm_on_request_end(h->s);
    }
}

void h2__process_resumes(h2conn *c)
{
    if (!c->resumes)
        return;
    c->resumes = false;
    for (pf_queue *q = c->streams.next; q != &c->streams; q = q->next) {
        h2stream *h = pf_queue_data(q, h2stream, link);
        if (h->resume_pending)
            resume_stream(h);
    }
}

void h2__notify_unblocked(h2conn *c)
{
    if (!c->n_blocked || pf_sock_above_high(&c->dc->sock))
        return;
    for (pf_queue *q = c->streams.next; q != &c->streams && c->n_blocked; q = q->next) {
        h2stream *h = pf_queue_data(q, h2stream, link);
        if (!h->blocked || h->resp.bytes > H2_STREAM_LOW_WATERMARK)
            continue;
        h->blocked = false;
        c->n_blocked--;
        if (h->s)
            hcm_on_downstream_drain(h->s);
    }
}

/* ---- response ---- */

static bool connection_specific(pf_str n)
{
    return pf_str_eq_lit(n, "connection") || pf_str_eq_lit(n, "keep-alive") ||
           pf_str_eq_lit(n, "proxy-connection") || pf_str_eq_lit(n, "transfer-encoding") ||
           pf_str_eq_lit(n, "upgrade") || pf_str_eq_lit(n, "te");
}

/* Makes nv entries for h (lower-casing names in the arena when needed).
 * nva has room for h->n entries; returns how many were filled. */
static size_t fill_nv(pf_stream *s, const pf_hdrs *h, nghttp2_nv *nva)
{
    size_t k = 0;
    for (uint32_t i = 0; i < h->n; i++) {
        pf_str n = h->v[i].name;
        if (!n.n || n.p[0] == ':')
            continue;
        bool upper = false;
        for (size_t j = 0; j < n.n && !upper; j++)
            upper = isupper((unsigned char)n.p[j]) != 0;
        if (upper) {
            char *lc = pf_arena_alloc(&s->arena, n.n);
            if (!lc)
                continue;
            for (size_t j = 0; j < n.n; j++)
                lc[j] = (char)tolower((unsigned char)n.p[j]);
            n = (pf_str){ lc, n.n };
        }
        if (connection_specific(n))
            continue;
        nva[k++] = (nghttp2_nv){ (uint8_t *)n.p, (uint8_t *)h->v[i].value.p, n.n,
                                 h->v[i].value.n, NGHTTP2_NV_FLAG_NONE };
    }
    return k;
}

/* Submits a HEADERS frame: :status and the headers; prov NULL with end
 * ends the stream.  Returns an nghttp2 error or 0. */
static int submit_head(h2stream *h, int status, const pf_hdrs *hd, bool interim,
                       const nghttp2_data_provider *prov)
{
    h2conn *c = h->c;
    nghttp2_nv stack[32], *nva = stack;
    if (hd->n + 1 > sizeof stack / sizeof stack[0] &&
        !(nva = malloc((hd->n + 1) * sizeof *nva)))
        return NGHTTP2_ERR_NOMEM;
    char st[8];
    int sl = snprintf(st, sizeof st, "%d", status);
    nva[0] = (nghttp2_nv){ (uint8_t *)":status", (uint8_t *)st, 7, (size_t)sl,
                           NGHTTP2_NV_FLAG_NONE };
    size_t n = 1 + fill_nv(h->s, hd, nva + 1);
    int rv = interim ? nghttp2_submit_headers(c->ng, NGHTTP2_FLAG_NONE, h->id, NULL, nva, n, NULL)
                     : nghttp2_submit_response(c->ng, h->id, nva, n, prov);
    if (nva != stack)
        free(nva);
    return rv < 0 ? rv : 0;
}

/* nghttp2 asks for the next DATA frame's length (NO_COPY: h2__send_data
 * writes the bytes).  Defers while the queue is empty and more will come. */
static ssize_t on_data_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *source, void *user_data)
{
    h2stream *h = source->ptr;
    size_t avail = h->resp.bytes;
    if (avail == 0 && !h->resp_eof) {
        h->data_deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = avail < length ? avail : length;
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == avail && h->resp_eof) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (h->trailers) {
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            nghttp2_submit_trailer(ng, id, h->trailers, h->n_trailers);
            free(h->trailers);
            h->trailers = NULL;
        }
    }
    return (ssize_t)n;
}

int h2__send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
                      size_t length, nghttp2_data_source *source, void *user_data)
{
    h2conn *c = user_data;
    h2stream *h = source->ptr;
    pf_sock *sock = &c->dc->sock;
    if (pf_sock_above_high(sock))
        return NGHTTP2_ERR_WOULDBLOCK;
    pf_sock_write(sock, framehd, 9);
    size_t left = length;
    while (left) {
        uv_buf_t b;
        if (pf_outq_peek(&h->resp, &b, 1) != 1)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        size_t n = b.len < left ? b.len : left;
        pf_sock_write(sock, b.base, n);
        pf_outq_consume(&h->resp, &c->w->chunks, n);
        left -= n;
    }
    c->outbound_data_frames++;
    h2__stream_activity(h);
    return 0;
}

static void h2_encode_headers(pf_stream *s, bool end)
{
    h2stream *h = h2_of(s);
    int st = s->status;
    h->drop_body = s->is_head || st == 204 || st == 304;
    h->resp_submitted = true;
    nghttp2_data_provider prov = { .source.ptr = h, .read_callback = on_data_read };
    bool no_data = end || h->drop_body;
    if (no_data)
        h->resp_eof = true;
    if (submit_head(h, st, &s->resp_hdrs, false, no_data ? NULL : &prov) != 0) {
        s->codec->reset(s);
        return;
    }
    h2__stream_activity(h);
    h2__kick(h->c);
}

static void h2_encode_1xx(pf_stream *s, int status, const pf_hdrs *hd)
{
    h2stream *h = h2_of(s);
    if (status == 101 || h->resp_submitted)
        return;
    submit_head(h, status, hd, true, NULL);
    h2__kick(h->c);
}

static void h2_encode_data(pf_stream *s, const char *p, size_t n, bool end)
{
    h2stream *h = h2_of(s);
    h2conn *c = h->c;
    if (h->drop_body || h->resp_eof)
        return;
    if (n && pf_outq_append(&h->resp, &c->w->chunks, p, n) < 0) {
        s->codec->reset(s);
        return;
    }
    if (end)
        h->resp_eof = true;
    if (h->data_deferred) {
        h->data_deferred = false;
        nghttp2_session_resume_data(c->ng, h->id);
    }
    h2__stream_activity(h);
    h2__kick(c);
}

static void h2_encode_trailers(pf_stream *s)
{
    h2stream *h = h2_of(s);
    h2conn *c = h->c;
    if (h->drop_body || h->resp_eof)
        return;
    const pf_hdrs *t = &s->resp_trailers;
    size_t bytes = 0;
    for (uint32_t i = 0; i < t->n; i++)
        bytes += t->v[i].name.n + t->v[i].value.n;
    nghttp2_nv *nva = malloc(t->n * sizeof *nva + bytes + 1);
    if (!nva) {
        s->codec->reset(s);
        return;
    }
    size_t n = fill_nv(s, t, nva);
    /* copy names and values behind the array: s is freed before they are sent */
    char *p = (char *)(nva + t->n);
    for (size_t i = 0; i < n; i++) {
        memcpy(p, nva[i].name, nva[i].namelen);
        nva[i].name = (uint8_t *)p;
        p += nva[i].namelen;
        memcpy(p, nva[i].value, nva[i].valuelen);
        nva[i].value = (uint8_t *)p;
        p += nva[i].valuelen;
    }
    if (n) {
        h->trailers = nva;
        h->n_trailers = n;
    } else {
        free(nva);
    }
    h->resp_eof = true;
    if (h->data_deferred) {
        h->data_deferred = false;
        nghttp2_session_resume_data(c->ng, h->id);
    }
    h2__kick(c);
}

static void h2_reset(pf_stream *s)
{
    h2stream *h = h2_of(s);
    h2conn *c = h->c;
    if (!c->dead)
        nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, h->id, NGHTTP2_NO_ERROR);
    pf_outq_clear(&h->resp, &c->w->chunks);
    h2__stream_reset_hcm(h, 0);
    h2__kick(c);
}

static void h2_pause_request(pf_stream *s, bool pause)
{
    h2stream *h = h2_of(s);
    if (h->req_paused == pause)
        return;
    h->req_paused = pause;
    if (!pause && (h->req.bytes || h->req_end_pending || h->req_trailers_pending)) {
        h->resume_pending = true;
        h->c->resumes = true;
        h2__kick(h->c);
    }
}

static bool h2_write_blocked(pf_stream *s)
{
    h2stream *h = h2_of(s);
    if (h->resp.bytes < H2_STREAM_HIGH_WATERMARK && !pf_sock_above_high(&h->c->dc->sock))
        return false;
    if (!h->blocked) {
        h->blocked = true;
        h->c->n_blocked++;
    }
    return true;
}

static void h2_stream_done(pf_stream *s)
{
    h2stream *h = h2_of(s);
    if (s->req_abandoned)
        h->rst_after_end = true;    /* the client is still sending: tell it to stop */
    detach(h);
    h2__kick(h->c);
}

const pf_server_codec_ops h2__ops = {
    .encode_headers = h2_encode_headers,
    .encode_1xx = h2_encode_1xx,
    .encode_data = h2_encode_data,
    .encode_trailers = h2_encode_trailers,
    .reset = h2_reset,
    .pause_request = h2_pause_request,
    .write_blocked = h2_write_blocked,
    .stream_done = h2_stream_done,
};
