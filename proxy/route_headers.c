#include "proxy/route_headers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proxy/addr.h"
#include "proxy/http.h"
#include "proxy/route_match.h"


/* %START_TIME%: Envoy's default "%Y-%m-%dT%H:%M:%E3SZ", or strftime(fmt). */
static size_t format_start(const pf_stream *s, const char *fmt, char *out, size_t outn)
{
    time_t sec = (time_t)(s->start_wall_us / 1000000u);
    struct tm tm;
    gmtime_r(&sec, &tm);
    if (!fmt) {
        size_t n = strftime(out, outn, "%Y-%m-%dT%H:%M:%S", &tm);
        int k = snprintf(out + n, outn - n, ".%03uZ",
                         (unsigned)(s->start_wall_us % 1000000u / 1000u));
        return k < 0 ? n : n + (size_t)k;
    }
    return strftime(out, outn, fmt, &tm);
}

static pf_str hostname(void)
{
    static __thread char name[256];
    static __thread size_t len;
    if (!len) {
        if (gethostname(name, sizeof name - 1) != 0)
            strcpy(name, "-");
        name[sizeof name - 1] = '\0';
        len = strlen(name);
    }
    return (pf_str){ name, len };
}

static bool stream_req_header(pf_stream *s, const char *lname, size_t n, pf_str *out)
{
    route_req rq = { .method = s->method, .path = s->path, .authority = s->authority,
                     .scheme = s->scheme, .hdrs = &s->req_hdrs };
    pf_hdr *h;
    if (n && lname[0] != ':' && !(n == 4 && !memcmp(lname, "host", 4))) {
        /* Envoy's %REQ()% is the first value. */
        if (!(h = pf_hdrs_get(&s->req_hdrs, lname, n)))
            return false;
        *out = h->value;
        return true;
    }
    return route_req_header(&rq, lname, n, out);
}

int route_fmt_render(const cfg_fmt *f, pf_stream *s, pf_str *out)
{
    *out = (pf_str){ NULL, 0 };
    if (f->n == 1 && f->parts[0].op == CFG_FMT_LIT) {
        *out = (pf_str){ f->parts[0].s, f->parts[0].n };
        return 0;
    }
    char tmp[256];
    for (size_t i = 0; i < f->n; i++) {
        const cfg_fmt_part *p = &f->parts[i];
        pf_str v = { NULL, 0 };
        size_t k = 0;
        pf_hdr *h;
        switch (p->op) {
        case CFG_FMT_LIT:
            v = (pf_str){ p->s, p->n };
            break;
        case CFG_FMT_DS_REMOTE:
        case CFG_FMT_DS_REMOTE_NOPORT:
            k = pf_addr_format(s->downstream_remote, p->op == CFG_FMT_DS_REMOTE, tmp,
                                  sizeof tmp);
            v = (pf_str){ tmp, k };
            break;
        case CFG_FMT_DS_LOCAL:
        case CFG_FMT_DS_LOCAL_NOPORT:
            k = pf_addr_format(s->downstream_local, p->op == CFG_FMT_DS_LOCAL, tmp,
                                  sizeof tmp);
            v = (pf_str){ tmp, k };
            break;
        case CFG_FMT_UP_REMOTE:
            if (s->has_upstream_host)
                k = pf_addr_format(&s->upstream_host, true, tmp, sizeof tmp);
            v = (pf_str){ tmp, k };
            break;
        case CFG_FMT_PROTOCOL:
            v = s->protocol;
            break;
        case CFG_FMT_REQ:
            if (!stream_req_header(s, p->s, p->n, &v))
                v = (pf_str){ NULL, 0 };
            break;
        case CFG_FMT_RESP:
            if ((h = pf_hdrs_get(&s->resp_hdrs, p->s, p->n)))
                v = h->value;
            break;
        case CFG_FMT_START_TIME:
            k = format_start(s, p->s, tmp, sizeof tmp);
            v = (pf_str){ tmp, k };
            break;
        case CFG_FMT_RESPONSE_CODE: {
            int n = snprintf(tmp, sizeof tmp, "%d", s->status);
            v = (pf_str){ tmp, n > 0 ? (size_t)n : 0 };
            break;
        }
        case CFG_FMT_HOSTNAME:
            v = hostname();
            break;
        }
        if (v.n && pf_arena_append(&s->arena, out, v.p, v.n) < 0)
            return -ENOMEM;
    }
    return 0;
}

void route_headers_apply(pf_stream *s, pf_hdrs *h, const cfg_header_mutations *m)
{
    for (size_t i = 0; i < m->n_remove; i++)
        pf_hdrs_remove(h, m->remove[i].p, m->remove[i].n);
    for (size_t i = 0; i < m->n_add; i++) {
        const cfg_header_add *a = &m->add[i];
        pf_str v;
        if (route_fmt_render(&a->value, s, &v) < 0)
            continue;
        if (!v.n && !a->keep_empty_value)
            continue;
        if (!v.p)
            v = (pf_str){ "", 0 };
        pf_str name = { a->name, a->name_len };
        bool exists = pf_hdrs_get(h, a->name, a->name_len) != NULL;
        switch (a->action) {
        case CFG_APPEND_IF_EXISTS_OR_ADD:
            break;
        case CFG_ADD_IF_ABSENT:
            if (exists)
                continue;
            break;
        case CFG_OVERWRITE_IF_EXISTS:
            if (!exists)
                continue;
            /* fall through */
        case CFG_OVERWRITE_IF_EXISTS_OR_ADD:
            pf_hdrs_remove(h, a->name, a->name_len);
            break;
        }
        pf_hdrs_add(h, &s->arena, name, v);
    }
}
