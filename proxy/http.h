/* Codec-neutral HTTP message pieces: header lists and their helpers.
 *
 * Names are stored lower-case (as HTTP/2 requires) in the stream's arena;
 * a pf_hdrs never owns memory of its own. */
#ifndef PF_HTTP_H
#define PF_HTTP_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "proxy/arena.h"

typedef struct pf_hdr {
    pf_str name, value;
} pf_hdr;

typedef struct pf_hdrs {
    pf_hdr *v;          /* in the arena */
    uint32_t n, cap;
} pf_hdrs;

#define PF_STR(lit) ((pf_str){ (lit), sizeof(lit) - 1 })

static inline bool pf_str_eq(pf_str a, const char *lit, size_t n)
{
    return a.n == n && memcmp(a.p, lit, n) == 0;
}
#define pf_str_eq_lit(a, lit) pf_str_eq((a), (lit), sizeof(lit) - 1)
bool pf_str_ieq(pf_str a, const char *b, size_t n);

/* Appends a header (name/value pointers are stored as given).  Returns 0 or -ENOMEM. */
int pf_hdrs_add(pf_hdrs *h, pf_arena *a, pf_str name, pf_str value);
/* Returns the first header named `lname` (lower-case), or NULL. */
pf_hdr *pf_hdrs_get(const pf_hdrs *h, const char *lname, size_t n);
#define pf_hdrs_get_lit(h, lit) pf_hdrs_get((h), (lit), sizeof(lit) - 1)
/* Removes every header named `lname`; returns how many. */
unsigned pf_hdrs_remove(pf_hdrs *h, const char *lname, size_t n);
#define pf_hdrs_remove_lit(h, lit) pf_hdrs_remove((h), (lit), sizeof(lit) - 1)
/* Removes hop-by-hop headers (RFC 9110 7.6.1), including those named in
 * Connection; keeps "te: trailers". */
void pf_hdrs_strip_hop_by_hop(pf_hdrs *h);
/* True if a comma-separated header value contains token (case-insensitive). */
bool pf_value_has_token(pf_str value, const char *token, size_t n);

/* RFC 9110 token character (header names, methods). */
static inline bool pf_http_is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Writes v in decimal into out (at least 20 bytes); returns the length.
 * The hot path's replacement for snprintf("%llu"). */
size_t pf_u64_dec(uint64_t v, char *out);
/* Copies v in decimal into the arena as a header value. */
pf_str pf_arena_u64(pf_arena *a, uint64_t v);

/* Reason phrase for a status code ("OK", "Not Found"), "" when unknown. */
const char *pf_http_reason(int status);

#endif
