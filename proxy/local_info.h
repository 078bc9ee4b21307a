/* What Envoy calls local info: the --service-cluster and --service-node
 * names.  Set once by main() before any worker starts, read-only after, so
 * workers read them without locks.  Both are "" when not given. */
#ifndef PF_LOCAL_INFO_H
#define PF_LOCAL_INFO_H

#include "proxy/http.h"

/* The strings stay owned by the caller (argv) for the process lifetime. */
void pf_local_info_set(const char *service_cluster, const char *service_node);
pf_str pf_local_service_cluster(void);
pf_str pf_local_service_node(void);

#endif
