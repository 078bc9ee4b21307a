/* HTTP/2 downstream codec on nghttp2 (server side).
 *
 * One nghttp2 session per connection; each HTTP/2 stream carries one
 * pf_stream to the connection manager.  Chosen per connection by
 * proxy/downstream.c: TLS ALPN "h2", or on plaintext the client preface
 * (prior knowledge, codec_type AUTO) or codec_type HTTP2.  HTTP/1.1
 * "Upgrade: h2c" is not supported (nor is it by Envoy). */
#ifndef PF_H2_SERVER_H
#define PF_H2_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/downstream.h"

extern const pf_codec_vtbl h2_server_codec;

/* The client connection preface (RFC 9113 3.4) and its length (24). */
#define H2_CLIENT_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_CLIENT_PREFACE_LEN 24

/* The codec for a new connection (proxy/h2_sniff.c): codec_type HTTP1 or
 * HTTP2 force one; AUTO picks h2 for ALPN "h2", HTTP/1.1 for another ALPN
 * protocol, and without ALPN (plaintext) sniffs the client preface (h2c
 * prior knowledge).  alpn: the negotiated protocol or NULL. */
const pf_codec_vtbl *h2_pick_codec(const pf_dconn *dc, const char *alpn, size_t alpn_len);

#endif
