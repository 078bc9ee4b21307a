#include "proxy/local_info.h"

#include <string.h>

static pf_str service_cluster = { "", 0 }, service_node = { "", 0 };

void pf_local_info_set(const char *cluster, const char *node)
{
    if (cluster)
        service_cluster = (pf_str){ cluster, strlen(cluster) };
    if (node)
        service_node = (pf_str){ node, strlen(node) };
}

pf_str pf_local_service_cluster(void) { return service_cluster; }
pf_str pf_local_service_node(void) { return service_node; }
