/* Request mirroring (RouteAction.request_mirror_policies): a fire-and-forget
 * shadow copy of a routed request to another cluster.
 *
 * Body: the shadow is sent once the main request is complete, with the body
 * kept in the stream's retry buffer (s->retry_body, bounded by
 * PF_RETRY_BODY_LIMIT).  This is Envoy's buffered shadowing: a body over the
 * limit abandons the shadow (retry_or_shadow_abandoned) and the main request
 * goes on unharmed.  Buffering rather than streaming keeps a slow or dead
 * shadow from ever pacing the main request's body.
 *
 * The shadow runs through the async client (proxy/async_client.h): its own
 * internal stream, the mirror cluster's host choice, pools and stats; its
 * response is discarded, its failures counted on the mirror cluster only. */
#ifndef PF_MIRROR_H
#define PF_MIRROR_H

#include "proxy/stream.h"

/* The router starts forwarding s: picks the route's policies that apply to
 * this request (runtime_fraction) and asks for the body to be kept. */
void mirror_begin(pf_stream *s);
/* The whole request reached the upstream: send the shadows (once). */
void mirror_send(pf_stream *s);

#endif
