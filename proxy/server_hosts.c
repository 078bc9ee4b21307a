/* Per-host counters on the main thread: the tables behind admin /clusters,
 * slot assignment for new host sets, and the /clusters host provider. */
#include "proxy/server_hosts.h"

#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "config/cluster_config.h"
#include "proxy/cluster.h"
#include "proxy/host_stats.h"
#include "proxy/server.h"

#define DNS_SLOTS_PER_ENDPOINT 64
#define CDS_SPARE_SLOTS 64

int pf_server_hosts_init(pf_server *srv)
{
    const cfg_bootstrap *cfg = srv->cfg;
    srv->host_tables = calloc(cfg->n_clusters + 1, sizeof *srv->host_tables);
    if (!srv->host_tables)
        return UV_ENOMEM;
    for (size_t i = 0; i < cfg->n_clusters; i++) {
        const cfg_cluster *c = &cfg->clusters[i];
        size_t cap = c->n_endpoints * (c->type == CFG_CLUSTER_STATIC ? 1 : DNS_SLOTS_PER_ENDPOINT);
        /* CDS may bring new addresses while running (proxy/xds_fs.c); beyond
         * the spare slots they share the table's last one (stats merged). */
        if (c->from_cds)
            cap += CDS_SPARE_SLOTS;
        if (!(srv->host_tables[i] = pf_host_table_new(cap + 1, srv->concurrency)))
            return UV_ENOMEM;
    }
    return 0;
}

void pf_server_hosts_free(pf_server *srv)
{
    for (size_t i = 0; srv->host_tables && i < srv->cfg->n_clusters; i++)
        pf_host_table_free(srv->host_tables[i]);
    free(srv->host_tables);
    srv->host_tables = NULL;
}

void pf_server_hosts_assign(pf_server *srv, size_t cluster, pf_hostset *hs)
{
    for (size_t i = 0; i < hs->n; i++)
        hs->slots[i] = pf_host_table_slot(srv->host_tables[cluster], &hs->addrs[i]);
}

size_t pf_server_cluster_hosts(pf_server *srv, size_t cluster, pf_admin_host_stats *out,
                               size_t max)
{
    if (!srv->hostsets || cluster >= srv->cfg->n_clusters || !srv->hostsets[cluster])
        return 0;
    const pf_hostset *hs = srv->hostsets[cluster];
    for (size_t i = 0; i < hs->n && i < max; i++) {
        pf_host_counters c;
        pf_host_table_sum(srv->host_tables[cluster], hs->slots[i], &c);
        out[i] = (pf_admin_host_stats){
            .addr = hs->addrs[i],
            .cx_active = (uint64_t)c.cx_active, .cx_total = c.cx_total,
            .rq_total = c.rq_total, .rq_active = (uint64_t)c.rq_active,
            .cx_connect_fail = c.cx_connect_fail, .rq_error = c.rq_error,
            .rq_success = c.rq_success, .rq_timeout = c.rq_timeout,
            .weight = hs->info[i].weight, .priority = hs->info[i].priority,
            .flags = hs->info[i].flags, .region = "", .zone = "", .sub_zone = "",
        };
        const cfg_cluster_lb *lb = srv->cfg->clusters[cluster].lb;
        if (lb && hs->info[i].locality < lb->n_localities) {
            const cfg_locality *l = &lb->localities[hs->info[i].locality];
            out[i].region = l->region;
            out[i].zone = l->zone;
            out[i].sub_zone = l->sub_zone;
        }
    }
    return hs->n;
}
