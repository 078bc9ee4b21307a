/* A virtual host's route index: which routes can possibly match a request,
 * found with a few hash lookups instead of trying every route.
 *
 * Each route goes in exactly one list:
 *   - by one exact, case-sensitive, non-inverted header matcher: key
 *     (header, value), looked up with the request's value of that header;
 *   - else by the first min(len, 8) bytes of a case-sensitive prefix, path
 *     or path_separated_prefix: key (length, bytes), looked up with the
 *     request path's first bytes for every length in use;
 *   - else (regex, case-insensitive, empty prefix) in the "always" list.
 * A route outside the looked-up lists cannot match, so walking the union
 * of the looked-up lists in route order and returning the first route that
 * fully matches (route_accepts) is Envoy's first-match rule.  Lists are
 * keyed by a 64-bit hash only: a collision merges two lists, which costs a
 * wasted route_accepts, never a wrong answer. */
#include "proxy/route_index.h"

#include <stdlib.h>
#include <string.h>

#define RI_KEY_MAX ROUTE_INDEX_KEY_MAX
#define RI_MAX_NAMES ROUTE_INDEX_MAX_NAMES
#define RI_MIN_ROUTES 16        /* fewer routes: a plain scan is as fast */

typedef struct ri_bucket {
    uint64_t hash;              /* 0: empty slot */
    uint32_t off, n;            /* into route_index.routes */
} ri_bucket;

struct route_index {
    uint32_t *routes;           /* every list, each ascending */
    ri_bucket *table;           /* open addressing, [mask + 1] */
    uint64_t mask;
    uint32_t always_n;          /* the "always" list is routes[0, always_n) */
    uint16_t path_lens;         /* bit k: some path key has k bytes */
    const char *names[RI_MAX_NAMES];    /* indexed header names (the config's strings) */
    size_t name_lens[RI_MAX_NAMES];
    uint32_t n_names;
};

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    return h;
}

/* Keys never hash to 0 (the empty slot). */
static uint64_t path_key(const char *p, size_t k)
{
    uint64_t h = fnv(0xcbf29ce484222325ull ^ (k * 0x9e3779b97f4a7c15ull), p, k);
    return h ? h : 1;
}

static uint64_t header_key(uint32_t name_id, const char *v, size_t n)
{
    uint64_t h = fnv(0x84222325cbf29ce4ull ^ ((name_id + 1) * 0xc2b2ae3d27d4eb4full), v, n);
    return h ? h : 1;
}

static bool header_indexable(const cfg_header_match *h)
{
    return h->kind == CFG_HM_STRING && h->sm.kind == CFG_SM_EXACT && !h->sm.ignore_case &&
           !h->invert && !h->treat_missing_as_empty;
}

/* The key of route r (registering header names in ix), or 0 for "always". */
static uint64_t route_key(struct route_index *ix, const cfg_route *r)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        const cfg_header_match *h = &r->headers[i];
        if (!header_indexable(h))
            continue;
        uint32_t id = 0;
        while (id < ix->n_names && !(ix->name_lens[id] == h->name_len &&
                                     memcmp(ix->names[id], h->name, h->name_len) == 0))
            id++;
        if (id == ix->n_names) {
            if (id == RI_MAX_NAMES)
                continue;
            ix->names[id] = h->name;
            ix->name_lens[id] = h->name_len;
            ix->n_names++;
        }
        return header_key(id, h->sm.value, h->sm.len);
    }
    bool pathlike = r->match_kind == CFG_MATCH_PREFIX || r->match_kind == CFG_MATCH_PATH ||
                    r->match_kind == CFG_MATCH_SEP_PREFIX;
    if (!pathlike || r->case_insensitive || r->match_len == 0)
        return 0;
    size_t k = r->match_len < RI_KEY_MAX ? r->match_len : RI_KEY_MAX;
    ix->path_lens |= (uint16_t)(1u << k);
    return path_key(r->match_value, k);
}

static ri_bucket *slot(const struct route_index *ix, uint64_t h)
{
    uint64_t i = h & ix->mask;
    while (ix->table[i].hash && ix->table[i].hash != h)
        i = (i + 1) & ix->mask;
    return &ix->table[i];
}

struct route_index *route_index_new(const cfg_virtual_host *vh)
{
    size_t n = vh->n_routes;
    if (n < RI_MIN_ROUTES || n > UINT32_MAX / 4)
        return NULL;
    struct route_index *ix = calloc(1, sizeof *ix);
    uint64_t *keys = malloc(n * sizeof *keys);
    if (ix)
        ix->routes = malloc(n * sizeof *ix->routes);
    uint64_t cap = 16;
    while (cap < 2 * (uint64_t)n)
        cap <<= 1;
    if (ix)
        ix->table = calloc(cap, sizeof *ix->table);
    if (!ix || !keys || !ix->routes || !ix->table) {
        free(keys);
        route_index_free(ix);
        return NULL;
    }
    ix->mask = cap - 1;
    /* Count per key, then place each list after the "always" one, filling
     * in route order so every list is ascending. */
    for (size_t i = 0; i < n; i++) {
        keys[i] = route_key(ix, &vh->routes[i]);
        if (!keys[i]) {
            ix->always_n++;
            continue;
        }
        ri_bucket *b = slot(ix, keys[i]);
        b->hash = keys[i];
        b->n++;
    }
    uint32_t off = ix->always_n;
    for (uint64_t s = 0; s <= ix->mask; s++) {
        if (ix->table[s].hash) {
            ix->table[s].off = off;
            off += ix->table[s].n;
            ix->table[s].n = 0;
        }
    }
    uint32_t always = 0;
    for (size_t i = 0; i < n; i++) {
        if (!keys[i]) {
            ix->routes[always++] = (uint32_t)i;
        } else {
            ri_bucket *b = slot(ix, keys[i]);
            ix->routes[b->off + b->n++] = (uint32_t)i;
        }
    }
    free(keys);
    return ix;
}

static void add_list(route_cands *c, const uint32_t *p, uint32_t n)
{
    if (n) {
        c->cur[c->n] = p;
        c->end[c->n++] = p + n;
    }
}

void route_index_candidates(const struct route_index *ix, const route_req *rq, route_cands *c)
{
    c->n = 0;
    add_list(c, ix->routes, ix->always_n);
    for (uint32_t k = 1; k <= RI_KEY_MAX && k <= rq->path.n; k++) {
        if (ix->path_lens & (1u << k)) {
            const ri_bucket *b = slot(ix, path_key(rq->path.p, k));
            add_list(c, ix->routes + b->off, b->n);
        }
    }
    for (uint32_t id = 0; id < ix->n_names; id++) {
        pf_str v;
        if (route_req_header(rq, ix->names[id], ix->name_lens[id], &v)) {
            const ri_bucket *b = slot(ix, header_key(id, v.p, v.n));
            add_list(c, ix->routes + b->off, b->n);
        }
    }
}

uint32_t route_cands_next(route_cands *c)
{
    uint32_t best = UINT32_MAX, bi = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->cur[i] < c->end[i] && *c->cur[i] < best) {
            best = *c->cur[i];
            bi = i;
        }
    }
    if (best != UINT32_MAX)
        c->cur[bi]++;
    return best;
}

void route_index_free(struct route_index *ix)
{
    if (!ix)
        return;
    free(ix->routes);
    free(ix->table);
    free(ix);
}
