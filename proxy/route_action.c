#include "proxy/route_action.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "admin/runtime.h"
#include "filters/lua/lua_cluster_specifier.h"
#include "proxy/addr.h"
#include "proxy/route_headers.h"
#include "proxy/route_match.h"
#include "proxy/route_regex.h"
#include "proxy/worker.h"

/* ---- xxHash64 ---- */

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull
#define P5 0x27D4EB2F165667C5ull

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t rd64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t xround(uint64_t acc, uint64_t in)
{
    acc += in * P2;
    return rotl(acc, 31) * P1;
}
static inline uint64_t xmerge(uint64_t acc, uint64_t v)
{
    acc ^= xround(0, v);
    return acc * P1 + P4;
}

/* Little-endian hosts only (the targets we build for); the value is only
 * compared within one process, never stored. */
uint64_t route_hash64(const void *data, size_t len)
{
    const unsigned char *p = data, *end = p + len;
    uint64_t h;
    if (len >= 32) {
        uint64_t v1 = P1 + P2, v2 = P2, v3 = 0, v4 = 0 - P1;
        do {
            v1 = xround(v1, rd64(p));
            v2 = xround(v2, rd64(p + 8));
            v3 = xround(v3, rd64(p + 16));
            v4 = xround(v4, rd64(p + 24));
            p += 32;
        } while (p + 32 <= end);
        h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
        h = xmerge(h, v1);
        h = xmerge(h, v2);
        h = xmerge(h, v3);
        h = xmerge(h, v4);
    } else {
        h = P5;
    }
    h += (uint64_t)len;
    for (; p + 8 <= end; p += 8)
        h = rotl(h ^ xround(0, rd64(p)), 27) * P1 + P4;
    if (p + 4 <= end) {
        h = rotl(h ^ (uint64_t)rd32(p) * P1, 23) * P2 + P3;
        p += 4;
    }
    for (; p < end; p++)
        h = rotl(h ^ (uint64_t)*p * P5, 11) * P1;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

/* ---- cluster choice ---- */

static uint64_t wc_weight(const cfg_weighted_cluster *w, const struct pf_runtime_snapshot *rt)
{
    return w->runtime_key ? runtime_get_uint(rt, w->runtime_key, w->weight) : w->weight;
}

size_t route_weighted_pick(const cfg_route *r, const struct pf_runtime_snapshot *rt,
                           uint64_t value, bool hashed)
{
    uint64_t total = 0;
    if (r->wc_runtime) {
        for (size_t i = 0; i < r->n_weighted; i++)
            total += wc_weight(&r->weighted[i], rt);
    } else {
        total = r->total_weight;
    }
    if (total == 0)
        return r->n_weighted;
    /* Multiply-shift keeps a hash's relative position when the total
     * changes, so only the moved slice of users changes cluster. */
    uint64_t point = hashed ? (uint64_t)(((unsigned __int128)value * total) >> 64)
                            : value % total;
    if (!r->wc_runtime) {
        /* Static weights: binary search of the cumulative ends (many clusters). */
        size_t lo = 0, hi = r->n_weighted - 1;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (point < r->weighted[mid].weight_end)
                hi = mid;
            else
                lo = mid + 1;
        }
        return lo;
    }
    uint64_t end = 0;
    for (size_t i = 0; i < r->n_weighted; i++) {
        end += wc_weight(&r->weighted[i], rt);
        if (point < end)
            return i;
    }
    return r->n_weighted - 1;
}

static route_req stream_req(pf_stream *s)
{
    return (route_req){ .method = s->method, .path = s->path, .authority = s->authority,
                        .scheme = s->scheme, .hdrs = &s->req_hdrs, .runtime = s->w->runtime };
}

/* Finds cookie `name` in the Cookie header(s); strips surrounding quotes. */
static bool find_cookie(const pf_hdrs *h, const char *name, size_t n, pf_str *out)
{
    for (uint32_t i = 0; i < h->n; i++) {
        if (!pf_str_eq_lit(h->v[i].name, "cookie"))
            continue;
        const char *p = h->v[i].value.p, *end = p + h->v[i].value.n;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *ce = semi ? semi : end;
            const char *eq = memchr(p, '=', (size_t)(ce - p));
            if (eq && (size_t)(eq - p) == n && memcmp(p, name, n) == 0) {
                const char *v = eq + 1, *ve = ce;
                while (ve > v && ve[-1] == ' ')
                    ve--;
                if (ve - v >= 2 && v[0] == '"' && ve[-1] == '"')
                    v++, ve--;
                *out = (pf_str){ v, (size_t)(ve - v) };
                return true;
            }
            p = ce;
        }
    }
    return false;
}

/* A cookie for a client that has none (Envoy: derived from the downstream
 * address, so streams of one connection agree); sets s->set_cookie. */
static bool make_cookie(pf_stream *s, const cfg_hash_policy *hp, pf_str *value)
{
    char addr[80];
    size_t an = pf_addr_format(s->downstream_remote, true, addr, sizeof addr);
    char v[17], buf[512];
    snprintf(v, sizeof v, "%016llx", (unsigned long long)route_hash64(addr, an));
    int n = snprintf(buf, sizeof buf, "%s=\"%s\"", hp->name, v);
    if (hp->ttl_s && n > 0 && (size_t)n < sizeof buf)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "; Max-Age=%llu",
                      (unsigned long long)hp->ttl_s);
    if (hp->path && n > 0 && (size_t)n < sizeof buf)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "; Path=%s", hp->path);
    if (n > 0 && (size_t)n < sizeof buf)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "; HttpOnly");
    if (n <= 0 || (size_t)n >= sizeof buf || pf_arena_dup(&s->arena, &s->set_cookie, buf,
                                                         (size_t)n) < 0)
        return false;
    /* the value inside the quotes */
    *value = (pf_str){ s->set_cookie.p + hp->name_len + 2, 16 };
    return true;
}

/* Envoy's HashPolicyImpl::generateHash: each policy that yields a value is
 * folded in with a rotate so duplicates do not cancel; a terminal policy
 * that produced a hash ends the list. */
static bool compute_hash(pf_stream *s, const cfg_route *r, uint64_t *out)
{
    route_req rq = stream_req(s);
    bool have = false;
    uint64_t hash = 0;
    for (size_t i = 0; i < r->n_hash; i++) {
        const cfg_hash_policy *hp = &r->hash[i];
        pf_str v;
        bool got = false;
        char ip[64];
        switch (hp->kind) {
        case CFG_HASH_HEADER:
            got = route_req_header(&rq, hp->name, hp->name_len, &v);
            break;
        case CFG_HASH_COOKIE:
            got = find_cookie(&s->req_hdrs, hp->name, hp->name_len, &v);
            if (!got && hp->has_ttl && !s->set_cookie.p)
                got = make_cookie(s, hp, &v);
            break;
        case CFG_HASH_SOURCE_IP:
            if (!hp->disabled) {
                size_t n = pf_addr_format(s->downstream_remote, false, ip, sizeof ip);
                v = (pf_str){ ip, n };
                got = n > 0;
            }
            break;
        case CFG_HASH_QUERY:
            got = route_query_param(s->path, hp->name, hp->name_len, &v);
            break;
        }
        if (got) {
            uint64_t nh = route_hash64(v.p, v.n);
            hash = have ? ((hash << 1) | (hash >> 63)) ^ nh : nh;
            have = true;
        }
        if (hp->terminal && have)
            break;
    }
    *out = hash;
    return have;
}

/* Parses a decimal uint64 header value (weighted_clusters.header_name). */
static bool parse_u64(pf_str v, uint64_t *out)
{
    if (!v.n || v.n > 20)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return false;
        uint64_t d = (uint64_t)(v.p[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *out = x;
    return true;
}

int route_action_pick_cluster(pf_stream *s, size_t *out)
{
    const cfg_route *r = s->route;
    if (r->n_hash && !s->has_route_hash)
        s->has_route_hash = compute_hash(s, r, &s->route_hash);
    if (r->cluster_plugin)          /* cluster_specifier_plugin: Lua picks the cluster */
        return pf_lua_cluster_pick(s, r->cluster_plugin, out);
    if (r->cluster_header) {
        pf_hdr *h = pf_hdrs_get(&s->req_hdrs, r->cluster_header, r->cluster_header_len);
        if (!h || !h->value.n)
            return -ENOENT;
        ptrdiff_t i = cfg_cluster_index(s->w->cfg, h->value.p, h->value.n);
        if (i < 0)
            return -ENOENT;
        *out = (size_t)i;
        return 0;
    }
    if (!r->n_weighted) {
        *out = r->cluster_index;
        return 0;
    }
    uint64_t value;
    bool hashed = false;
    pf_hdr *h;
    if (s->has_route_hash) {
        value = s->route_hash;
        hashed = true;
    } else if (!(r->wc_header_name &&
                 (h = pf_hdrs_get(&s->req_hdrs, r->wc_header_name, r->wc_header_name_len)) &&
                 parse_u64(h->value, &value))) {
        value = pf_worker_random(s->w);
    }
    size_t i = route_weighted_pick(r, s->w->runtime, value, hashed);
    if (i >= r->n_weighted)
        return -ENOENT;
    s->wcluster = &r->weighted[i];
    *out = r->weighted[i].cluster_index;
    return 0;
}

/* ---- rewrites ---- */

/* Length of the path prefix the route matched (prefix_rewrite replaces it). */
static size_t matched_len(const cfg_route *r, size_t plen)
{
    switch (r->match_kind) {
    case CFG_MATCH_PREFIX:
    case CFG_MATCH_SEP_PREFIX:
        return r->match_len <= plen ? r->match_len : plen;
    default:
        return plen;            /* path and regex: the whole path */
    }
}

/* The path after prefix_rewrite / regex_rewrite (query kept), or false when
 * neither applies. */
static bool rewrite_path(pf_stream *s, const cfg_route *r, const char *prefix, size_t pn,
                         const cfg_regex_rewrite *rr, pf_str path, pf_str *out)
{
    const char *q = memchr(path.p, '?', path.n);
    size_t plen = q ? (size_t)(q - path.p) : path.n;
    *out = (pf_str){ NULL, 0 };
    if (prefix) {
        size_t mn = matched_len(r, plen);
        if (pf_arena_dup(&s->arena, out, prefix, pn) < 0 ||
            pf_arena_append(&s->arena, out, path.p + mn, path.n - mn) < 0)
            return false;
        return true;
    }
    if (rr && rr->re.code) {
        if (route_regex_rewrite(rr, path.p, plen, &s->arena, out) < 0 ||
            (path.n > plen && pf_arena_append(&s->arena, out, path.p + plen, path.n - plen) < 0))
            return false;
        return true;
    }
    return false;
}

static void set_authority(pf_stream *s, pf_str host)
{
    const cfg_route *r = s->route;
    if (r->append_x_forwarded_host && s->authority.n) {
        pf_hdr *x = pf_hdrs_get_lit(&s->req_hdrs, "x-forwarded-host");
        if (x) {
            pf_str v = { NULL, 0 };
            if (pf_arena_dup(&s->arena, &v, x->value.p, x->value.n) == 0 &&
                pf_arena_append(&s->arena, &v, ",", 1) == 0 &&
                pf_arena_append(&s->arena, &v, s->authority.p, s->authority.n) == 0)
                x->value = v;
        } else {
            pf_hdrs_add(&s->req_hdrs, &s->arena, PF_STR("x-forwarded-host"), s->authority);
        }
    }
    s->authority = host;
}

/* Applies the levels in Envoy's order: the weighted cluster first, then
 * route, virtual host, route config (or the reverse of those three with
 * most_specific_header_mutations_wins), later writes winning. */
static void apply_levels(pf_stream *s, pf_hdrs *h, bool resp)
{
    const cfg_route *r = s->route;
    const cfg_route_config *rc = &s->hcm->route_config;
    const cfg_header_mutations *lv[3] = {
        resp ? &r->resp_mut : &r->req_mut,
        s->vhost ? (resp ? &s->vhost->resp_mut : &s->vhost->req_mut) : NULL,
        resp ? &rc->resp_mut : &rc->req_mut,
    };
    if (s->wcluster)
        route_headers_apply(s, h, resp ? &s->wcluster->resp_mut : &s->wcluster->req_mut);
    for (int i = 0; i < 3; i++) {
        const cfg_header_mutations *m = lv[rc->most_specific_header_mutations_wins ? 2 - i : i];
        if (m && (m->n_add || m->n_remove))
            route_headers_apply(s, h, m);
    }
}

void route_action_apply_request(pf_stream *s)
{
    const cfg_route *r = s->route;
    apply_levels(s, &s->req_hdrs, false);
    /* host */
    if (s->wcluster && s->wcluster->host_rewrite_literal) {
        set_authority(s, (pf_str){ s->wcluster->host_rewrite_literal,
                                   s->wcluster->host_rewrite_literal_len });
    } else if (r->host_rewrite_literal) {
        set_authority(s, (pf_str){ r->host_rewrite_literal, r->host_rewrite_literal_len });
    } else if (r->host_rewrite_header) {
        pf_hdr *h = pf_hdrs_get(&s->req_hdrs, r->host_rewrite_header, r->host_rewrite_header_len);
        if (h && h->value.n)
            set_authority(s, h->value);
    }
    /* path */
    pf_str np;
    if (rewrite_path(s, r, r->prefix_rewrite, r->prefix_rewrite_len, &r->regex_rewrite, s->path,
                     &np)) {
        /* Envoy keeps the client's path for the upstream and access logs. */
        pf_hdrs_remove_lit(&s->req_hdrs, "x-envoy-original-path");
        pf_hdrs_add(&s->req_hdrs, &s->arena, PF_STR("x-envoy-original-path"), s->path);
        s->path = np;
    }
}

void route_action_host_rewrite(pf_stream *s, const struct sockaddr_storage *addr)
{
    if (!s->route || !s->route->auto_host_rewrite || !addr)
        return;
    char buf[80];
    size_t n = pf_addr_format(addr, true, buf, sizeof buf);
    pf_str h;
    if (n && pf_arena_dup(&s->arena, &h, buf, n) == 0)
        set_authority(s, h);
}

/* ---- redirects ---- */

/* Envoy's RouteEntryImplBase::newUri(). */
static bool build_redirect(pf_stream *s, const cfg_route *r)
{
    const cfg_redirect *rd = &r->redirect;
    pf_hdr *xfp = pf_hdrs_get_lit(&s->req_hdrs, "x-forwarded-proto");
    pf_str req_proto = xfp ? xfp->value : s->scheme;
    pf_str scheme = rd->scheme ? (pf_str){ rd->scheme, strlen(rd->scheme) } : req_proto;
    if (!scheme.n)
        scheme = PF_STR("http");
    pf_str port = rd->port ? (pf_str){ rd->port, strlen(rd->port) } : (pf_str){ "", 0 };
    pf_str host;
    if (rd->host) {
        host = (pf_str){ rd->host, strlen(rd->host) };
    } else {
        /* processRequestHost: drop the request's port when a new port is
         * set, or when it is the default of the scheme we leave. */
        host = s->authority;
        const char *hp = NULL;
        if (host.n && host.p[0] == '[') {
            for (size_t i = host.n; i-- > 1;)
                if (host.p[i] == ':' && host.p[i - 1] == ']') {
                    hp = host.p + i;
                    break;
                }
        } else {
            for (size_t i = host.n; i-- > 0;)
                if (host.p[i] == ':') {
                    hp = host.p + i;
                    break;
                }
        }
        if (hp) {
            pf_str rport = { hp, (size_t)(host.p + host.n - hp) };
            bool remove = rd->port != NULL;
            if (!(scheme.n == req_proto.n && !memcmp(scheme.p, req_proto.p, scheme.n))) {
                remove |= pf_str_eq_lit(req_proto, "https") && pf_str_eq_lit(rport, ":443");
                remove |= pf_str_eq_lit(req_proto, "http") && pf_str_eq_lit(rport, ":80");
            }
            if (remove)
                host.n = (size_t)(hp - host.p);
        }
    }
    const char *q = memchr(s->path.p, '?', s->path.n);
    size_t plen = q ? (size_t)(q - s->path.p) : s->path.n;
    pf_str path = s->path, np;
    if (rd->path) {
        path = (pf_str){ rd->path, strlen(rd->path) };
    } else if (rewrite_path(s, r, rd->prefix_rewrite, rd->prefix_rewrite_len,
                            &rd->regex_rewrite, s->path, &np)) {
        path = np;
    }
    pf_str out = { NULL, 0 };
    pf_arena *a = &s->arena;
    int rc = pf_arena_dup(a, &out, scheme.p, scheme.n);
    rc = rc ? rc : pf_arena_append(a, &out, "://", 3);
    rc = rc ? rc : (host.n ? pf_arena_append(a, &out, host.p, host.n) : 0);
    rc = rc ? rc : (port.n ? pf_arena_append(a, &out, port.p, port.n) : 0);
    if (rd->path) {
        rc = rc ? rc : pf_arena_append(a, &out, path.p, path.n);
        /* the redirect's own query wins; else the request's, unless stripped */
        if (!rd->path_has_query && !rd->strip_query && q)
            rc = rc ? rc : pf_arena_append(a, &out, q, s->path.n - plen);
    } else {
        const char *pq = memchr(path.p, '?', path.n);
        size_t n = rd->strip_query && pq ? (size_t)(pq - path.p) : path.n;
        rc = rc ? rc : pf_arena_append(a, &out, path.p, n);
    }
    if (rc)
        return false;
    s->redirect_location = out;
    return true;
}

/* ---- entry points ---- */

route_outcome route_action_select(pf_stream *s)
{
    const cfg_route_config *rc = &s->hcm->route_config;
    const cfg_virtual_host *vh = route_find_vhost(rc, s->authority);
    if (!vh)
        return ROUTE_NOT_FOUND;
    route_req rq = stream_req(s);
    rq.random = pf_worker_random(s->w);
    const cfg_route *r = route_match(vh, &rq);
    if (!r)
        return ROUTE_NOT_FOUND;
    s->vhost = vh;
    s->route = r;
    switch (r->action) {
    case CFG_ACTION_DIRECT:
        return ROUTE_DIRECT;
    case CFG_ACTION_REDIRECT:
        return build_redirect(s, r) ? ROUTE_REDIRECT : ROUTE_NO_CLUSTER;
    case CFG_ACTION_ROUTE:
        break;
    }
    size_t c;
    if (route_action_pick_cluster(s, &c) < 0)
        return ROUTE_NO_CLUSTER;
    s->cluster = c;
    return ROUTE_FORWARD;
}

void route_action_apply_response(pf_stream *s)
{
    if (!s->route)
        return;
    if (s->redirect_location.p)
        pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("location"), s->redirect_location);
    if (s->set_cookie.p)
        pf_hdrs_add(&s->resp_hdrs, &s->arena, PF_STR("set-cookie"), s->set_cookie);
    apply_levels(s, &s->resp_hdrs, true);
}
