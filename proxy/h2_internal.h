/* Internals shared by the HTTP/2 downstream codec's files:
 *   h2_server.c   connection: nghttp2 session, input, output, defences, GOAWAY
 *   h2_stream.c   streams: request delivery with flow control, the
 *                 pf_server_codec_ops the connection manager answers through
 *   h2_sniff.c    codec choice (ALPN, prior-knowledge preface)
 * Not for other modules. */
#ifndef PF_H2_INTERNAL_H
#define PF_H2_INTERNAL_H

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/http2_config.h"
#include "proxy/downstream.h"
#include "proxy/outq.h"
#include "proxy/proxy_stats.h"
#include "proxy/queue.h"
#include "proxy/stream.h"
#include "proxy/worker.h"

/* A stream's buffered response body above which write_blocked() says so
 * (the upstream stops reading); under the low mark the upstream resumes. */
#define H2_STREAM_HIGH_WATERMARK (1024 * 1024)
#define H2_STREAM_LOW_WATERMARK (256 * 1024)

typedef struct h2conn h2conn;

/* One HTTP/2 stream.  Owned by its connection; lives from the request's
 * HEADERS until nghttp2 closes the stream (on_stream_close) or the
 * connection closes.  It may outlive its pf_stream: once the connection
 * manager is done (stream_done) the response can still sit here waiting
 * for flow-control window. */
typedef struct h2stream {
    h2conn *c;
    int32_t id;
    pf_stream *s;               /* NULL once detached (done or reset); freed by the HCM */
    pf_queue link;              /* in c->streams */
    pf_outq resp;               /* response body waiting for window (chunks from w->chunks) */
    pf_outq req;                /* request body held while paused; not yet consumed */
    nghttp2_nv *trailers;       /* response trailers, one malloc with their strings */
    size_t n_trailers;
    pf_str cookie;              /* cookie crumbs joined with "; " (in s->arena) */
    uint64_t start_ms, last_active_ms;
    size_t header_bytes;
    size_t req_inflight;        /* request bytes being handed to the HCM from h->req */
    bool resp_submitted, resp_eof, drop_body, data_deferred;
    bool req_paused, req_end_pending, req_trailers_pending, resume_pending;
    bool blocked;               /* write_blocked() said yes; owe hcm_on_downstream_drain */
    bool rst_after_end;         /* request abandoned: RST_STREAM(NO_ERROR) after our END_STREAM */
    bool rx_rst;                /* the peer reset it */
    bool in_trailers;
} h2stream;

struct h2conn {
    pf_dconn *dc;               /* owns this context */
    pf_worker *w;
    const pf_listener_stats *ls;
    const pf_http2_stats *hs;
    const cfg_http2 *cfg;
    nghttp2_session *ng;
    pf_deferred flush;          /* runs nghttp2_session_send once per loop iteration */
    pf_queue streams;           /* h2stream.link */
    size_t n_streams, n_blocked;
    size_t header_limit;        /* max_request_headers_kb in bytes */
    uint64_t opened, closed, premature_resets;
    uint64_t priority_frames, window_update_frames, outbound_data_frames;
    uint32_t consecutive_empty;
    bool dead;                  /* the socket is closing: no more work */
    bool closing;               /* close once the output (GOAWAY) is flushed */
    bool draining, resumes;
};

/* h2_server.c */
void h2__kick(h2conn *c);
/* Sends GOAWAY(code) and closes the connection once it is flushed. */
void h2__terminate(h2conn *c, uint32_t code);
void h2__stream_activity(h2stream *h);

/* h2_stream.c */
extern const pf_server_codec_ops h2__ops;
h2stream *h2__stream_new(h2conn *c, int32_t id);
/* Frees h (list, buffers); h->s must be detached. */
void h2__stream_free(h2stream *h);
/* Detaches h's pf_stream and tells the connection manager it was reset. */
void h2__stream_reset_hcm(h2stream *h, uint32_t flags);
int h2__on_header(h2stream *h, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                  const uint8_t *value, size_t valuelen);
void h2__on_request_headers(h2stream *h, bool end);
void h2__on_request_trailers(h2stream *h);
void h2__on_request_end(h2stream *h);
void h2__on_request_data(h2stream *h, const uint8_t *data, size_t len);
/* Delivers request body held while paused, for every stream that resumed. */
void h2__process_resumes(h2conn *c);
/* Tells the connection manager about streams no longer write-blocked. */
void h2__notify_unblocked(h2conn *c);
int h2__send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
                  size_t length, nghttp2_data_source *source, void *user_data);

#endif
