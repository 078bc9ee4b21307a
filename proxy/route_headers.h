/* Header mutations of the route table at run time: rendering the %VARIABLE%
 * templates compiled by config/config_route_headers.c and applying
 * *_headers_to_add / *_headers_to_remove to a header list with Envoy's
 * append actions.  Rendered values live in the stream's arena. */
#ifndef PF_ROUTE_HEADERS_H
#define PF_ROUTE_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "config/route_config.h"
#include "proxy/stream.h"

/* Renders f for stream s into *out (arena memory, or the config's string
 * when f is one literal).  Returns 0 or -ENOMEM. */
int route_fmt_render(const cfg_fmt *f, pf_stream *s, pf_str *out);

/* Applies m to h (s->req_hdrs or s->resp_hdrs): removes, then adds. */
void route_headers_apply(pf_stream *s, pf_hdrs *h, const cfg_header_mutations *m);

#endif
