#include "proxy/host_stats.h"

#include <stdlib.h>
#include <string.h>

pf_host_table *pf_host_table_new(size_t cap, int n_workers)
{
    pf_host_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->cap = cap ? cap : 1;
    t->n_workers = n_workers;
    t->addrs = calloc(t->cap, sizeof *t->addrs);
    t->rows = calloc((size_t)n_workers * t->cap, sizeof *t->rows);
    if (!t->addrs || !t->rows) {
        pf_host_table_free(t);
        return NULL;
    }
    return t;
}

void pf_host_table_free(pf_host_table *t)
{
    if (!t)
        return;
    free(t->addrs);
    free(t->rows);
    free(t);
}

uint32_t pf_host_table_slot(pf_host_table *t, const struct sockaddr_storage *addr)
{
    for (size_t i = 0; i < t->n; i++)
        if (memcmp(&t->addrs[i], addr, sizeof *addr) == 0)
            return (uint32_t)i;
    if (t->n == t->cap)
        return (uint32_t)(t->cap - 1);
    t->addrs[t->n] = *addr;
    return (uint32_t)t->n++;
}

#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)

void pf_host_table_sum(const pf_host_table *t, uint32_t slot, pf_host_counters *out)
{
    memset(out, 0, sizeof *out);
    for (int w = 0; w < t->n_workers; w++) {
        const pf_host_counters *c = &t->rows[(size_t)w * t->cap + slot];
        PF_HC_ADD(out->cx_total, LD(c->cx_total));
        PF_HC_ADD(out->cx_connect_fail, LD(c->cx_connect_fail));
        PF_HC_ADD(out->rq_total, LD(c->rq_total));
        PF_HC_ADD(out->rq_error, LD(c->rq_error));
        PF_HC_ADD(out->rq_success, LD(c->rq_success));
        PF_HC_ADD(out->rq_timeout, LD(c->rq_timeout));
        PF_HC_ADD(out->cx_active, LD(c->cx_active));
        PF_HC_ADD(out->rq_active, LD(c->rq_active));
    }
}
