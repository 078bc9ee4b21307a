/* Server state as the admin API sees and changes it (main thread only):
 * Envoy's LIVE / DRAINING / PRE_INITIALIZING / INITIALIZING, the
 * health-check-failed flag, listener stop, and the runtime snapshot that is
 * posted to every worker. */
#ifndef PF_SERVER_STATE_H
#define PF_SERVER_STATE_H

#include <stdbool.h>

#include "proxy/server.h"

/* Values match envoy.admin.v3.ServerInfo.State. */
typedef enum pf_server_state {
    PF_STATE_LIVE = 0,
    PF_STATE_DRAINING = 1,
    PF_STATE_PRE_INITIALIZING = 2,
    PF_STATE_INITIALIZING = 3,
} pf_server_state;

pf_server_state pf_server_state_get(const pf_server *s);
const char *pf_server_state_name(pf_server_state st);
/* /healthcheck/fail (true) and /healthcheck/ok (false). */
void pf_server_set_hc_failed(pf_server *s, bool failed);
/* /drain_listeners: every worker closes its listeners (connections stay). */
void pf_server_stop_listeners(pf_server *s);

/* The runtime loader, created on first use from s->cfg->runtime (NULL on
 * allocation failure).  Call once before starting workers so each starts
 * with the static layers. */
struct runtime_loader *pf_server_runtime(pf_server *s);
/* Posts a reference to the loader's current snapshot to every worker. */
void pf_server_publish_runtime(pf_server *s);
/* Frees what this file created (call after workers are joined). */
void pf_server_state_free(pf_server *s);

#endif
