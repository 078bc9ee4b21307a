/* Matching and rewriting with the regexes compiled at config load
 * (config/route_config.h).  The compiled code is shared by all threads; the
 * pcre2 match data is per thread (created on first use, freed at thread
 * exit), so a match allocates nothing. */
#ifndef PF_ROUTE_REGEX_H
#define PF_ROUTE_REGEX_H

#include <stdbool.h>
#include <stddef.h>

#include "config/route_config.h"
#include "proxy/arena.h"

/* True when re matches subject (a "full" regex must match all of it). */
bool route_regex_match(const cfg_regex *re, const char *p, size_t n);

/* Replaces every non-overlapping match of rr->re in [p, p+n) with
 * rr->subst (\0..\9 insert groups, \\ a backslash) and appends the result
 * to *out (arena memory).  Returns 0 or -ENOMEM. */
int route_regex_rewrite(const cfg_regex_rewrite *rr, const char *p, size_t n, pf_arena *a,
                        pf_str *out);

#endif
