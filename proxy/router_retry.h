/* route.retry_policy decisions for the router: which failures are
 * retriable, whether the stream may still be retried, the jittered
 * back-off, and keeping the request body for replays. */
#ifndef PF_ROUTER_RETRY_H
#define PF_ROUTER_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/stream.h"

/* Bodies above this are not kept: such requests are neither retried nor
 * mirrored (Envoy's default per-request buffer limit is the connection's,
 * 1 MiB, shared by retries and shadows). */
#define PF_RETRY_BODY_LIMIT (1024 * 1024)

/* The stream's retry policy: its route's, else its virtual host's (Envoy
 * takes the route's whole, never a merge of the two; resolved at load);
 * NULL: no retries. */
static inline const struct cfg_retry_policy *retry_policy(const pf_stream *s)
{
    return s->route ? s->route->retry_applied : NULL;
}
/* Keeps request body bytes for a possible replay or the mirrors (no-op
 * unless s->keep_body); over PF_RETRY_BODY_LIMIT both are abandoned. */
void retry_keep_body(pf_stream *s, const char *p, size_t n);
/* True when the policy allows another attempt now (request complete, body
 * kept, nothing sent downstream, retries left). */
bool retry_possible(const pf_stream *s);
/* Does a failure before response headers match retry_on?  flag: PF_RF_*;
 * refused: the upstream refused the stream (HTTP/2 REFUSED_STREAM). */
bool retry_on_failure(const pf_stream *s, uint32_t flag, bool refused);
/* Does the response head (s->status, s->resp_hdrs) match retry_on? */
bool retry_on_response(const pf_stream *s);
/* The per-try timeout matched retry_on (5xx, gateway-error). */
bool retry_on_timeout(const pf_stream *s);
/* Envoy's fully jittered exponential back-off for the next retry, in ms. */
uint64_t retry_backoff_ms(pf_stream *s);
/* Was addr tried already (retry_host_predicate previous_hosts)? */
bool retry_host_tried(const pf_stream *s, const struct sockaddr_storage *addr);
void retry_note_host(pf_stream *s, const struct sockaddr_storage *addr);

#endif
