/* Load balancing: the per-priority structures a host set carries (built on
 * the main thread when it is published) and the pick a worker makes.
 *
 * Envoy v3 semantics: a priority's health is min(100, overprovisioning_factor
 * * healthy / total); priorities take load in order until 100% is placed,
 * scaled up when the total health is below 100.  A priority whose healthy
 * percentage is below healthy_panic_threshold balances over all its hosts
 * (only when the total health is below 100).  Within a priority:
 * ROUND_ROBIN (smooth weighted), LEAST_REQUEST (power of choice_count
 * choices), RANDOM, RING_HASH and MAGLEV (random without a hash).
 *
 * locality_weighted_lb_config (ROUND_ROBIN, LEAST_REQUEST, RANDOM): within a
 * priority not in panic, a locality is first picked by smooth weighted round
 * robin over its effective weight, load_balancing_weight x min(1,
 * overprovisioning_factor x healthy / total) (Envoy's effectiveLocalityWeight;
 * a locality without a weight gets none), then a host among its healthy
 * ones.  When no locality has weight, the priority's healthy hosts are used
 * (Envoy falls through the same way). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cluster_config.h"
#include "proxy/cluster.h"
#include "proxy/route_action.h"

static void list_free(pf_lb_list *l)
{
    free(l->hosts);
    free(l->weights);
    free(l->ring_hash);
    free(l->ring_host);
    free(l->maglev);
    memset(l, 0, sizeof *l);
}

void pf_lb_free_prio(pf_hostset *hs)
{
    for (uint32_t p = 0; p < hs->n_prio && hs->prio; p++) {
        pf_lb_prio *pr = &hs->prio[p];
        list_free(&pr->healthy);
        list_free(&pr->all);
        for (uint32_t k = 0; k < pr->n_locs; k++)
            list_free(&pr->locs[k].healthy);
        free(pr->locs);
    }
    free(hs->prio);
    hs->prio = NULL;
    hs->n_prio = 0;
}

/* "ip:port", the key Envoy hashes a host by. */
static size_t host_key(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        port = ntohs(a->sin6_port);
        return (size_t)snprintf(buf, len, "[%s]:%u", ip, port);
    }
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
    port = ntohs(a->sin_port);
    return (size_t)snprintf(buf, len, "%s:%u", ip, port);
}

typedef struct ring_point {
    uint64_t hash;
    uint32_t host;
} ring_point;

static int cmp_point(const void *a, const void *b)
{
    const ring_point *x = a, *y = b;
    return x->hash < y->hash ? -1 : x->hash > y->hash ? 1 : (x->host > y->host) - (x->host < y->host);
}

/* Envoy's ring: each host gets round(scale * weight / total) points hashed
 * from "ip:port_i", scale = min(ceil(min_w * min_ring) / min_w, max_ring). */
static int build_ring(pf_lb_list *l, const pf_hostset *hs, uint64_t ring_min, uint64_t ring_max)
{
    if (!l->n)
        return 0;
    double min_w = 1.0;
    for (uint32_t i = 0; i < l->n; i++) {
        double nw = (double)l->weights[i] / (double)l->total_weight;
        if (nw < min_w)
            min_w = nw;
    }
    double scale = (double)(uint64_t)(min_w * (double)ring_min + 0.999999) / min_w;
    if (scale > (double)ring_max)
        scale = (double)ring_max;
    uint64_t cap = 0;
    for (uint32_t i = 0; i < l->n; i++)
        cap += (uint64_t)(scale * (double)l->weights[i] / (double)l->total_weight + 0.5) + 1;
    ring_point *pts = malloc(cap * sizeof *pts);
    if (!pts)
        return -ENOMEM;
    double target = 0;
    uint64_t k = 0;
    for (uint32_t i = 0; i < l->n; i++) {
        char key[96];
        size_t kl = host_key(&hs->addrs[l->hosts[i]], key, sizeof key - 24);
        target += scale * (double)l->weights[i] / (double)l->total_weight;
        for (uint64_t j = 0; (double)k < target && k < cap; j++) {
            int n = snprintf(key + kl, 24, "_%llu", (unsigned long long)j);
            pts[k].hash = route_hash64(key, kl + (size_t)n);
            pts[k].host = i;
            k++;
        }
    }
    qsort(pts, k, sizeof *pts, cmp_point);
    l->ring_hash = malloc((k ? k : 1) * sizeof *l->ring_hash);
    l->ring_host = malloc((k ? k : 1) * sizeof *l->ring_host);
    if (!l->ring_hash || !l->ring_host) {
        free(pts);
        return -ENOMEM;
    }
    for (uint64_t i = 0; i < k; i++) {
        l->ring_hash[i] = pts[i].hash;
        l->ring_host[i] = pts[i].host;
    }
    l->ring_n = (uint32_t)k;
    free(pts);
    return 0;
}

/* Maglev (Eisenbud et al.) with Envoy's weighting: a host takes a turn
 * when its accumulated weight allows, filling its next free preferred slot. */
static int build_maglev(pf_lb_list *l, const pf_hostset *hs, uint32_t m)
{
    if (!l->n)
        return 0;
    uint64_t *offset = calloc(l->n, sizeof *offset), *skip = calloc(l->n, sizeof *skip);
    uint64_t *next = calloc(l->n, sizeof *next);
    double *target = calloc(l->n, sizeof *target);
    l->maglev = malloc((size_t)m * sizeof *l->maglev);
    if (!offset || !skip || !next || !target || !l->maglev) {
        free(offset), free(skip), free(next), free(target);
        return -ENOMEM;
    }
    double max_w = 0;
    for (uint32_t i = 0; i < l->n; i++) {
        char key[96];
        size_t kl = host_key(&hs->addrs[l->hosts[i]], key, sizeof key - 4);
        offset[i] = route_hash64(key, kl) % m;
        key[kl] = '#';
        skip[i] = route_hash64(key, kl + 1) % (m - 1) + 1;
        double nw = (double)l->weights[i] / (double)l->total_weight;
        if (nw > max_w)
            max_w = nw;
    }
    for (uint32_t i = 0; i < m; i++)
        l->maglev[i] = UINT32_MAX;
    uint32_t filled = 0;
    for (uint64_t iter = 1; filled < m; iter++) {
        for (uint32_t i = 0; i < l->n && filled < m; i++) {
            double nw = (double)l->weights[i] / (double)l->total_weight;
            if ((double)iter * nw < target[i])
                continue;
            target[i] += max_w;
            uint64_t c;
            do
                c = (offset[i] + skip[i] * next[i]++) % m;
            while (l->maglev[c] != UINT32_MAX);
            l->maglev[c] = i;
            filled++;
        }
    }
    l->maglev_n = m;
    free(offset), free(skip), free(next), free(target);
    return 0;
}

/* Does host i belong to the list of priority prio (healthy ones only when
 * healthy_only; of locality loc unless loc is LB_ANY_LOCALITY)? */
#define LB_ANY_LOCALITY UINT64_MAX
static bool in_list(const pf_hostset *hs, size_t i, uint32_t prio, bool healthy_only, uint64_t loc)
{
    const pf_host_info *h = &hs->info[i];
    return h->priority == prio && (!healthy_only || !(h->flags & PF_HOST_UNHEALTHY)) &&
           (loc == LB_ANY_LOCALITY || h->locality == loc);
}

static int build_list(pf_lb_list *l, const pf_hostset *hs, uint32_t prio, bool healthy_only,
                      uint64_t loc, const cfg_cluster *cfg)
{
    const cfg_cluster_lb *lb = cfg && cfg->lb ? cfg->lb : &cfg_cluster_lb_defaults;
    uint32_t n = 0;
    for (size_t i = 0; i < hs->n; i++)
        n += in_list(hs, i, prio, healthy_only, loc);
    l->n = n;
    if (!n)
        return 0;
    l->hosts = malloc(n * sizeof *l->hosts);
    l->weights = malloc(n * sizeof *l->weights);
    if (!l->hosts || !l->weights)
        return -ENOMEM;
    uint32_t k = 0;
    for (size_t i = 0; i < hs->n; i++) {
        if (!in_list(hs, i, prio, healthy_only, loc))
            continue;
        l->hosts[k] = (uint32_t)i;
        l->weights[k] = hs->info[i].weight ? hs->info[i].weight : 1;
        l->total_weight += l->weights[k];
        if (l->weights[k] != l->weights[0])
            l->weighted = true;
        k++;
    }
    if (hs->policy == CFG_LB_RING_HASH)
        return build_ring(l, hs, lb->ring_min, lb->ring_max);
    if (hs->policy == CFG_LB_MAGLEV)
        return build_maglev(l, hs, lb->maglev_table_size);
    return 0;
}

/* The localities of priority pr (one per distinct pf_host_info.locality)
 * with their healthy lists and effective weights. */
static int build_localities(pf_lb_prio *pr, const pf_hostset *hs, uint32_t prio,
                            const cfg_cluster *cfg)
{
    const cfg_cluster_lb *lb = cfg->lb;
    uint32_t *ids = malloc((hs->n + 1) * sizeof *ids), n = 0;
    if (!ids)
        return -ENOMEM;
    for (size_t i = 0; i < hs->n; i++) {
        if (hs->info[i].priority != prio)
            continue;
        uint32_t k = 0;
        while (k < n && ids[k] != hs->info[i].locality)
            k++;
        if (k == n)
            ids[n++] = hs->info[i].locality;
    }
    pr->locs = calloc(n + 1, sizeof *pr->locs);
    if (!pr->locs) {
        free(ids);
        return -ENOMEM;
    }
    pr->n_locs = n;
    int rc = 0;
    for (uint32_t k = 0; k < n && !rc; k++) {
        pf_lb_locality *lo = &pr->locs[k];
        uint64_t total = 0;
        for (size_t i = 0; i < hs->n; i++)
            total += in_list(hs, i, prio, false, ids[k]);
        rc = build_list(&lo->healthy, hs, prio, true, ids[k], cfg);
        uint64_t weight = ids[k] < lb->n_localities ? lb->localities[ids[k]].weight : 0;
        uint64_t avail = total ? (uint64_t)lb->overprovisioning_factor * 100 * lo->healthy.n / total
                               : 0;
        lo->weight = weight * (avail > 10000 ? 10000 : avail);
        pr->loc_total += lo->weight;
    }
    free(ids);
    return rc;
}

int pf_hostset_build_lb(pf_hostset *hs, const cfg_cluster *cfg)
{
    const cfg_cluster_lb *lb = cfg && cfg->lb ? cfg->lb : &cfg_cluster_lb_defaults;
    pf_lb_free_prio(hs);
    hs->policy = cfg ? cfg->lb_policy : CFG_LB_ROUND_ROBIN;
    hs->choice_count = lb->choice_count ? lb->choice_count : 2;
    hs->fail_on_panic = lb->fail_traffic_on_panic;
    /* Envoy's ring hash and maglev weigh hosts by locality instead; not done. */
    bool by_locality = lb->locality_weighted && hs->policy != CFG_LB_RING_HASH &&
                       hs->policy != CFG_LB_MAGLEV;
    uint32_t n_prio = 1;
    for (size_t i = 0; i < hs->n; i++)
        if (hs->info[i].priority + 1 > n_prio)
            n_prio = hs->info[i].priority + 1;
    if (!(hs->prio = calloc(n_prio, sizeof *hs->prio)))
        return -ENOMEM;
    hs->n_prio = n_prio;
    uint64_t health[128] = {0}, sum = 0;
    for (uint32_t p = 0; p < n_prio; p++) {
        pf_lb_prio *pr = &hs->prio[p];
        if (build_list(&pr->healthy, hs, p, true, LB_ANY_LOCALITY, cfg) ||
            build_list(&pr->all, hs, p, false, LB_ANY_LOCALITY, cfg) ||
            (by_locality && build_localities(pr, hs, p, cfg))) {
            pf_lb_free_prio(hs);
            return -ENOMEM;
        }
        pr->n_healthy = pr->healthy.n;
        pr->n_total = pr->all.n;
        if (pr->n_total) {
            health[p] = (uint64_t)lb->overprovisioning_factor * pr->n_healthy / pr->n_total;
            if (health[p] > 100)
                health[p] = 100;
        }
        sum += health[p];
    }
    uint64_t norm = sum > 100 ? 100 : sum;
    if (norm == 0) {
        /* Nothing is healthy: everything to P0, which panics (Envoy). */
        hs->prio[0].load = 100;
    } else {
        uint64_t left = 100;
        for (uint32_t p = 0; p < n_prio; p++) {
            uint64_t l = health[p] * 100 / norm;
            if (l > left)
                l = left;
            hs->prio[p].load = (uint32_t)l;
            left -= l;
        }
        for (uint32_t p = 0; p < n_prio && left; p++)
            if (health[p]) {
                hs->prio[p].load += (uint32_t)left;
                left = 0;
            }
    }
    for (uint32_t p = 0; p < n_prio; p++) {
        pf_lb_prio *pr = &hs->prio[p];
        double healthy_pct = pr->n_total ? 100.0 * pr->n_healthy / pr->n_total : 0;
        pr->panic = norm < 100 && healthy_pct < lb->panic_threshold;
    }
    return 0;
}

/* ---- worker side ---- */

void pf_lb_rt_free(pf_lb_rt *rt)
{
    free(rt->rr);
    free(rt->cur);
    free(rt->cur_off);
    free(rt->prio_base);
    memset(rt, 0, sizeof *rt);
}

/* Entries of schedule j of a priority (see pf_lb_rt). */
static size_t schedule_len(const pf_lb_prio *pr, uint32_t j)
{
    return j == 0 ? pr->healthy.n : j == 1 ? pr->all.n : j == 2 ? pr->n_locs
                                                              : pr->locs[j - 3].healthy.n;
}

int pf_lb_rt_reset(pf_lb_rt *rt, const pf_hostset *hs)
{
    size_t lists = 1, total = 0;
    for (uint32_t p = 0; p < hs->n_prio; p++)
        lists += 3 + (size_t)hs->prio[p].n_locs;
    uint32_t *rr = calloc(lists, sizeof *rr), *base = calloc(hs->n_prio + 1, sizeof *base);
    size_t *off = calloc(lists, sizeof *off), li = 0;
    for (uint32_t p = 0; p < hs->n_prio && off && base; p++) {
        base[p] = (uint32_t)li;
        for (uint32_t j = 0; j < 3 + hs->prio[p].n_locs; j++, li++) {
            off[li] = total;
            total += schedule_len(&hs->prio[p], j);
        }
    }
    int64_t *cur = calloc(total + 1, sizeof *cur);
    if (!rr || !off || !cur || !base) {
        free(rr), free(off), free(cur), free(base);
        return -ENOMEM;
    }
    pf_lb_rt_free(rt);
    rt->rr = rr;
    rt->cur = cur;
    rt->cur_off = off;
    rt->prio_base = base;
    return 0;
}

static uint32_t weighted_random(const pf_lb_list *l, uint64_t r)
{
    uint64_t x = r % l->total_weight;
    for (uint32_t i = 0; i < l->n; i++) {
        if (x < l->weights[i])
            return i;
        x -= l->weights[i];
    }
    return l->n - 1;
}

static uint32_t pick_rr(const pf_lb_list *l, uint32_t *rr, int64_t *cur)
{
    if (!l->weighted)
        return (*rr)++ % l->n;
    /* Smooth weighted round robin (nginx): even spread, exact proportions. */
    uint32_t best = 0;
    for (uint32_t i = 0; i < l->n; i++) {
        cur[i] += l->weights[i];
        if (cur[i] > cur[best])
            best = i;
    }
    cur[best] -= (int64_t)l->total_weight;
    return best;
}

/* Smooth weighted round robin over the localities of pr. */
static uint32_t pick_locality(const pf_lb_prio *pr, int64_t *cur)
{
    uint32_t best = 0;
    for (uint32_t k = 0; k < pr->n_locs; k++) {
        cur[k] += (int64_t)pr->locs[k].weight;
        if (cur[k] > cur[best])
            best = k;
    }
    cur[best] -= (int64_t)pr->loc_total;
    return best;
}

static uint32_t pick_least(const pf_hostset *hs, const pf_lb_list *l, pf_lb_ctx *ctx)
{
    uint32_t best = UINT32_MAX;
    int64_t best_a = 0;
    for (uint32_t k = 0; k < hs->choice_count; k++) {
        uint64_t r = ctx->random(ctx->arg);
        uint32_t i = l->weighted ? weighted_random(l, r) : (uint32_t)(r % l->n);
        int64_t a = ctx->active ? ctx->active(ctx->arg, l->hosts[i]) : 0;
        /* Weighted: compare active requests per unit of weight. */
        if (best == UINT32_MAX ||
            (l->weighted ? a * l->weights[best] < best_a * l->weights[i] : a < best_a)) {
            best = i;
            best_a = a;
        }
    }
    return best;
}

static uint32_t pick_ring(const pf_lb_list *l, uint64_t h)
{
    uint32_t lo = 0, hi = l->ring_n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (l->ring_hash[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return l->ring_host[lo == l->ring_n ? 0 : lo];
}

/* Envoy's previous_priorities retry: the load of the priorities already
 * tried goes to the others; when they carry no load, the first untried
 * priority with healthy hosts takes it; when every one was tried, all count. */
static uint32_t pick_prio_skipping(const pf_hostset *hs, pf_lb_ctx *ctx)
{
    uint64_t total = 0;
    for (uint32_t p = 0; p < hs->n_prio; p++)
        if (!(ctx->skip_prio & (1u << p)))
            total += hs->prio[p].load;
    if (total) {
        uint64_t r = ctx->random(ctx->arg) % total, acc = 0;
        for (uint32_t p = 0; p < hs->n_prio; p++) {
            if (ctx->skip_prio & (1u << p))
                continue;
            acc += hs->prio[p].load;
            if (r < acc)
                return p;
        }
    }
    for (uint32_t p = 0; p < hs->n_prio; p++)
        if (!(ctx->skip_prio & (1u << p)) && hs->prio[p].healthy.n)
            return p;
    for (uint32_t p = 0; p < hs->n_prio; p++)
        if (!(ctx->skip_prio & (1u << p)) && hs->prio[p].all.n)
            return p;
    return 0;
}

int pf_lb_choose(const pf_hostset *hs, pf_lb_rt *rt, pf_lb_ctx *ctx)
{
    ctx->panic = false;
    if (!hs || !hs->n || !hs->n_prio)
        return -1;
    uint32_t p = 0;
    if (hs->n_prio > 1 && (ctx->skip_prio & ((1u << hs->n_prio) - 1)) == 0) {
        /* Priority by load; a hash keeps a key on one priority (Envoy). */
        uint64_t r = (ctx->has_hash ? ctx->hash : ctx->random(ctx->arg)) % 100, acc = 0;
        for (p = 0; p < hs->n_prio; p++) {
            acc += hs->prio[p].load;
            if (r < acc)
                break;
        }
        if (p == hs->n_prio)
            p = 0;
    } else if (hs->n_prio > 1) {
        p = pick_prio_skipping(hs, ctx);
    }
    ctx->prio = p;
    const pf_lb_prio *pr = &hs->prio[p];
    ctx->panic = pr->panic;
    if (pr->panic && hs->fail_on_panic)
        return -1;
    const pf_lb_list *l = pr->panic ? &pr->all : &pr->healthy;
    size_t li = rt->prio_base[p] + (pr->panic ? 1 : 0);
    if (!pr->panic && pr->loc_total) {
        size_t ls = rt->prio_base[p] + 2;
        uint32_t k = pick_locality(pr, rt->cur + rt->cur_off[ls]);
        l = &pr->locs[k].healthy;
        li = ls + 1 + k;
    }
    if (!l->n)
        return -1;
    uint32_t i;
    switch (hs->policy) {
    case CFG_LB_LEAST_REQUEST:
        i = pick_least(hs, l, ctx);
        break;
    case CFG_LB_RANDOM:
        i = (uint32_t)(ctx->random(ctx->arg) % l->n);
        break;
    case CFG_LB_RING_HASH:
        i = ctx->has_hash && l->ring_n ? pick_ring(l, ctx->hash)
                                       : (uint32_t)(ctx->random(ctx->arg) % l->n);
        break;
    case CFG_LB_MAGLEV:
        i = ctx->has_hash && l->maglev_n ? l->maglev[ctx->hash % l->maglev_n]
                                         : (uint32_t)(ctx->random(ctx->arg) % l->n);
        break;
    case CFG_LB_ROUND_ROBIN:
    default:
        i = pick_rr(l, &rt->rr[li], rt->cur + rt->cur_off[li]);
        break;
    }
    return (int)l->hosts[i];
}
