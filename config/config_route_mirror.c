/* request_mirror_policies of a route action, a virtual host or a route
 * configuration (envoy.config.route.v3.RouteAction.RequestMirrorPolicy).
 * The shadow requests themselves are sent by proxy/mirror.c. */
#include "config/config_route_internal.h"

#include <stdlib.h>
#include <string.h>

static const char *const mp_handled[] = {
    "cluster", "cluster_header", "runtime_fraction", "disable_shadow_host_suffix_append", NULL};
/* Tracing is not implemented, so the sampling decision has nothing to follow. */
static const char *const mp_ignored[] = {"trace_sampled", NULL};
static const char *const mp_unsupported[] = {"request_headers_mutations", "host_rewrite_literal",
                                             NULL};

static int parse_mirror(cfg_ctx *c, const yn_node *n, cfg_mirror_policy *mp)
{
    static const cfg_fields f = {mp_handled, mp_ignored, mp_unsupported};
    static const char *const specs[] = {"cluster", "cluster_header"};
    int rc, spec;
    if ((rc = cfg_check_map(c, n, &f)) != 0 || (rc = cfg_one_of(c, n, specs, 2, true, &spec)) != 0)
        return rc;
    const yn_node *v = cfg_get(n, specs[spec]);
    size_t m = cfg_push(c, specs[spec]);
    if (spec == 0) {
        if ((rc = cfg_node_str(c, v, &mp->cluster)) == 0)
            rc = cfg_route_find_cluster(c, v, mp->cluster, &mp->cluster_index);
    } else {
        rc = cfg_route_lower_str(c, v, &mp->cluster_header, &mp->cluster_header_len);
        if (!rc && !mp->cluster_header_len)
            rc = cfg_err(c, v, "must not be empty");
    }
    cfg_pop(c, m);
    if (rc || (rc = cfg_get_bool(c, n, "disable_shadow_host_suffix_append", &mp->keep_host)) != 0)
        return rc;
    const yn_node *rf = cfg_get(n, "runtime_fraction");
    if (rf) {
        m = cfg_push(c, "runtime_fraction");
        rc = cfg_route_parse_fraction(c, rf, &mp->rf_key, &mp->rf_num, &mp->rf_den);
        mp->has_fraction = true;
        cfg_pop(c, m);
    }
    return rc;
}

int cfg_route_parse_mirrors(cfg_ctx *c, const yn_node *map, cfg_mirrors *out)
{
    const yn_node *seq = cfg_get(map, "request_mirror_policies");
    if (!seq)
        return 0;
    size_t n = 0, m = cfg_push(c, "request_mirror_policies");
    int rc = cfg_expect_seq(c, seq, &n);
    if (!rc && n > CFG_MAX_MIRRORS)
        rc = cfg_err(c, seq, "at most %d mirror policies are supported", CFG_MAX_MIRRORS);
    if (!rc && n && !(out->v = calloc(n, sizeof *out->v)))
        rc = cfg_err(c, seq, "out of memory");
    if (!rc)
        out->n = n;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t mi = cfg_push_idx(c, i);
        rc = parse_mirror(c, seq->items[i], &out->v[i]);
        cfg_pop(c, mi);
    }
    cfg_pop(c, m);
    return rc;
}

void cfg_route_free_mirrors(cfg_mirrors *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].cluster);
        free(m->v[i].cluster_header);
        free(m->v[i].rf_key);
    }
    free(m->v);
    m->v = NULL;
    m->n = 0;
}
