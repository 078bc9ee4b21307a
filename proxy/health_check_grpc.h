/* The protocol half of Envoy's gRPC health checker: one
 * grpc.health.v1.Health/Check call over an HTTP/2 client session (nghttp2,
 * h2c prior knowledge), as bytes in and bytes out.  The connection, timers
 * and thresholds stay in proxy/health_check.c.
 *
 * Healthy only when the answer is :status 200, grpc-status 0 and a
 * HealthCheckResponse whose status (field 1) is SERVING (1), as Envoy. */
#ifndef PF_HEALTH_CHECK_GRPC_H
#define PF_HEALTH_CHECK_GRPC_H

#include <stddef.h>
#include <stdint.h>

struct cfg_health_check;
typedef struct pf_hc_grpc pf_hc_grpc;

typedef enum pf_hc_grpc_result {
    PF_HC_GRPC_PENDING,             /* no answer yet */
    PF_HC_GRPC_SERVING,
    PF_HC_GRPC_NOT_SERVING,         /* a complete answer, but not healthy */
    PF_HC_GRPC_PROTOCOL_ERROR,      /* the connection or stream broke */
} pf_hc_grpc_result;

/* A session with the Check request queued: service_name, authority (NULL:
 * default_authority, Envoy uses the cluster name) and initial_metadata from
 * cfg, which must outlive it.  NULL on allocation failure. */
pf_hc_grpc *pf_hc_grpc_new(const struct cfg_health_check *cfg, const char *default_authority);
/* Feeds bytes read from the connection; returns the state of the call. */
pf_hc_grpc_result pf_hc_grpc_recv(pf_hc_grpc *g, const uint8_t *data, size_t len);
/* Everything the session wants written now (the preface and request at
 * first, later SETTINGS / PING acks and window updates) in one malloc'd
 * buffer the caller frees; *out NULL and *len 0 when nothing is due.
 * Returns 0, or -1 on a session or allocation error. */
int pf_hc_grpc_output(pf_hc_grpc *g, uint8_t **out, size_t *len);
void pf_hc_grpc_free(pf_hc_grpc *g);

#endif
