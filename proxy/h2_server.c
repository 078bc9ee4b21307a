/* HTTP/2 downstream connections: the nghttp2 server session, input, output,
 * GOAWAY, the stream timeouts sweep and the flood / abuse defences.
 *
 * Input is fed to nghttp2_session_mem_recv as it arrives; nghttp2 calls
 * back into h2_stream.c to build requests.  Output is never produced inside
 * a callback: every change kicks a pf_deferred, and once per loop iteration
 * nghttp2_session_send writes the frames of all streams into the socket's
 * queue (one writev).  While the socket is above its high watermark the
 * send callbacks return WOULDBLOCK and nghttp2 keeps the frames; the
 * socket's on_drain kicks again.
 *
 * Defences (Envoy's semantics, Http2ProtocolOptions):
 *   max_concurrent_streams       SETTINGS; excess streams get REFUSED_STREAM
 *   max_request_headers_kb       per header block; over it: RST_STREAM, header_overflow
 *   CONTINUATION flood           nghttp2 max_continuations; too_many_header_frames
 *   SETTINGS / PING flood        nghttp2 max_outbound_ack (= max_outbound_control_frames),
 *                                max_settings; outbound_control_flood
 *   outbound queue               max_outbound_frames; outbound_flood
 *   PRIORITY / WINDOW_UPDATE /   Envoy's per-connection budgets; GOAWAY ENHANCE_YOUR_CALM
 *   empty frames
 *   rapid reset                  Envoy's premature reset rule (below); GOAWAY
 *                                ENHANCE_YOUR_CALM, downstream_rq_too_many_premature_resets
 *   HPACK                        our decoder table is SETTINGS_HEADER_TABLE_SIZE
 *                                (hpack_table_size), the encoder's is capped the same;
 *                                decoded sizes count against the header limit
 *   malformed requests           rx_messaging_error; GOAWAY PROTOCOL_ERROR unless
 *                                stream_error_on_invalid_http_message */
#include "proxy/h2_server.h"

#include <stdlib.h>
#include <string.h>

#include "admin/stats.h"
#include "proxy/h2_internal.h"
#include "proxy/hcm.h"
#include "proxy/log.h"
#include "proxy/sock.h"

/* Envoy's overload.premature_reset_total_stream_count and min stream
 * lifetime: a stream the client resets within 1 s of opening it, before its
 * response ended, is "premature".  The connection is closed once premature
 * resets reach half of the limit, or half of all closed streams after
 * `limit` streams. */
#define H2_PREMATURE_RESET_LIMIT 500
#define H2_PREMATURE_RESET_MS 1000

static void conn_check_close(h2conn *c);

void h2__kick(h2conn *c)
{
    if (!c->dead)
        pf_worker_defer(c->w, &c->flush);
}

void h2__stream_activity(h2stream *h)
{
    h->last_active_ms = uv_now(&h->c->w->loop);
    if (h->s)
        h->s->last_active_ms = h->last_active_ms;
}

void h2__terminate(h2conn *c, uint32_t code)
{
    if (c->dead || c->closing)
        return;
    c->closing = true;
    nghttp2_session_terminate_session(c->ng, code);
    pf_sock_read_stop(&c->dc->sock);
    h2__kick(c);
}

/* Stops everything now: resets every stream still with the connection
 * manager and closes the socket (gracefully unless `reset`). */
static void conn_shutdown(h2conn *c, bool reset, uint32_t flags)
{
    if (c->dead)
        return;
    c->dead = true;
    pf_worker_cancel_defer(c->w, &c->flush);
    for (pf_queue *q = c->streams.next; q != &c->streams; q = q->next) {
        h2stream *h = pf_queue_data(q, h2stream, link);
        h2__stream_reset_hcm(h, flags);
    }
    if (reset)
        pf_sock_reset(&c->dc->sock);
    else
        pf_sock_close(&c->dc->sock);
}

/* ---- stream timeouts ---- */

/* The connection's timer (proxy/downstream.c): the connection manager's
 * timeouts for streams it still has; stream_idle_timeout alone for streams
 * it is done with whose response waits for flow-control window. */
static uint64_t h2_sweep(void *ctx, uint64_t now)
{
    h2conn *c = ctx;
    uint64_t next = UINT64_MAX, idle = c->dc->hcm->opts.stream_idle_timeout_ms;
    if (c->dead)
        return next;
    for (pf_queue *q = c->streams.next; q != &c->streams; q = q->next) {
        h2stream *h = pf_queue_data(q, h2stream, link);
        uint64_t due = h->s ? hcm_stream_deadline(h->s)
                     : idle ? h->last_active_ms + idle : UINT64_MAX;
        if (due > now) {
            next = due < next ? due : next;
            continue;
        }
        /* h stays in the list until nghttp2 closes the stream. */
        if (h->s) {
            hcm_stream_expire(h->s, now);
        } else {
            h->last_active_ms = now;
            stats_inc(c->w->stats, c->ls->rq_idle_timeout);
            nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, h->id, NGHTTP2_NO_ERROR);
            pf_outq_clear(&h->resp, &c->w->chunks);
        }
        if (c->dead)
            return UINT64_MAX;
        due = h->s ? hcm_stream_deadline(h->s) : UINT64_MAX;
        next = due < next ? due : next;
    }
    h2__kick(c);
    return next;
}

/* ---- nghttp2 callbacks ---- */

static ssize_t on_send(nghttp2_session *ng, const uint8_t *data, size_t len, int flags,
                       void *user_data)
{
    h2conn *c = user_data;
    if (pf_sock_above_high(&c->dc->sock))
        return NGHTTP2_ERR_WOULDBLOCK;
    if (pf_sock_write(&c->dc->sock, data, len) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)len;
}

static h2stream *stream_of(h2conn *c, int32_t id)
{
    return id ? nghttp2_session_get_stream_user_data(c->ng, id) : NULL;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
    h2conn *c = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    h2stream *h = stream_of(c, frame->hd.stream_id);
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        if (h)
            h->header_bytes = 0;
        return 0;
    }
    if (!(h = h2__stream_new(c, frame->hd.stream_id)))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, h);
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    h2conn *c = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    h2stream *h = stream_of(c, frame->hd.stream_id);
    if (!h) {
        stats_inc(c->w->stats, c->hs->headers_cb_no_stream);
        return 0;
    }
    return h2__on_header(h, frame, name, namelen, value, valuelen);
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user_data)
{
    h2conn *c = user_data;
    h2stream *h = stream_of(c, id);
    if (!h) {
        nghttp2_session_consume(ng, id, len);
        return 0;
    }
    h2__stream_activity(h);
    h2__on_request_data(h, data, len);
    return 0;
}

/* Envoy's inbound frame budgets; true when the connection must go. */
static bool inbound_flood(h2conn *c, const nghttp2_frame *f)
{
    const cfg_http2 *o = c->cfg;
    stats_shard *sh = c->w->stats;
    switch (f->hd.type) {
    case NGHTTP2_PRIORITY:
        if (++c->priority_frames >
            (uint64_t)o->max_inbound_priority_frames_per_stream * (1 + c->opened)) {
            stats_inc(sh, c->hs->inbound_priority_frames_flood);
            return true;
        }
        break;
    case NGHTTP2_WINDOW_UPDATE:
        if (++c->window_update_frames >
            5 + 2 * (c->opened + (uint64_t)o->max_inbound_window_update_frames_per_data_frame_sent *
                                     c->outbound_data_frames)) {
            stats_inc(sh, c->hs->inbound_window_update_frames_flood);
            return true;
        }
        break;
    case NGHTTP2_DATA:
    case NGHTTP2_HEADERS:
        if (f->hd.length == 0 && !(f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
            if (++c->consecutive_empty > o->max_consecutive_inbound_frames_with_empty_payload) {
                stats_inc(sh, c->hs->inbound_empty_frames_flood);
                return true;
            }
        } else {
            c->consecutive_empty = 0;
        }
        break;
    default:
        break;
    }
    return false;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
    h2conn *c = user_data;
    if (inbound_flood(c, frame)) {
        h2__terminate(c, NGHTTP2_ENHANCE_YOUR_CALM);
        return 0;
    }
    h2stream *h = stream_of(c, frame->hd.stream_id);
    if (h)
        h2__stream_activity(h);
    bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if (!h)
            break;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
            h2__on_request_headers(h, end);
        else if (end)
            h2__on_request_trailers(h);
        else
            stats_inc(c->w->stats, c->hs->too_many_header_frames);
        break;
    case NGHTTP2_DATA:
        if (h && end)
            h2__on_request_end(h);
        break;
    case NGHTTP2_RST_STREAM:
        stats_inc(c->w->stats, c->hs->rx_reset);
        if (h)
            h->rx_rst = true;
        break;
    default:
        break;
    }
    return 0;
}

static int on_invalid_frame(nghttp2_session *ng, const nghttp2_frame *frame, int lib_error,
                            void *user_data)
{
    h2conn *c = user_data;
    if (lib_error != NGHTTP2_ERR_HTTP_HEADER && lib_error != NGHTTP2_ERR_HTTP_MESSAGING)
        return 0;
    stats_inc(c->w->stats, c->hs->rx_messaging_error);
    /* nghttp2 resets the stream (PROTOCOL_ERROR); Envoy's default closes
     * the whole connection. */
    if (!c->cfg->stream_error_on_invalid_http_message)
        h2__terminate(c, NGHTTP2_PROTOCOL_ERROR);
    return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
    h2conn *c = user_data;
    switch (frame->hd.type) {
    case NGHTTP2_RST_STREAM:
        stats_inc(c->w->stats, c->hs->tx_reset);
        break;
    case NGHTTP2_GOAWAY:
        stats_inc(c->w->stats, c->hs->goaway_sent);
        break;
    case NGHTTP2_DATA:
    case NGHTTP2_HEADERS:
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            h2stream *h = stream_of(c, frame->hd.stream_id);
            if (h && h->rst_after_end && !h->s) {
                h->rst_after_end = false;
                nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, h->id, NGHTTP2_NO_ERROR);
            }
        }
        break;
    default:
        break;
    }
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *user_data)
{
    h2conn *c = user_data;
    h2stream *h = stream_of(c, id);
    if (!h)
        return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    c->closed++;
    if (h->s) {
        /* closed before the connection manager finished: a reset */
        uint32_t flags = h->rx_rst ? PF_RF_DC : error_code == NGHTTP2_PROTOCOL_ERROR ? PF_RF_DPE : 0;
        if (h->rx_rst && uv_now(&c->w->loop) - h->start_ms < H2_PREMATURE_RESET_MS)
            c->premature_resets++;
        h2__stream_reset_hcm(h, flags);
    }
    h2__stream_free(h);
    if (c->n_streams == 0 && !c->dead)
        pf_dconn_set_idle(c->dc, true);
    if (c->premature_resets * 2 >= H2_PREMATURE_RESET_LIMIT ||
        (c->closed >= H2_PREMATURE_RESET_LIMIT && c->premature_resets * 2 >= c->closed)) {
        if (!c->closing) {
            pf_debug("h2: closing connection: %llu premature resets of %llu streams",
                     (unsigned long long)c->premature_resets, (unsigned long long)c->closed);
            stats_inc(c->w->stats, c->ls->rq_too_many_premature_resets);
        }
        h2__terminate(c, NGHTTP2_ENHANCE_YOUR_CALM);
    }
    return 0;
}

static int on_error(nghttp2_session *ng, int lib_error, const char *msg, size_t len,
                    void *user_data)
{
    pf_debug("h2: %.*s", (int)len, msg);
    return 0;
}

/* ---- output ---- */

/* Closes the socket once nghttp2 has nothing more to say or hear. */
static void conn_check_close(h2conn *c)
{
    if (c->dead)
        return;
    bool want_write = nghttp2_session_want_write(c->ng);
    bool want_read = nghttp2_session_want_read(c->ng);
    if ((!want_read && !want_write) || (c->closing && !want_write) ||
        (c->draining && c->n_streams == 0 && !want_write))
        conn_shutdown(c, false, PF_RF_DC);
}

static void on_flush(pf_deferred *d)
{
    h2conn *c = pf_queue_data(d, h2conn, flush);
    if (c->dead)
        return;
    h2__process_resumes(c);
    if (c->dead)
        return;
    int rv = nghttp2_session_send(c->ng);
    if (rv != 0) {
        pf_debug("h2: send: %s", nghttp2_strerror(rv));
        conn_shutdown(c, true, PF_RF_DC);
        return;
    }
    h2__notify_unblocked(c);
    conn_check_close(c);
}

/* ---- the pf_codec_vtbl ---- */

static void h2_on_read(void *ctx, const char *data, size_t n)
{
    h2conn *c = ctx;
    if (c->dead || c->closing)
        return;
    ssize_t rv = nghttp2_session_mem_recv(c->ng, (const uint8_t *)data, n);
    if (rv < 0) {
        pf_debug("h2: recv: %s", nghttp2_strerror((int)rv));
        stats_inc(c->w->stats, c->ls->cx_protocol_error);
        if (rv == NGHTTP2_ERR_FLOODED)
            stats_inc(c->w->stats, c->hs->outbound_control_flood);
        else if (rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
            stats_inc(c->w->stats, c->hs->too_many_header_frames);
        if (rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC || rv == NGHTTP2_ERR_FLOODED) {
            conn_shutdown(c, false, PF_RF_DPE);
            return;
        }
        /* fatal for the session: say why, then close */
        h2__terminate(c, rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS ? NGHTTP2_ENHANCE_YOUR_CALM
                                                                 : NGHTTP2_PROTOCOL_ERROR);
        h2__kick(c);
        return;
    }
    if (nghttp2_session_get_outbound_queue_size(c->ng) > c->cfg->max_outbound_frames) {
        stats_inc(c->w->stats, c->hs->outbound_flood);
        conn_shutdown(c, true, PF_RF_DPE);
        return;
    }
    h2__kick(c);
}

static void h2_on_eof(void *ctx)
{
    conn_shutdown(ctx, false, PF_RF_DC);
}

static void h2_on_drain(void *ctx)
{
    h2__kick(ctx);
}

static void h2_on_close(void *ctx)
{
    h2conn *c = ctx;
    if (!c->dead) {
        c->dead = true;
        for (pf_queue *q = c->streams.next; q != &c->streams; q = q->next)
            h2__stream_reset_hcm(pf_queue_data(q, h2stream, link), PF_RF_DC);
    }
    pf_worker_cancel_defer(c->w, &c->flush);
    while (!pf_queue_empty(&c->streams))
        h2__stream_free(pf_queue_data(c->streams.next, h2stream, link));
    nghttp2_session_del(c->ng);
    c->ng = NULL;
    free(c);
}

static void *h2_attach(pf_dconn *dc)
{
    h2conn *c = calloc(1, sizeof *c);
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    if (!c)
        return NULL;
    c->dc = dc;
    c->w = dc->w;
    c->ls = dc->ls;
    c->hs = &dc->w->ps->http2;
    c->cfg = &dc->hcm->http2;
    c->header_limit = (size_t)dc->hcm->max_request_headers_kb * 1024;
    pf_queue_init(&c->streams);
    pf_queue_init(&c->flush.link);
    c->flush.fn = on_flush;
    if (nghttp2_session_callbacks_new(&cbs) || nghttp2_option_new(&opt))
        goto fail;
    nghttp2_session_callbacks_set_send_callback(cbs, on_send);
    nghttp2_session_callbacks_set_send_data_callback(cbs, h2__send_data);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, on_invalid_frame);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_error_callback2(cbs, on_error);

    const cfg_http2 *o = c->cfg;
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, o->hpack_table_size);
    nghttp2_option_set_max_outbound_ack(opt, o->max_outbound_control_frames);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_no_closed_streams(opt, 1);
    /* A header block of max_request_headers_kb needs about kb/16 frames of
     * 16 KiB; allow that (at least nghttp2's 8) and no more. */
    size_t conts = c->header_limit / 16384 + 2;
    nghttp2_option_set_max_continuations(opt, conts < 8 ? 8 : conts);
    if (nghttp2_session_server_new2(&c->ng, cbs, c, opt))
        goto fail;
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    cbs = NULL;
    opt = NULL;

    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, o->max_concurrent_streams },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, o->initial_stream_window_size },
        { NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, o->hpack_table_size },
    };
    if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) ||
        (o->initial_connection_window_size > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE &&
         nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0,
                                               (int32_t)o->initial_connection_window_size)))
        goto fail_session;
    stats_inc(c->w->stats, c->ls->cx_http2_total);
    h2__kick(c);
    if (c->w->draining)
        h2_server_codec.drain(c);
    return c;

fail_session:
    nghttp2_session_del(c->ng);
fail:
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    free(c);
    return NULL;
}

/* Graceful: GOAWAY with the last stream we took, finish those, then close. */
static void h2_drain(void *ctx)
{
    h2conn *c = ctx;
    if (c->dead || c->draining)
        return;
    c->draining = true;
    nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    h2__kick(c);
}

static void h2_abort(void *ctx)
{
    h2conn *c = ctx;
    if (c->dead)
        return;
    c->dead = true;
    pf_worker_cancel_defer(c->w, &c->flush);
    for (pf_queue *q = c->streams.next; q != &c->streams; q = q->next)
        h2__stream_reset_hcm(pf_queue_data(q, h2stream, link), PF_RF_DC);
}

const pf_codec_vtbl h2_server_codec = {
    .name = "http2",
    .attach = h2_attach,
    .on_read = h2_on_read,
    .on_eof = h2_on_eof,
    .on_drain = h2_on_drain,
    .on_close = h2_on_close,
    .drain = h2_drain,
    .abort = h2_abort,
    .sweep = h2_sweep,
};
