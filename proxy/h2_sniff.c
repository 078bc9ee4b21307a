/* Picks a downstream connection's codec.
 *
 * codec_type HTTP1 / HTTP2 force one; AUTO takes TLS ALPN "h2" when there
 * is one, and otherwise looks at the first bytes: the HTTP/2 client
 * preface means h2 with prior knowledge (h2c), anything else HTTP/1.1.
 * The look is a tiny codec of its own that replays what it read into the
 * codec it chose. */
#include "proxy/h2_server.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/h1_server.h"
#include "proxy/log.h"

typedef struct sniff {
    pf_dconn *dc;
    size_t n;                       /* preface bytes matched so far */
} sniff;

static void *sniff_attach(pf_dconn *dc)
{
    sniff *sn = calloc(1, sizeof *sn);
    if (sn)
        sn->dc = dc;
    return sn;
}

/* Hands the connection to `codec`, replaying the `n` preface bytes seen in
 * earlier reads and then data. */
static void sniff_switch(sniff *sn, const pf_codec_vtbl *codec, const char *data, size_t n)
{
    pf_dconn *dc = sn->dc;
    size_t held = sn->n;
    free(sn);
    dc->codec = codec;
    if (!(dc->codec_ctx = codec->attach(dc))) {
        pf_sock_close(&dc->sock);
        return;
    }
    if (held)
        codec->on_read(dc->codec_ctx, H2_CLIENT_PREFACE, held);
    if (n && !dc->sock.closing)
        codec->on_read(dc->codec_ctx, data, n);
}

static void sniff_on_read(void *ctx, const char *data, size_t n)
{
    sniff *sn = ctx;
    size_t want = H2_CLIENT_PREFACE_LEN - sn->n;
    size_t k = n < want ? n : want;
    if (memcmp(data, &H2_CLIENT_PREFACE[sn->n], k) != 0) {
        sniff_switch(sn, &h1_server_codec, data, n);
        return;
    }
    if (k == want) {
        sniff_switch(sn, &h2_server_codec, data, n);
        return;
    }
    sn->n += k;                     /* a prefix of the preface: wait for more */
}

static void sniff_on_eof(void *ctx)
{
    sniff *sn = ctx;
    pf_sock_close(&sn->dc->sock);
}

static void sniff_nop(void *ctx) { (void)ctx; }

static void sniff_on_close(void *ctx) { free(ctx); }

/* No stream before the choice; the connection idle_timeout still runs. */
static uint64_t sniff_sweep(void *ctx, uint64_t now)
{
    (void)ctx;
    (void)now;
    return UINT64_MAX;
}

static void sniff_drain(void *ctx)
{
    sniff *sn = ctx;
    pf_sock_close(&sn->dc->sock);   /* nothing in flight yet */
}

static const pf_codec_vtbl sniff_codec = {
    .name = "auto",
    .attach = sniff_attach,
    .on_read = sniff_on_read,
    .on_eof = sniff_on_eof,
    .on_drain = sniff_nop,
    .on_close = sniff_on_close,
    .drain = sniff_drain,
    .abort = sniff_nop,
    .sweep = sniff_sweep,
};

const pf_codec_vtbl *h2_pick_codec(const pf_dconn *dc, const char *alpn, size_t alpn_len)
{
    switch (dc->hcm->codec_type) {
    case CFG_CODEC_HTTP1:
        return &h1_server_codec;
    case CFG_CODEC_HTTP2:
        return &h2_server_codec;
    default:
        break;
    }
    if (alpn && alpn_len == 2 && memcmp(alpn, "h2", 2) == 0)
        return &h2_server_codec;
    if (alpn && alpn_len)
        return &h1_server_codec;    /* "http/1.1" (or 1.0) was negotiated */
    return &sniff_codec;
}
