#include "proxy/http.h"

#include <errno.h>
#include <strings.h>

bool pf_str_ieq(pf_str a, const char *b, size_t n)
{
    return a.n == n && strncasecmp(a.p, b, n) == 0;
}

int pf_hdrs_add(pf_hdrs *h, pf_arena *a, pf_str name, pf_str value)
{
    if (h->n == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 16;
        pf_hdr *v = pf_arena_alloc(a, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        if (h->n)
            memcpy(v, h->v, h->n * sizeof *v);
        h->v = v;
        h->cap = cap;
    }
    h->v[h->n].name = name;
    h->v[h->n].value = value;
    h->n++;
    return 0;
}

pf_hdr *pf_hdrs_get(const pf_hdrs *h, const char *lname, size_t n)
{
    for (uint32_t i = 0; i < h->n; i++)
        if (pf_str_eq(h->v[i].name, lname, n))
            return &h->v[i];
    return NULL;
}

unsigned pf_hdrs_remove(pf_hdrs *h, const char *lname, size_t n)
{
    uint32_t j = 0;
    unsigned removed = 0;
    for (uint32_t i = 0; i < h->n; i++) {
        if (pf_str_eq(h->v[i].name, lname, n))
            removed++;
        else
            h->v[j++] = h->v[i];
    }
    h->n = j;
    return removed;
}

bool pf_value_has_token(pf_str value, const char *token, size_t n)
{
    size_t i = 0;
    while (i < value.n) {
        while (i < value.n && (value.p[i] == ' ' || value.p[i] == '\t' || value.p[i] == ','))
            i++;
        size_t start = i;
        while (i < value.n && value.p[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (value.p[end - 1] == ' ' || value.p[end - 1] == '\t'))
            end--;
        if (end - start == n && strncasecmp(value.p + start, token, n) == 0)
            return true;
    }
    return false;
}

static bool is_hop_by_hop(pf_str name, const pf_str *conn_value)
{
    static const struct { const char *s; size_t n; } fixed[] = {
        { "connection", 10 }, { "keep-alive", 10 }, { "proxy-connection", 16 },
        { "transfer-encoding", 17 }, { "upgrade", 7 }, { "http2-settings", 14 },
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (pf_str_eq(name, fixed[i].s, fixed[i].n))
            return true;
    return conn_value && pf_value_has_token(*conn_value, name.p, name.n);
}

void pf_hdrs_strip_hop_by_hop(pf_hdrs *h)
{
    pf_hdr *c = pf_hdrs_get_lit(h, "connection");
    pf_str conn = c ? c->value : (pf_str){ NULL, 0 };
    uint32_t j = 0;
    for (uint32_t i = 0; i < h->n; i++) {
        pf_hdr *x = &h->v[i];
        if (is_hop_by_hop(x->name, c ? &conn : NULL))
            continue;
        if (pf_str_eq_lit(x->name, "te") && !pf_value_has_token(x->value, "trailers", 8))
            continue;
        if (pf_str_eq_lit(x->name, "te"))
            x->value = PF_STR("trailers");
        h->v[j++] = *x;
    }
    h->n = j;
}

size_t pf_u64_dec(uint64_t v, char *out)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

pf_str pf_arena_u64(pf_arena *a, uint64_t v)
{
    char *p = pf_arena_alloc(a, 20);
    if (!p)
        return PF_STR("0");
    return (pf_str){ p, pf_u64_dec(v, p) };
}

const char *pf_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
    }
}
