#include "proxy/route_match.h"

#include <string.h>
#include <strings.h>

/* Returns the match strength of domain d for host h: 0 none, larger is better. */
static size_t domain_score(const char *d, pf_str h)
{
    size_t dn = strlen(d);
    if (dn == 1 && d[0] == '*')
        return 1;
    if (dn > 1 && d[0] == '*') {                /* "*.suffix": suffix must leave a non-empty label */
        size_t sn = dn - 1;
        if (h.n > sn && strncasecmp(h.p + h.n - sn, d + 1, sn) == 0)
            return 1 << 20 | sn << 1;
        return 0;
    }
    if (dn > 1 && d[dn - 1] == '*') {           /* "prefix.*" */
        size_t pn = dn - 1;
        if (h.n > pn && strncasecmp(h.p, d, pn) == 0)
            return 1 << 10 | pn;
        return 0;
    }
    if (dn == h.n && strncasecmp(h.p, d, dn) == 0)
        return (size_t)1 << 40;
    return 0;
}

const cfg_virtual_host *route_find_vhost(const cfg_route_config *rc, pf_str authority)
{
    const cfg_virtual_host *best = NULL;
    size_t best_score = 0;
    for (size_t i = 0; i < rc->n_vhosts; i++) {
        const cfg_virtual_host *vh = &rc->vhosts[i];
        for (size_t j = 0; j < vh->n_domains; j++) {
            size_t sc = domain_score(vh->domains[j], authority);
            if (sc > best_score) {
                best_score = sc;
                best = vh;
            }
        }
    }
    return best;
}

const cfg_route *route_find(const cfg_virtual_host *vh, pf_str path)
{
    const char *q = memchr(path.p, '?', path.n);
    size_t plen = q ? (size_t)(q - path.p) : path.n;
    for (size_t i = 0; i < vh->n_routes; i++) {
        const cfg_route *r = &vh->routes[i];
        size_t mn = strlen(r->match_value);
        if (r->match_kind == CFG_MATCH_PREFIX) {
            if (path.n >= mn && memcmp(path.p, r->match_value, mn) == 0)
                return r;
        } else if (plen == mn && memcmp(path.p, r->match_value, mn) == 0) {
            return r;
        }
    }
    return NULL;
}
