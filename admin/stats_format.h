/* Admin output of the stats store: Envoy's /stats text, ?format=json and
 * Prometheus text exposition 0.0.4 (/stats/prometheus).
 *
 * All three run on the main thread, merge shards on the fly and append to
 * an sbuf.  They return 0, -EINVAL with a message in err for a filter that
 * is not a valid PCRE2 pattern (the endpoint answers 400), or -ENOMEM. */
#ifndef PF_STATS_FORMAT_H
#define PF_STATS_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

#include "admin/sbuf.h"
#include "admin/stats.h"

/* Prometheus bucket bounds (milliseconds, ascending) for one histogram;
 * return NULL to use the Envoy defaults.  The array must outlive the call. */
typedef const double *(*stats_bounds_fn)(void *ctx, stat_id hist, size_t *n);

typedef struct stats_format_opts {
    const char *filter;         /* PCRE2 pattern searched in the full name; NULL = all */
    bool used_only;             /* ?usedonly */
    stats_bounds_fn bounds;     /* NULL = Envoy default bounds for every histogram */
    void *bounds_ctx;
} stats_format_opts;

/* Envoy's quantiles (0, .25, .5, .75, .9, .95, .99, .995, .999, 1). */
extern const double stats_quantiles[];
extern const size_t stats_n_quantiles;
/* Envoy's default Prometheus bucket bounds in ms (0.5 … 3600000). */
extern const double stats_default_bounds_ms[];
extern const size_t stats_n_default_bounds;

int stats_format_text(const stats_store *st, const stats_format_opts *o, sbuf *out,
                      char *err, size_t errlen);
int stats_format_json(const stats_store *st, const stats_format_opts *o, sbuf *out,
                      char *err, size_t errlen);
int stats_format_prometheus(const stats_store *st, const stats_format_opts *o, sbuf *out,
                            char *err, size_t errlen);

/* Envoy's default tag extraction for one name: family gets the Prometheus
 * metric name ("envoy_cluster_upstream_rq"), labels the `k="v",…` list
 * (possibly empty, no braces).  Exposed for tests and other sinks. */
int stats_prom_name(const char *name, sbuf *family, sbuf *labels);

/* Shortest round-trip decimal for v, as Envoy's fmt "{}" prints doubles;
 * "nan" for NaN.  buf needs 32 bytes. */
void stats_fmt_double(char *buf, size_t len, double v);

#endif
