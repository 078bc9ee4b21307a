/* The HTTP connection manager: what every downstream codec calls.
 *
 * It owns the life of a stream after the codec created it: routes it,
 * answers locally (direct_response, errors) or hands it to the router, and
 * frees it when both directions have ended or the stream was reset. */
#ifndef PF_HCM_H
#define PF_HCM_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/stream.h"

/* s->method/path/authority/scheme/req_hdrs are set; end: no body follows. */
void hcm_on_request_headers(pf_stream *s, bool end);
void hcm_on_request_data(pf_stream *s, const char *p, size_t n);
/* s->req_trailers are set; ends the request. */
void hcm_on_request_trailers(pf_stream *s);
void hcm_on_request_end(pf_stream *s);
/* Downstream output fell under its low watermark. */
void hcm_on_downstream_drain(pf_stream *s);
/* The downstream side went away or the codec aborted the stream: stop
 * everything and free s.  flags: extra response flags (e.g. PF_RF_DC). */
void hcm_on_stream_reset(pf_stream *s, uint32_t flags);

/* Answers the stream locally with status and a text body (may be NULL),
 * recording response flags.  Used by the router for upstream failures. */
void hcm_local_reply(pf_stream *s, int status, const char *body, uint32_t flags);

/* Called by the router as the upstream response arrives.  The connection
 * manager adds Envoy's response headers and forwards downstream. */
void hcm_encode_headers(pf_stream *s, bool end);
void hcm_encode_data(pf_stream *s, const char *p, size_t n, bool end);
void hcm_encode_trailers(pf_stream *s);
/* Marks the response finished and frees s if the request ended too. */
void hcm_maybe_finish(pf_stream *s);

/* ---- terminals of the HTTP filter chain (filters/filter_chain.c) ---- */

/* The request headers passed every filter: route (pf_filter_route_outcome)
 * and answer locally or start the router. */
void hcm__route_request(pf_stream *s, bool end);
void hcm__request_data(pf_stream *s, const char *p, size_t n, bool end);
void hcm__request_trailers(pf_stream *s);
/* The response passed every filter: to the downstream codec. */
void hcm__send_headers(pf_stream *s, bool end);
void hcm__send_data(pf_stream *s, const char *p, size_t n, bool end);
void hcm__send_trailers(pf_stream *s);
/* A local reply that bypasses the filters (response buffer overflow). */
void hcm__reply_unfiltered(pf_stream *s, int status, const char *body);
/* Completes s->resp_hdrs of a filter's local reply (content-length, date). */
void hcm__prepare_filter_reply(pf_stream *s, size_t blen);

/* What a codec does with one more request header (or trailer) `name` going
 * into `into`: common_http_protocol_options max_headers_count and
 * headers_with_underscores_action.  Envoy answers TOO_MANY with 431 on
 * HTTP/1.1 and REJECT with 400; HTTP/2 resets the stream for either. */
typedef enum hcm_hdr_verdict {
    HCM_HDR_ADD,
    HCM_HDR_DROP,
    HCM_HDR_REJECT,
    HCM_HDR_TOO_MANY,
} hcm_hdr_verdict;
hcm_hdr_verdict hcm_check_header(const pf_stream *s, const pf_hdrs *into, pf_str name);

/* The connection manager's request headers: x-forwarded-for,
 * x-forwarded-proto, x-envoy-external-address, x-envoy-internal
 * (use_remote_address, xff_num_trusted_hops) and add_user_agent's
 * (proxy/hcm_request_headers.c).  Once per request. */
void hcm__request_headers(pf_stream *s);

/* ---- stream timeouts (proxy/hcm_timeout.c) ----
 * stream_idle_timeout (or the route's idle_timeout), request_timeout,
 * request_headers_timeout and max_stream_duration, as Envoy's connection
 * manager applies them to HTTP/1.1 and HTTP/2 streams alike.  Data moving
 * only stores s->last_active_ms; the connection's timer (proxy/downstream.h)
 * asks the codec to sweep its streams when a deadline may have passed. */

struct pf_dconn;
/* The codec made s (s->hcm set) on connection dc: arms its timeouts. */
void hcm_stream_started(pf_stream *s, struct pf_dconn *dc);
/* The earliest deadline of s's timeouts (loop ms); UINT64_MAX for none. */
uint64_t hcm_stream_deadline(const pf_stream *s);
/* Acts on the timeout of s that passed at now (none: nothing): answers 408
 * (504 once the request was complete) or resets s if the response started,
 * counting Envoy's stat.  s may be gone afterwards. */
void hcm_stream_expire(pf_stream *s, uint64_t now);
/* The route is chosen: its idle_timeout replaces stream_idle_timeout. */
void hcm__route_timeouts(pf_stream *s);

/* The Server header value for a response (server_name, default "envoy"),
 * or {NULL, 0} when server_header_transformation says to send none of ours. */
pf_str hcm_server_name(const cfg_hcm *h, bool upstream_has_one);

/* Formats an IMF-fixdate for the `date` header, cached per second. */
pf_str hcm_date(struct pf_worker *w);

#endif
