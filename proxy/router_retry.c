#include "proxy/router_retry.h"

#include <string.h>

#include "config/retry_config.h"
#include "admin/stats.h"
#include "proxy/proxy_stats.h"
#include "proxy/worker.h"

void retry_keep_body(pf_stream *s, const char *p, size_t n)
{
    if (!s->keep_body || s->retry_body_overflow)
        return;
    if (s->retry_body.bytes + n > PF_RETRY_BODY_LIMIT ||
        pf_outq_append(&s->retry_body, &s->w->chunks, p, n) != 0) {
        /* Envoy gives up both retries and shadows at its buffer limit. */
        if (retry_policy(s) || s->mirror_mask)
            stats_inc(s->w->stats, s->ucs->retry_or_shadow_abandoned);
        s->retry_body_overflow = true;
        s->mirror_mask = 0;
        pf_outq_clear(&s->retry_body, &s->w->chunks);
    }
}

bool retry_possible(const pf_stream *s)
{
    const cfg_retry_policy *rp = retry_policy(s);
    return rp && s->retries_done < rp->num_retries && s->req_end && !s->retry_body_overflow &&
           !s->resp_headers_sent;
}

bool retry_on_failure(const pf_stream *s, uint32_t flag, bool refused)
{
    const cfg_retry_policy *rp = retry_policy(s);
    if (!rp)
        return false;
    uint32_t on = rp->retry_on;
    if (on & (CFG_RETRY_5XX | CFG_RETRY_GATEWAY_ERROR))
        return true;        /* both include connect failures and resets */
    if (flag == PF_RF_UF)
        return on & CFG_RETRY_CONNECT_FAILURE;
    if (refused && (on & CFG_RETRY_REFUSED_STREAM))
        return true;
    return (on & CFG_RETRY_RESET) && (flag == PF_RF_UC || flag == PF_RF_UR || flag == PF_RF_UPE);
}

bool retry_on_timeout(const pf_stream *s)
{
    const cfg_retry_policy *rp = retry_policy(s);
    return rp && (rp->retry_on & (CFG_RETRY_5XX | CFG_RETRY_GATEWAY_ERROR));
}

static int grpc_status_of(const pf_stream *s)
{
    pf_hdr *h = pf_hdrs_get_lit(&s->resp_hdrs, "grpc-status");
    if (!h || h->value.n == 0 || h->value.n > 2)
        return -1;
    int v = 0;
    for (size_t i = 0; i < h->value.n; i++) {
        if (h->value.p[i] < '0' || h->value.p[i] > '9')
            return -1;
        v = v * 10 + (h->value.p[i] - '0');
    }
    return v;
}

bool retry_on_response(const pf_stream *s)
{
    const cfg_retry_policy *rp = retry_policy(s);
    if (!rp)
        return false;
    uint32_t on = rp->retry_on;
    int st = s->status;
    if ((on & CFG_RETRY_5XX) && st >= 500)
        return true;
    if ((on & CFG_RETRY_GATEWAY_ERROR) && st >= 502 && st <= 504)
        return true;
    if ((on & CFG_RETRY_RETRIABLE_4XX) && st == 409)
        return true;
    if (on & CFG_RETRY_RETRIABLE_STATUS_CODES)
        for (size_t i = 0; i < rp->n_status_codes; i++)
            if (rp->status_codes[i] == st)
                return true;
    /* gRPC conditions look at a trailers-only response's grpc-status. */
    switch (grpc_status_of(s)) {
    case 1: return on & CFG_RETRY_GRPC_CANCELLED;
    case 4: return on & CFG_RETRY_GRPC_DEADLINE_EXCEEDED;
    case 8: return on & CFG_RETRY_GRPC_RESOURCE_EXHAUSTED;
    case 13: return on & CFG_RETRY_GRPC_INTERNAL;
    case 14: return on & CFG_RETRY_GRPC_UNAVAILABLE;
    default: return false;
    }
}

uint64_t retry_backoff_ms(pf_stream *s)
{
    const cfg_retry_policy *rp = retry_policy(s);
    uint32_t shift = s->retries_done < 16 ? s->retries_done : 16;
    uint64_t ceiling = rp->backoff_base_ms << shift;
    if (ceiling > rp->backoff_max_ms)
        ceiling = rp->backoff_max_ms;
    return ceiling ? pf_worker_random(s->w) % ceiling : 0;
}

bool retry_host_tried(const pf_stream *s, const struct sockaddr_storage *addr)
{
    for (uint8_t i = 0; i < s->n_tried; i++)
        if (memcmp(&s->tried[i], addr, sizeof *addr) == 0)
            return true;
    return false;
}

void retry_note_host(pf_stream *s, const struct sockaddr_storage *addr)
{
    if (s->n_tried < sizeof s->tried / sizeof s->tried[0])
        s->tried[s->n_tried++] = *addr;
}
