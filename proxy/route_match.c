#include "proxy/route_match.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin/runtime.h"
#include "proxy/route_index.h"
#include "proxy/route_regex.h"

/* ---- virtual hosts ---- */

/* Returns the match strength of domain d (length dn) for host h: 0 none,
 * larger is better. */
static uint64_t domain_score(const char *d, size_t dn, pf_str h)
{
    if (dn == 1 && d[0] == '*')
        return 1;
    if (dn > 1 && d[0] == '*') {        /* "*.suffix": must leave a non-empty label */
        size_t sn = dn - 1;
        if (h.n > sn && strncasecmp(h.p + h.n - sn, d + 1, sn) == 0)
            return (uint64_t)1 << 40 | sn << 1;
        return 0;
    }
    if (dn > 1 && d[dn - 1] == '*') {   /* "prefix.*" */
        size_t pn = dn - 1;
        if (h.n > pn && strncasecmp(h.p, d, pn) == 0)
            return (uint64_t)1 << 20 | pn;
        return 0;
    }
    if (dn == h.n && strncasecmp(h.p, d, dn) == 0)
        return (uint64_t)1 << 60;
    return 0;
}

/* Host without ":port" ("[v6]:port" keeps its brackets). */
static pf_str strip_port(pf_str h)
{
    size_t i = h.n;
    while (i > 0 && h.p[i - 1] >= '0' && h.p[i - 1] <= '9')
        i--;
    if (i == 0 || i == h.n || h.p[i - 1] != ':')
        return h;
    i--;
    if (h.p[0] == '[') {
        if (i > 0 && h.p[i - 1] == ']')
            return (pf_str){ h.p, i };
        return h;
    }
    if (memchr(h.p, ':', i))            /* bare IPv6 without brackets: no port */
        return h;
    return (pf_str){ h.p, i };
}

const cfg_virtual_host *route_find_vhost(const cfg_route_config *rc, pf_str authority)
{
    if (rc->ignore_port_in_host_matching)
        authority = strip_port(authority);
    const cfg_virtual_host *best = NULL;
    uint64_t best_score = 0;
    for (size_t i = 0; i < rc->n_vhosts; i++) {
        const cfg_virtual_host *vh = &rc->vhosts[i];
        for (size_t j = 0; j < vh->n_domains; j++) {
            size_t dn = vh->domain_lens ? vh->domain_lens[j] : strlen(vh->domains[j]);
            uint64_t sc = domain_score(vh->domains[j], dn, authority);
            if (sc > best_score) {
                best_score = sc;
                best = vh;
            }
        }
    }
    return best;
}

/* ---- string, header and query matchers ---- */

static bool mem_ieq(const char *a, const char *lower, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)a[i]) != lower[i])
            return false;
    return true;
}

static bool mem_eq(const char *a, const char *b, size_t n, bool icase)
{
    return icase ? mem_ieq(a, b, n) : memcmp(a, b, n) == 0;
}

bool route_string_match(const cfg_string_match *m, const char *p, size_t n)
{
    switch (m->kind) {
    case CFG_SM_EXACT:
        return n == m->len && mem_eq(p, m->value, n, m->ignore_case);
    case CFG_SM_PREFIX:
        return n >= m->len && mem_eq(p, m->value, m->len, m->ignore_case);
    case CFG_SM_SUFFIX:
        return n >= m->len && mem_eq(p + n - m->len, m->value, m->len, m->ignore_case);
    case CFG_SM_CONTAINS:
        if (m->len > n)
            return false;
        for (size_t i = 0; i + m->len <= n; i++)
            if (mem_eq(p + i, m->value, m->len, m->ignore_case))
                return true;
        return false;
    case CFG_SM_REGEX:
        return route_regex_match(&m->re, p, n);
    }
    return false;
}

bool route_req_header(const route_req *rq, const char *lname, size_t n, pf_str *out)
{
    if (n && lname[0] == ':') {
        if (n == 10 && !memcmp(lname, ":authority", 10)) *out = rq->authority;
        else if (n == 5 && !memcmp(lname, ":path", 5)) *out = rq->path;
        else if (n == 7 && !memcmp(lname, ":method", 7)) *out = rq->method;
        else if (n == 7 && !memcmp(lname, ":scheme", 7)) *out = rq->scheme;
        else return false;
        return out->p != NULL;
    }
    if (n == 4 && !memcmp(lname, "host", 4)) {
        *out = rq->authority;
        return out->p != NULL;
    }
    if (!rq->hdrs)
        return false;
    const pf_hdrs *h = rq->hdrs;
    uint32_t i = 0;
    while (i < h->n && !pf_str_eq(h->v[i].name, lname, n))
        i++;
    if (i == h->n)
        return false;
    *out = h->v[i].value;
    /* Envoy matches all values of a repeated header joined with ','. */
    static __thread char joined[8192];
    size_t used = 0;
    for (uint32_t j = i + 1; j < h->n; j++) {
        if (!pf_str_eq(h->v[j].name, lname, n))
            continue;
        if (!used) {
            if (out->n > sizeof joined)
                return true;
            memcpy(joined, out->p, out->n);
            used = out->n;
        }
        if (used + 1 + h->v[j].value.n > sizeof joined)
            break;
        joined[used++] = ',';
        memcpy(joined + used, h->v[j].value.p, h->v[j].value.n);
        used += h->v[j].value.n;
    }
    if (used)
        *out = (pf_str){ joined, used };
    return true;
}

/* absl::SimpleAtoi: optional whitespace and sign around a decimal int64. */
static bool parse_i64(pf_str v, int64_t *out)
{
    char buf[32];
    size_t b = 0, e = v.n;
    while (b < e && isspace((unsigned char)v.p[b]))
        b++;
    while (e > b && isspace((unsigned char)v.p[e - 1]))
        e--;
    if (e == b || e - b >= sizeof buf)
        return false;
    memcpy(buf, v.p + b, e - b);
    buf[e - b] = '\0';
    char *end;
    errno = 0;
    long long x = strtoll(buf, &end, 10);
    if (errno || *end || !(isdigit((unsigned char)buf[0]) || buf[0] == '-' || buf[0] == '+'))
        return false;
    *out = x;
    return true;
}

bool route_header_match(const cfg_header_match *h, const route_req *rq)
{
    pf_str v;
    bool found = route_req_header(rq, h->name, h->name_len, &v);
    if (!found && h->treat_missing_as_empty) {
        v = (pf_str){ "", 0 };
        found = true;
    }
    if (!found) {
        /* Envoy: a missing header fails every matcher, inverted or not,
         * except present_match (whose value and invert_match decide). */
        if (h->kind == CFG_HM_PRESENT)
            return h->present == h->invert;
        return false;
    }
    bool m;
    switch (h->kind) {
    case CFG_HM_PRESENT:
        m = h->present;
        break;
    case CFG_HM_RANGE: {
        int64_t x;
        m = parse_i64(v, &x) && x >= h->range_start && x < h->range_end;
        break;
    }
    default:
        m = route_string_match(&h->sm, v.p, v.n);
        break;
    }
    return m != h->invert;
}

bool route_query_param(pf_str path, const char *name, size_t n, pf_str *value)
{
    const char *q = memchr(path.p, '?', path.n);
    if (!q)
        return false;
    const char *p = q + 1, *end = path.p + path.n;
    const char *frag = memchr(p, '#', (size_t)(end - p));
    if (frag)
        end = frag;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ke = eq ? eq : pe;
        if ((size_t)(ke - p) == n && memcmp(p, name, n) == 0) {
            *value = eq ? (pf_str){ eq + 1, (size_t)(pe - eq - 1) } : (pf_str){ "", 0 };
            return true;
        }
        p = pe + 1;
    }
    return false;
}

bool route_query_match(const cfg_query_match *q, pf_str path)
{
    pf_str v;
    if (!route_query_param(path, q->name, q->name_len, &v))
        return false;
    if (q->has_present)
        return q->present;
    if (!q->has_sm)
        return true;
    return route_string_match(&q->sm, v.p, v.n);
}

/* content-type is application/grpc, or application/grpc+proto, ...;... */
static bool is_grpc(const route_req *rq)
{
    pf_str ct;
    if (!route_req_header(rq, "content-type", 12, &ct) || ct.n < 16 ||
        memcmp(ct.p, "application/grpc", 16) != 0)
        return false;
    return ct.n == 16 || ct.p[16] == '+' || ct.p[16] == ';';
}

/* ---- routes ---- */

static bool path_matches(const cfg_route *r, pf_str path, size_t plen)
{
    const bool ic = r->case_insensitive;
    size_t mn = r->match_len;
    switch (r->match_kind) {
    case CFG_MATCH_PREFIX:
        return path.n >= mn && (ic ? strncasecmp(path.p, r->match_value, mn) == 0
                                   : memcmp(path.p, r->match_value, mn) == 0);
    case CFG_MATCH_PATH:
        return plen == mn && (ic ? strncasecmp(path.p, r->match_value, mn) == 0
                                 : memcmp(path.p, r->match_value, mn) == 0);
    case CFG_MATCH_SEP_PREFIX:
        if (plen < mn || (plen > mn && path.p[mn] != '/'))
            return false;
        return ic ? strncasecmp(path.p, r->match_value, mn) == 0
                  : memcmp(path.p, r->match_value, mn) == 0;
    case CFG_MATCH_REGEX:
        return route_regex_match(&r->match_re, path.p, plen);
    }
    return false;
}

static bool route_accepts(const cfg_route *r, const route_req *rq, size_t plen)
{
    if (!path_matches(r, rq->path, plen))
        return false;
    if (r->has_runtime_fraction) {
        bool on = r->rf_key ? runtime_fraction_enabled(rq->runtime, r->rf_key, r->rf_num,
                                                       r->rf_den, rq->random)
                            : rq->random % r->rf_den < r->rf_num;
        if (!on)
            return false;
    }
    for (size_t i = 0; i < r->n_headers; i++)
        if (!route_header_match(&r->headers[i], rq))
            return false;
    for (size_t i = 0; i < r->n_queries; i++)
        if (!route_query_match(&r->queries[i], rq->path))
            return false;
    if (r->grpc && !is_grpc(rq))
        return false;
    return true;
}

const cfg_route *route_match(const cfg_virtual_host *vh, const route_req *rq)
{
    const char *q = memchr(rq->path.p, '?', rq->path.n);
    size_t plen = q ? (size_t)(q - rq->path.p) : rq->path.n;
    if (vh->index) {
        route_cands c;
        route_index_candidates(vh->index, rq, &c);
        for (uint32_t i; (i = route_cands_next(&c)) != UINT32_MAX;)
            if (route_accepts(&vh->routes[i], rq, plen))
                return &vh->routes[i];
        return NULL;
    }
    for (size_t i = 0; i < vh->n_routes; i++) {
        const cfg_route *r = &vh->routes[i];
        if (route_accepts(r, rq, plen))
            return r;
    }
    return NULL;
}

const cfg_route *route_find(const cfg_virtual_host *vh, pf_str path)
{
    route_req rq = { .path = path };
    return route_match(vh, &rq);
}
