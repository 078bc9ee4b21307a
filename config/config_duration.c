/* google.protobuf.Duration in its JSON ("1.5s") and YAML map
 * ({seconds: N, nanos: M}) forms, converted to milliseconds.  Sub-millisecond
 * remainders round up so a non-zero duration never becomes 0 (= disabled). */
#include "config/config_internal.h"

#include <errno.h>
#include <string.h>

/* Proto Duration range: +-315,576,000,000 seconds. */
#define DUR_MAX_SECONDS 315576000000ULL

static uint64_t to_ms(uint64_t secs, uint64_t nanos)
{
    return secs * 1000 + nanos / 1000000 + (nanos % 1000000 ? 1 : 0);
}

int cfg_parse_duration_ms(const char *s, uint64_t *out_ms)
{
    if (!s || !*s)
        return -EINVAL;
    size_t len = strlen(s);
    if (len < 2 || s[len - 1] != 's')
        return -EINVAL;
    const char *p = s;
    uint64_t secs = 0, nanos = 0;
    size_t digits = 0;
    while (*p >= '0' && *p <= '9') {
        secs = secs * 10 + (uint64_t)(*p - '0');
        if (secs > DUR_MAX_SECONDS)
            return -EINVAL;
        p++;
        digits++;
    }
    if (*p == '.') {
        p++;
        size_t frac = 0;
        while (*p >= '0' && *p <= '9') {
            if (frac == 9)
                return -EINVAL;
            nanos = nanos * 10 + (uint64_t)(*p - '0');
            frac++;
            p++;
        }
        if (frac == 0)
            return -EINVAL;
        for (; frac < 9; frac++)
            nanos *= 10;
        digits++;
    }
    if (digits == 0 || p != s + len - 1)
        return -EINVAL;
    *out_ms = to_ms(secs, nanos);
    return 0;
}

int cfg_node_duration(cfg_ctx *c, const yn_node *n, uint64_t *out_ms)
{
    if (n->kind == YN_SCALAR) {
        if (strlen(n->str) != n->len || cfg_parse_duration_ms(n->str, out_ms) != 0)
            return cfg_err(c, n, "invalid duration '%s' (expected e.g. \"0.25s\", \"5s\")",
                           n->str);
        return 0;
    }
    if (n->kind == YN_MAP) {
        static const char *const h[] = {"seconds", "nanos", NULL};
        const cfg_fields f = {h, NULL, NULL};
        int rc = cfg_check_map(c, n, &f);
        if (rc)
            return rc;
        uint64_t secs = 0, nanos = 0;
        const yn_node *v;
        if ((v = cfg_get(n, "seconds")) != NULL) {
            size_t m = cfg_push(c, "seconds");
            rc = cfg_node_u64(c, v, &secs);
            if (!rc && secs > DUR_MAX_SECONDS)
                rc = cfg_err(c, v, "duration out of range");
            cfg_pop(c, m);
            if (rc)
                return rc;
        }
        if ((v = cfg_get(n, "nanos")) != NULL) {
            size_t m = cfg_push(c, "nanos");
            rc = cfg_node_u64(c, v, &nanos);
            if (!rc && nanos > 999999999)
                rc = cfg_err(c, v, "nanos out of range [0, 999999999]");
            cfg_pop(c, m);
            if (rc)
                return rc;
        }
        *out_ms = to_ms(secs, nanos);
        return 0;
    }
    return cfg_err(c, n, "expected a duration, got a list");
}

int cfg_get_duration(cfg_ctx *c, const yn_node *map, const char *key, uint64_t *out_ms)
{
    const yn_node *v = cfg_get(map, key);
    if (!v)
        return 0;
    size_t m = cfg_push(c, key);
    int rc = cfg_node_duration(c, v, out_ms);
    cfg_pop(c, m);
    return rc;
}
