/* The TLS side of active health checks: Envoy's health checkers connect
 * through the cluster's transport socket, so a probe to a host of a cluster
 * with an UpstreamTlsContext speaks TLS with the cluster's context (its
 * validation, client certificate, session settings), its sni and ALPN.
 * proxy/health_check.c moves the bytes (proxy/tls_mem.h). */
#ifndef PF_HC_TLS_H
#define PF_HC_TLS_H

#include <stddef.h>

#include "config/cluster_config.h"
#include "config/config.h"
#include "proxy/tls_mem.h"

/* A client SSL for one check hc of cluster cl (index ci), ready to
 * handshake.  ALPN: hc's tls_options.alpn_protocols, else the cluster's
 * alpn_protocols, else what hc's codec speaks.  NULL when the cluster is
 * plaintext or on allocation failure (tell them apart with cl->tls).
 * fail: as pf_tls_mem_new.  session_slot: the host's last TLS session,
 * offered for resumption and replaced by the ones this check receives, as
 * the host's connection pools do (pf_tls_session_slot; detach before the
 * slot goes away). */
SSL *pf_hc_tls_new(const cfg_cluster *cl, size_t ci, const cfg_health_check *hc,
                   pf_tls_fail *fail, void **session_slot);

#endif
