/* Shared between config_route.c (route_config, virtual hosts, routes),
 * config_route_match.c (RouteMatch), config_route_action.c (RouteAction,
 * RedirectAction) and config_route_headers.c (header mutations and their
 * %VARIABLE% templates).  Each parser expects its node's path pushed. */
#ifndef PF_CONFIG_ROUTE_INTERNAL_H
#define PF_CONFIG_ROUTE_INTERNAL_H

#include "config/config_internal.h"

/* route.match */
int cfg_route_parse_match(cfg_ctx *c, const yn_node *m, cfg_route *r);
/* route.route */
int cfg_route_parse_action(cfg_ctx *c, const yn_node *a, cfg_route *r);
/* request_mirror_policies of map (a route action, virtual host or route
 * configuration; config_route_mirror.c) */
int cfg_route_parse_mirrors(cfg_ctx *c, const yn_node *map, cfg_mirrors *out);
void cfg_route_free_mirrors(cfg_mirrors *m);
/* A RuntimeFractionalPercent {default_value, runtime_key} at n. */
int cfg_route_parse_fraction(cfg_ctx *c, const yn_node *n, char **key, uint32_t *num,
                             uint32_t *den);
/* route.redirect */
int cfg_route_parse_redirect(cfg_ctx *c, const yn_node *d, cfg_route *r);

/* `{regex: ..., google_re2: {}}` (envoy.type.matcher.v3.RegexMatcher) at n. */
int cfg_route_parse_regex(cfg_ctx *c, const yn_node *n, bool full, cfg_regex *out);
/* RegexMatchAndSubstitute at n. */
int cfg_route_parse_regex_rewrite(cfg_ctx *c, const yn_node *n, cfg_regex_rewrite *out);

/* The four *_headers_to_add/remove fields of map n, for requests (resp
 * false: %RESP()% and %RESPONSE_CODE% are not allowed) or responses. */
int cfg_route_parse_mutations(cfg_ctx *c, const yn_node *n, const char *add_key,
                              const char *remove_key, bool resp, cfg_header_mutations *out);
/* Compiles a header value template (path pushed; n for locations). */
int cfg_route_parse_fmt(cfg_ctx *c, const yn_node *n, const char *text, bool resp,
                        cfg_fmt *out);

/* Lower-cased copy of n's string into *out (and its length). */
int cfg_route_lower_str(cfg_ctx *c, const yn_node *n, char **out, size_t *len);
/* Resolve a cluster name to an index (path pushed). */
int cfg_route_find_cluster(cfg_ctx *c, const yn_node *n, const char *name, size_t *idx);

void cfg_route_free_mutations(cfg_header_mutations *m);
void cfg_route_free_fmt(cfg_fmt *f);
void cfg_route_free_string_match(cfg_string_match *m);
void cfg_route_free_match(cfg_route *r);
void cfg_route_free_action(cfg_route *r);

#endif
