/* Shadow requests for RouteAction.request_mirror_policies (see proxy/mirror.h). */
#include "proxy/mirror.h"

#include <string.h>

#include "admin/runtime.h"
#include "proxy/async_client.h"
#include "proxy/worker.h"

/* The policies for s: its route's, else its virtual host's, else its route
 * configuration's (Envoy: the most specific non-empty list, never merged). */
static const cfg_mirrors *policies(const pf_stream *s)
{
    if (s->route && s->route->mirrors.n)
        return &s->route->mirrors;
    if (s->vhost && s->vhost->mirrors.n)
        return &s->vhost->mirrors;
    return &s->hcm->route_config.mirrors;
}

void mirror_begin(pf_stream *s)
{
    if (!s->route)
        return;             /* internal requests (proxy/async_client.c) */
    const cfg_mirrors *ms = policies(s);
    for (size_t i = 0; i < ms->n; i++) {
        const cfg_mirror_policy *mp = &ms->v[i];
        if (mp->has_fraction) {
            uint64_t rnd = pf_worker_random(s->w);
            bool on = mp->rf_key ? runtime_fraction_enabled(s->w->runtime, mp->rf_key,
                                                            mp->rf_num, mp->rf_den, rnd)
                                 : rnd % mp->rf_den < mp->rf_num;
            if (!on)
                continue;
        }
        s->mirror_mask |= (uint8_t)(1u << i);
    }
    if (s->mirror_mask)
        s->keep_body = true;
}

/* The mirror cluster: the policy's, or the one named by its cluster_header
 * (absent or unknown: no shadow, as Envoy). */
static bool mirror_cluster(const pf_stream *s, const cfg_mirror_policy *mp, size_t *out)
{
    if (!mp->cluster_header) {
        *out = mp->cluster_index;
        return true;
    }
    const pf_hdr *h = pf_hdrs_get(&s->req_hdrs, mp->cluster_header, mp->cluster_header_len);
    if (!h || !h->value.n)
        return false;
    ptrdiff_t i = cfg_cluster_index(s->w->cfg, h->value.p, h->value.n);
    if (i < 0)
        return false;
    *out = (size_t)i;
    return true;
}

/* Where the port starts in a host value, or n (Envoy's getPortStart: the
 * last ':' unless it is inside an IPv6 literal's brackets). */
static size_t port_start(pf_str host)
{
    size_t colon = host.n, bracket = host.n;
    for (size_t i = host.n; i-- > 0;) {
        if (host.p[i] == ':' && colon == host.n)
            colon = i;
        if (host.p[i] == ']' && bracket == host.n)
            bracket = i;
    }
    if (colon == host.n || (bracket != host.n && bracket > colon))
        return host.n;
    return colon;
}

/* "host[:port]" -> "host-shadow[:port]" in arena a. */
static int shadow_host(pf_arena *a, pf_str host, pf_str *out)
{
    size_t ps = port_start(host);
    char *p = pf_arena_alloc(a, host.n + 7);
    if (!p)
        return -1;
    memcpy(p, host.p, ps);
    memcpy(p + ps, "-shadow", 7);
    memcpy(p + ps + 7, host.p + ps, host.n - ps);
    *out = (pf_str){ p, host.n + 7 };
    return 0;
}

static int copy_str(pf_arena *a, pf_str in, pf_str *out)
{
    return pf_arena_dup(a, out, in.p ? in.p : "", in.n);
}

/* Copies the list into m's arena: the shadow outlives the main stream. */
static int copy_hdrs(pf_stream *m, pf_hdrs *dst, const pf_hdrs *src)
{
    for (uint32_t i = 0; i < src->n; i++) {
        pf_str n, v;
        if (copy_str(&m->arena, src->v[i].name, &n) || copy_str(&m->arena, src->v[i].value, &v) ||
            pf_hdrs_add(dst, &m->arena, n, v))
            return -1;
    }
    return 0;
}

static void send_one(pf_stream *s, const cfg_mirror_policy *mp, size_t cluster)
{
    pf_async_call *c = pf_async_call_new(s->w, s->listener, cluster);
    if (!c)
        return;
    pf_stream *m = pf_async_call_stream(c);
    m->hcm = s->hcm;
    m->is_head = s->is_head;
    int rc = copy_str(&m->arena, s->method, &m->method) ||
             copy_str(&m->arena, s->path, &m->path) ||
             copy_str(&m->arena, s->scheme, &m->scheme) ||
             (mp->keep_host ? copy_str(&m->arena, s->authority, &m->authority)
                            : shadow_host(&m->arena, s->authority, &m->authority)) ||
             copy_hdrs(m, &m->req_hdrs, &s->req_hdrs) ||
             copy_hdrs(m, &m->req_trailers, &s->req_trailers);
    if (rc) {
        pf_async_call_cancel(c);
        return;
    }
    /* Envoy gives the shadow the route's timeout. */
    pf_async_call_send_outq(c, &s->retry_body, s->route->timeout_ms, NULL, NULL);
}

void mirror_send(pf_stream *s)
{
    const cfg_mirrors *ms = policies(s);
    uint8_t mask = s->mirror_mask;
    s->mirror_mask = 0;
    for (size_t i = 0; mask; i++, mask >>= 1) {
        size_t cluster;
        if ((mask & 1) && mirror_cluster(s, &ms->v[i], &cluster))
            send_one(s, &ms->v[i], cluster);
    }
}
