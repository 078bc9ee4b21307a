/* The gRPC health check protocol (proxy/health_check_grpc.c) against an
 * nghttp2 server session in memory: what the request carries, and the
 * verdict for each kind of answer. */
#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "config/cluster_config.h"
#include "proxy/health_check_grpc.h"
#include "pftest.h"

typedef enum answer {
    ANS_SERVING,            /* 200, message {status: SERVING}, grpc-status 0 */
    ANS_NOT_SERVING,        /* 200, message {status: NOT_SERVING}, grpc-status 0 */
    ANS_SERVING_EXTRA,      /* SERVING with an unknown field before it */
    ANS_TRAILERS_ONLY_14,   /* 200, grpc-status 14 in the headers, no body */
    ANS_HTTP_503,
    ANS_NO_GRPC_STATUS,     /* SERVING message but the stream ends without trailers */
    ANS_RESET,              /* RST_STREAM */
} answer;

typedef struct fake {
    nghttp2_session *ng;
    answer ans;
    char authority[64], path[64], token[64], content_type[64];
    unsigned char body[64];
    size_t body_len, sent;
    const unsigned char *msg;
    size_t msg_len;
} fake;

static int srv_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *n, size_t nl,
                      const uint8_t *v, size_t vl, uint8_t flags, void *arg)
{
    fake *fk = arg;
    (void)s, (void)f, (void)flags;
    char *dst = nl == 10 && !memcmp(n, ":authority", 10) ? fk->authority
                : nl == 5 && !memcmp(n, ":path", 5) ? fk->path
                : nl == 10 && !memcmp(n, "x-hc-token", 10) ? fk->token
                : nl == 12 && !memcmp(n, "content-type", 12) ? fk->content_type : NULL;
    if (dst && vl < 64) {
        memcpy(dst, v, vl);
        dst[vl] = 0;
    }
    return 0;
}

static int srv_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t n,
                    void *arg)
{
    fake *fk = arg;
    (void)s, (void)flags, (void)id;
    if (n <= sizeof fk->body - fk->body_len) {
        memcpy(fk->body + fk->body_len, d, n);
        fk->body_len += n;
    }
    return 0;
}

static ssize_t srv_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                        uint32_t *flags, nghttp2_data_source *src, void *arg)
{
    fake *fk = arg;
    (void)src;
    size_t n = fk->msg_len - fk->sent;
    if (n > len)
        n = len;
    memcpy(buf, fk->msg + fk->sent, n);
    fk->sent += n;
    if (fk->sent == fk->msg_len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (fk->ans != ANS_NO_GRPC_STATUS) {
            nghttp2_nv tr[] = {{(uint8_t *)"grpc-status", (uint8_t *)"0", 11, 1, 0}};
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            nghttp2_submit_trailer(s, id, tr, 1);
        }
    }
    return (ssize_t)n;
}

static int srv_frame(nghttp2_session *s, const nghttp2_frame *f, void *arg)
{
    fake *fk = arg;
    if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM) || f->hd.stream_id == 0)
        return 0;
    static const unsigned char serving[] = {0, 0, 0, 0, 2, 0x08, 0x01};
    static const unsigned char not_serving[] = {0, 0, 0, 0, 2, 0x08, 0x02};
    static const unsigned char extra[] = {0, 0, 0, 0, 6, 0x12, 0x02, 'h', 'i', 0x08, 0x01};
    nghttp2_nv ok[] = {{(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0},
                       {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
                       {(uint8_t *)"grpc-status", (uint8_t *)"14", 11, 2, 0}};
    nghttp2_nv err[] = {{(uint8_t *)":status", (uint8_t *)"503", 7, 3, 0}};
    nghttp2_data_provider dp = {.read_callback = srv_read};
    int32_t id = f->hd.stream_id;
    fk->msg = fk->ans == ANS_NOT_SERVING ? not_serving : fk->ans == ANS_SERVING_EXTRA ? extra
                                                                                   : serving;
    fk->msg_len = fk->ans == ANS_SERVING_EXTRA ? sizeof extra : sizeof serving;
    switch (fk->ans) {
    case ANS_TRAILERS_ONLY_14:
        return nghttp2_submit_response(s, id, ok, 3, NULL);
    case ANS_HTTP_503:
        return nghttp2_submit_response(s, id, err, 1, NULL);
    case ANS_RESET:
        return nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
    default:
        return nghttp2_submit_response(s, id, ok, 2, &dp);
    }
}

/* Runs one check against a fake server answering ans; authority: the
 * configured one (NULL: the default, the cluster name). */
static pf_hc_grpc_result run_as(answer ans, fake *fk, char *authority)
{
    cfg_hc_header md = {"X-HC-Token", "t1"};
    cfg_health_check cfg = {.kind = CFG_HC_GRPC, .service_name = "pkg.Svc", .headers = &md,
                            .n_headers = 1, .host = authority};
    memset(fk, 0, sizeof *fk);
    fk->ans = ans;
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, srv_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, srv_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, srv_frame);
    nghttp2_session_server_new(&fk->ng, cbs, fk);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(fk->ng, NGHTTP2_FLAG_NONE, NULL, 0);
    pf_hc_grpc *g = pf_hc_grpc_new(&cfg, "my-cluster");
    CHECK(g != NULL);
    pf_hc_grpc_result r = PF_HC_GRPC_PENDING;
    for (int round = 0; g && round < 20 && r == PF_HC_GRPC_PENDING; round++) {
        uint8_t *out;
        size_t len;
        CHECK(pf_hc_grpc_output(g, &out, &len) == 0);
        if (len)
            CHECK(nghttp2_session_mem_recv(fk->ng, out, len) == (ssize_t)len);
        free(out);
        const uint8_t *chunk;
        ssize_t k;
        while (r == PF_HC_GRPC_PENDING && (k = nghttp2_session_mem_send(fk->ng, &chunk)) > 0)
            r = pf_hc_grpc_recv(g, chunk, (size_t)k);
    }
    pf_hc_grpc_free(g);
    nghttp2_session_del(fk->ng);
    return r;
}

static pf_hc_grpc_result run(answer ans, fake *fk)
{
    return run_as(ans, fk, NULL);
}

int main(void)
{
    fake fk;
    CHECK(run(ANS_SERVING, &fk) == PF_HC_GRPC_SERVING);
    /* The request: Envoy's path and default authority, metadata lower-cased,
     * HealthCheckRequest {service: "pkg.Svc"} in one uncompressed frame. */
    CHECK(strcmp(fk.path, "/grpc.health.v1.Health/Check") == 0);
    CHECK(strcmp(fk.authority, "my-cluster") == 0);
    CHECK(strcmp(fk.token, "t1") == 0);
    CHECK(strcmp(fk.content_type, "application/grpc") == 0);
    static const unsigned char want[] = {0, 0, 0, 0, 9, 0x0a, 7, 'p', 'k', 'g', '.', 'S', 'v', 'c'};
    CHECK(fk.body_len == sizeof want && memcmp(fk.body, want, sizeof want) == 0);

    char authority[] = "hc.example";
    CHECK(run_as(ANS_SERVING, &fk, authority) == PF_HC_GRPC_SERVING);
    CHECK(strcmp(fk.authority, "hc.example") == 0);

    CHECK(run(ANS_NOT_SERVING, &fk) == PF_HC_GRPC_NOT_SERVING);
    CHECK(run(ANS_SERVING_EXTRA, &fk) == PF_HC_GRPC_SERVING);
    CHECK(run(ANS_TRAILERS_ONLY_14, &fk) == PF_HC_GRPC_NOT_SERVING);
    CHECK(run(ANS_HTTP_503, &fk) == PF_HC_GRPC_NOT_SERVING);
    CHECK(run(ANS_NO_GRPC_STATUS, &fk) == PF_HC_GRPC_NOT_SERVING);
    CHECK(run(ANS_RESET, &fk) == PF_HC_GRPC_PROTOCOL_ERROR);
    return TEST_DONE();
}
