/* grpc.health.v1.Health/Check over an nghttp2 client session, with no I/O
 * of its own (see proxy/health_check_grpc.h). */
#include "proxy/health_check_grpc.h"

#include <ctype.h>
#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "config/cluster_config.h"

#define HC_GRPC_PATH "/grpc.health.v1.Health/Check"
/* A HealthCheckResponse is a few bytes; anything past this is not one. */
#define HC_GRPC_BODY_MAX 256

struct pf_hc_grpc {
    nghttp2_session *ng;
    int32_t stream_id;
    uint8_t *req;                   /* the gRPC frame of the HealthCheckRequest, owned */
    size_t req_len, req_off;
    int http_status;                /* 0 until :status */
    int grpc_status;                /* -1 until grpc-status (headers or trailers) */
    uint8_t body[HC_GRPC_BODY_MAX];
    size_t body_len;
    bool body_overflow;
    pf_hc_grpc_result result;
};

/* Reads a protobuf varint at *p (< end); false when truncated. */
static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* The status (field 1) of a serialized HealthCheckResponse; 0 (UNKNOWN)
 * when absent, -1 when the message does not parse.  Unknown fields are
 * skipped, as any protobuf reader does. */
static int64_t response_status(const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    int64_t status = 0;
    while (p < end) {
        uint64_t tag, v;
        if (!read_varint(&p, end, &tag))
            return -1;
        switch (tag & 7) {
        case 0:                     /* varint */
            if (!read_varint(&p, end, &v))
                return -1;
            if (tag >> 3 == 1)
                status = (int64_t)(v & 0x7fffffff);
            break;
        case 1:                     /* 64-bit */
            if (end - p < 8)
                return -1;
            p += 8;
            break;
        case 2:                     /* length-delimited */
            if (!read_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return -1;
            p += v;
            break;
        case 5:                     /* 32-bit */
            if (end - p < 4)
                return -1;
            p += 4;
            break;
        default:
            return -1;
        }
    }
    return status;
}

/* The verdict once the stream has closed (reset: error_code != 0). */
static pf_hc_grpc_result verdict(const pf_hc_grpc *g, uint32_t error_code)
{
    if (g->grpc_status < 0 && (error_code != NGHTTP2_NO_ERROR || g->http_status == 0))
        return PF_HC_GRPC_PROTOCOL_ERROR;
    if (g->http_status != 200 || g->grpc_status != 0 || g->body_overflow)
        return PF_HC_GRPC_NOT_SERVING;
    /* One uncompressed length-prefixed message. */
    if (g->body_len < 5 || g->body[0] != 0)
        return PF_HC_GRPC_NOT_SERVING;
    uint32_t n = (uint32_t)g->body[1] << 24 | (uint32_t)g->body[2] << 16 |
                 (uint32_t)g->body[3] << 8 | g->body[4];
    if (n != g->body_len - 5)
        return PF_HC_GRPC_NOT_SERVING;
    return response_status(g->body + 5, n) == 1 ? PF_HC_GRPC_SERVING : PF_HC_GRPC_NOT_SERVING;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *arg)
{
    pf_hc_grpc *g = arg;
    (void)s, (void)flags;
    if (frame->hd.stream_id != g->stream_id)
        return 0;
    int *dst = NULL;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        dst = &g->http_status;
    else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
        dst = &g->grpc_status;
    if (dst) {
        /* Junk (or more than 9 digits) never reads as 0 or 200. */
        bool bad = !valuelen || valuelen > 9;
        int v = 0;
        for (size_t i = 0; i < valuelen && !bad; i++) {
            bad = !isdigit(value[i]);
            v = v * 10 + (value[i] - '0');
        }
        *dst = bad ? 999 : v;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *arg)
{
    pf_hc_grpc *g = arg;
    (void)s, (void)flags;
    if (stream_id != g->stream_id)
        return 0;
    if (len > sizeof g->body - g->body_len) {
        g->body_overflow = true;
        return 0;
    }
    memcpy(g->body + g->body_len, data, len);
    g->body_len += len;
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code,
                           void *arg)
{
    pf_hc_grpc *g = arg;
    (void)s;
    if (stream_id == g->stream_id && g->result == PF_HC_GRPC_PENDING)
        g->result = verdict(g, error_code);
    return 0;
}

static ssize_t read_request(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *arg)
{
    pf_hc_grpc *g = arg;
    (void)s, (void)stream_id, (void)src;
    size_t n = g->req_len - g->req_off;
    if (n > len)
        n = len;
    memcpy(buf, g->req + g->req_off, n);
    g->req_off += n;
    if (g->req_off == g->req_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* The HealthCheckRequest {service = 1} in a gRPC frame. */
static int build_request(pf_hc_grpc *g, const char *service)
{
    size_t sl = service ? strlen(service) : 0, msg = 0;
    if (!(g->req = malloc(5 + 1 + 10 + sl)))
        return -1;
    uint8_t *p = g->req + 5;
    if (sl) {
        *p++ = 0x0a;                /* field 1, length-delimited */
        for (size_t v = sl; ; v >>= 7) {
            *p++ = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
            if (v <= 0x7f)
                break;
        }
        memcpy(p, service, sl);
        p += sl;
    }
    msg = (size_t)(p - g->req) - 5;
    g->req[0] = 0;
    g->req[1] = (uint8_t)(msg >> 24);
    g->req[2] = (uint8_t)(msg >> 16);
    g->req[3] = (uint8_t)(msg >> 8);
    g->req[4] = (uint8_t)msg;
    g->req_len = 5 + msg;
    return 0;
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}

/* Queues the HEADERS (+ initial_metadata, names lower-cased as HTTP/2
 * wants) and the request DATA. */
static int submit(pf_hc_grpc *g, const cfg_health_check *cfg, const char *authority)
{
    size_t n_md = cfg->n_headers, k = 0;
    nghttp2_nv *nv = calloc(7 + n_md, sizeof *nv);
    char **names = calloc(n_md + 1, sizeof *names);
    int rc = -1;
    if (!nv || !names)
        goto out;
    nghttp2_nv fixed[] = {NV(":method", "POST"), NV(":scheme", "http"),
                          NV(":path", HC_GRPC_PATH), NV(":authority", authority),
                          NV("content-type", "application/grpc"), NV("te", "trailers"),
                          NV("user-agent", "Envoy/HC")};
    memcpy(nv, fixed, sizeof fixed);
    k = sizeof fixed / sizeof fixed[0];
    for (size_t i = 0; i < n_md; i++) {
        if (!(names[i] = strdup(cfg->headers[i].name)))
            goto out;
        for (char *c = names[i]; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        nv[k++] = (nghttp2_nv)NV(names[i], cfg->headers[i].value);
    }
    nghttp2_data_provider dp = {.read_callback = read_request};
    g->stream_id = nghttp2_submit_request(g->ng, NULL, nv, k, &dp, g);
    rc = g->stream_id < 0 ? -1 : 0;
out:
    for (size_t i = 0; names && i < n_md; i++)
        free(names[i]);
    free(names);
    free(nv);
    return rc;
}

pf_hc_grpc *pf_hc_grpc_new(const cfg_health_check *cfg, const char *default_authority)
{
    pf_hc_grpc *g = calloc(1, sizeof *g);
    nghttp2_session_callbacks *cbs = NULL;
    if (!g)
        return NULL;
    g->grpc_status = -1;
    if (build_request(g, cfg->service_name) != 0 || nghttp2_session_callbacks_new(&cbs) != 0)
        goto fail;
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    int rv = nghttp2_session_client_new(&g->ng, cbs, g);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0)
        goto fail;
    if (nghttp2_submit_settings(g->ng, NGHTTP2_FLAG_NONE, NULL, 0) != 0 ||
        submit(g, cfg, cfg->host ? cfg->host : default_authority) != 0)
        goto fail;
    return g;
fail:
    pf_hc_grpc_free(g);
    return NULL;
}

pf_hc_grpc_result pf_hc_grpc_recv(pf_hc_grpc *g, const uint8_t *data, size_t len)
{
    if (g->result == PF_HC_GRPC_PENDING && nghttp2_session_mem_recv(g->ng, data, len) < 0)
        g->result = PF_HC_GRPC_PROTOCOL_ERROR;
    return g->result;
}

int pf_hc_grpc_output(pf_hc_grpc *g, uint8_t **out, size_t *len)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    const uint8_t *chunk;
    ssize_t k;
    while ((k = nghttp2_session_mem_send(g->ng, &chunk)) > 0) {
        uint8_t *nb = realloc(buf, n + (size_t)k);
        if (!nb) {
            free(buf);
            return -1;
        }
        buf = nb;
        memcpy(buf + n, chunk, (size_t)k);
        n += (size_t)k;
    }
    if (k < 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

void pf_hc_grpc_free(pf_hc_grpc *g)
{
    if (!g)
        return;
    nghttp2_session_del(g->ng);
    free(g->req);
    free(g);
}
