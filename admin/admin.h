/* The admin listener, on the main thread (never on a worker).
 * Serves Envoy's admin paths; this subset is /ready. */
#ifndef PF_ADMIN_H
#define PF_ADMIN_H

#include <uv.h>

#include "config/config.h"

struct pf_server;
typedef struct pf_admin pf_admin;

/* Binds and listens; returns 0 and sets *out, or a UV error. */
int pf_admin_start(struct pf_server *srv, const cfg_socket_address *addr, pf_admin **out);
/* Closes the listener and every admin connection; frees itself when done. */
void pf_admin_stop(pf_admin *a);

#endif
