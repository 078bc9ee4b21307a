/* Per-host counters for admin /clusters, kept per worker without locks.
 *
 * A cluster's table maps each address ever seen to a slot; slots are
 * assigned by the main thread when it builds a host set and never reused,
 * and the table lives as long as the server, so a worker may keep writing
 * a host's counters after the host left the set.  Each worker owns one row
 * (single writer, relaxed load+store as in admin/stats.h); the main thread
 * sums the rows when /clusters is read. */
#ifndef PF_HOST_STATS_H
#define PF_HOST_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct pf_host_counters {
    _Atomic uint64_t cx_total, cx_connect_fail, rq_total, rq_error, rq_success, rq_timeout;
    _Atomic int64_t cx_active, rq_active;
    /* Outlier detection (proxy/outlier.h): this worker's consecutive failures of
     * the host, and how many times each reached its threshold (trips); the main
     * thread compares the trips with what it saw last.  Not summed for admin. */
    _Atomic uint32_t od_5xx, od_gw, od_local;
    _Atomic uint64_t od_trip_5xx, od_trip_gw, od_trip_local;
} pf_host_counters;

typedef struct pf_host_table {
    size_t cap, n;                  /* slot cap-1 is shared by addresses past the cap */
    int n_workers;
    struct sockaddr_storage *addrs; /* [cap] */
    pf_host_counters *rows;         /* [n_workers * cap] */
} pf_host_table;

pf_host_table *pf_host_table_new(size_t cap, int n_workers);
void pf_host_table_free(pf_host_table *t);
/* Main thread: the slot of addr, added if new. */
uint32_t pf_host_table_slot(pf_host_table *t, const struct sockaddr_storage *addr);
/* Main thread: counters of slot summed over workers. */
void pf_host_table_sum(const pf_host_table *t, uint32_t slot, pf_host_counters *out);

static inline pf_host_counters *pf_host_counters_of(pf_host_table *t, int worker, uint32_t slot)
{
    return &t->rows[(size_t)worker * t->cap + slot];
}

#define PF_HC_ADD(field, n) \
    atomic_store_explicit(&(field), atomic_load_explicit(&(field), memory_order_relaxed) + (n), \
                          memory_order_relaxed)

#endif
