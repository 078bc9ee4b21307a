/* Error reporting, field-path tracking and typed getters for the loader. */
#include "config/config_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cfg_err(cfg_ctx *c, const yn_node *n, const char *fmt, ...)
{
    if (!c->err || !c->errlen)
        return -EINVAL;
    int k;
    if (n)
        k = snprintf(c->err, c->errlen, "%s:%u:%u: %s: ", n->file, n->line, n->col,
                     c->plen ? c->path : "(root)");
    else
        k = snprintf(c->err, c->errlen, "%s: ", c->plen ? c->path : "(root)");
    if (k < 0 || (size_t)k >= c->errlen)
        return -EINVAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + k, c->errlen - (size_t)k, fmt, ap);
    va_end(ap);
    /* Keep the message on one line whatever the user wrote. */
    for (char *p = c->err; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return -EINVAL;
}

size_t cfg_push(cfg_ctx *c, const char *field)
{
    size_t mark = c->plen;
    int k = snprintf(c->path + c->plen, sizeof(c->path) - c->plen, "%s%s",
                     c->plen ? "." : "", field);
    if (k > 0) {
        c->plen += (size_t)k;
        if (c->plen >= sizeof(c->path))
            c->plen = sizeof(c->path) - 1;
    }
    return mark;
}

size_t cfg_push_idx(cfg_ctx *c, size_t i)
{
    size_t mark = c->plen;
    int k = snprintf(c->path + c->plen, sizeof(c->path) - c->plen, "[%zu]", i);
    if (k > 0) {
        c->plen += (size_t)k;
        if (c->plen >= sizeof(c->path))
            c->plen = sizeof(c->path) - 1;
    }
    return mark;
}

void cfg_pop(cfg_ctx *c, size_t mark)
{
    c->plen = mark;
    c->path[mark] = '\0';
}

static bool in_list(const char *const *list, const char *s)
{
    for (; list && *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

static const char *kind_name(const yn_node *n)
{
    switch (n->kind) {
    case YN_MAP: return "a map";
    case YN_SEQ: return "a list";
    default: return "a scalar";
    }
}

int cfg_check_map(cfg_ctx *c, const yn_node *n, const cfg_fields *f)
{
    if (!n || n->kind != YN_MAP)
        return cfg_err(c, n, "expected a map, got %s", n ? kind_name(n) : "nothing");
    for (size_t i = 0; i < n->n; i++) {
        const yn_node *k = n->keys[i];
        const char *name = k->str;
        bool clean = strlen(name) == k->len;
        if (clean && (in_list(f->handled, name) || in_list(f->ignored, name)))
            continue;
        size_t m = cfg_push(c, name);
        int rc;
        if (clean && in_list(f->unsupported, name))
            rc = cfg_err(c, k, "not supported yet: field '%s'", name);
        else
            rc = cfg_err(c, k, "unknown field '%s'", name);
        cfg_pop(c, m);
        return rc;
    }
    return 0;
}

const yn_node *cfg_get(const yn_node *map, const char *key)
{
    const yn_node *v = yn_map_get(map, key);
    return yn_is_null(v) ? NULL : v;
}

const yn_node *cfg_key_node(const yn_node *map, const char *key)
{
    if (map && map->kind == YN_MAP) {
        size_t kl = strlen(key);
        for (size_t i = 0; i < map->n; i++)
            if (map->keys[i]->len == kl && memcmp(map->keys[i]->str, key, kl) == 0)
                return map->keys[i];
    }
    return map;
}

int cfg_node_str(cfg_ctx *c, const yn_node *n, char **out)
{
    if (n->kind != YN_SCALAR)
        return cfg_err(c, n, "expected a string, got %s", kind_name(n));
    if (strlen(n->str) != n->len)
        return cfg_err(c, n, "string must not contain NUL characters");
    char *s = strdup(n->str);
    if (!s)
        return cfg_err(c, n, "out of memory");
    free(*out);
    *out = s;
    return 0;
}

int cfg_node_u64(cfg_ctx *c, const yn_node *n, uint64_t *out)
{
    if (n->kind != YN_SCALAR)
        return cfg_err(c, n, "expected an integer, got %s", kind_name(n));
    const char *s = n->str;
    if (*s == '+')
        s++;
    if (!*s || strlen(n->str) != n->len)
        return cfg_err(c, n, "expected an integer, got '%s'", n->str);
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return cfg_err(c, n, "expected an integer, got '%s'", n->str);
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return cfg_err(c, n, "integer out of range: '%s'", n->str);
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int cfg_get_str(cfg_ctx *c, const yn_node *map, const char *key, bool required,
                char **out)
{
    const yn_node *v = cfg_get(map, key);
    if (!v) {
        if (required)
            return cfg_err(c, map, "missing required field '%s'", key);
        return 0;
    }
    size_t m = cfg_push(c, key);
    int rc = cfg_node_str(c, v, out);
    if (rc == 0 && required && !**out)
        rc = cfg_err(c, v, "must not be empty");
    cfg_pop(c, m);
    return rc;
}

int cfg_get_u32(cfg_ctx *c, const yn_node *map, const char *key, bool required,
                uint32_t lo, uint32_t hi, uint32_t *out)
{
    const yn_node *v = cfg_get(map, key);
    if (!v) {
        if (required)
            return cfg_err(c, map, "missing required field '%s'", key);
        return 0;
    }
    /* Wrapper types (UInt32Value) may also be written as {value: N}. */
    size_t m = cfg_push(c, key);
    int rc = 0;
    uint64_t x = 0;
    if (v->kind == YN_MAP) {
        static const char *const h[] = {"value", NULL};
        const cfg_fields f = {h, NULL, NULL};
        if ((rc = cfg_check_map(c, v, &f)) != 0)
            goto out;
        const yn_node *vv = cfg_get(v, "value");
        if (vv && (rc = cfg_node_u64(c, vv, &x)) != 0)
            goto out;
        if (vv)
            v = vv;
    } else if ((rc = cfg_node_u64(c, v, &x)) != 0) {
        goto out;
    }
    if (x < lo || x > hi) {
        rc = cfg_err(c, v, "value %llu out of range [%u, %u]", (unsigned long long)x, lo, hi);
        goto out;
    }
    *out = (uint32_t)x;
out:
    cfg_pop(c, m);
    return rc;
}

int cfg_get_bool(cfg_ctx *c, const yn_node *map, const char *key, bool *out)
{
    const yn_node *v = cfg_get(map, key);
    if (!v)
        return 0;
    size_t m = cfg_push(c, key);
    int rc = 0;
    if (v->kind == YN_MAP) {
        static const char *const h[] = {"value", NULL};
        const cfg_fields f = {h, NULL, NULL};
        if ((rc = cfg_check_map(c, v, &f)) != 0)
            goto out;
        v = cfg_get(v, "value");
        if (!v) {
            *out = false;
            goto out;
        }
    }
    if (v->kind == YN_SCALAR && (!strcmp(v->str, "true") || !strcmp(v->str, "True") ||
                                 !strcmp(v->str, "TRUE")))
        *out = true;
    else if (v->kind == YN_SCALAR && (!strcmp(v->str, "false") || !strcmp(v->str, "False") ||
                                      !strcmp(v->str, "FALSE")))
        *out = false;
    else
        rc = cfg_err(c, v, "expected a boolean (true or false)");
out:
    cfg_pop(c, m);
    return rc;
}

static void join(char *buf, size_t len, const char *const *list)
{
    size_t o = 0;
    buf[0] = '\0';
    for (; *list && o < len; list++) {
        int k = snprintf(buf + o, len - o, "%s%s", o ? ", " : "", *list);
        if (k < 0)
            break;
        o += (size_t)k;
    }
}

int cfg_get_enum(cfg_ctx *c, const yn_node *map, const char *key,
                 const char *const *known, const char *const *supported, int *out)
{
    const yn_node *v = cfg_get(map, key);
    if (!v)
        return 0;
    size_t m = cfg_push(c, key);
    int rc = 0;
    char list[512];
    if (v->kind != YN_SCALAR) {
        rc = cfg_err(c, v, "expected an enum value (a string), got %s", kind_name(v));
        goto out;
    }
    for (int i = 0; supported[i]; i++) {
        if (strcmp(supported[i], v->str) == 0) {
            *out = i;
            goto out;
        }
    }
    if (in_list(known, v->str)) {
        join(list, sizeof(list), supported);
        rc = cfg_err(c, v, "not supported yet: %s (supported: %s)", v->str, list);
    } else {
        join(list, sizeof(list), known);
        rc = cfg_err(c, v, "invalid value '%s' (valid: %s)", v->str, list);
    }
out:
    cfg_pop(c, m);
    return rc;
}

int cfg_expect_seq(cfg_ctx *c, const yn_node *n, size_t *n_out)
{
    *n_out = 0;
    if (!n || yn_is_null(n))
        return 0;
    if (n->kind != YN_SEQ)
        return cfg_err(c, n, "expected a list, got %s", kind_name(n));
    *n_out = n->n;
    return 0;
}

bool cfg_is_ip_literal(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Address { socket_address { address, port_value, protocol } } */
int cfg_parse_address(cfg_ctx *c, const yn_node *addr, bool need_ip,
                      cfg_socket_address *out)
{
    static const char *const addr_h[] = {"socket_address", NULL};
    static const char *const addr_u[] = {"pipe", "envoy_internal_address", NULL};
    static const cfg_fields addr_f = {addr_h, NULL, addr_u};
    static const char *const sa_h[] = {"address", "port_value", "protocol", NULL};
    static const char *const sa_u[] = {"named_port", "resolver_name", "ipv4_compat",
                                       "network_namespace_filepath", NULL};
    static const cfg_fields sa_f = {sa_h, NULL, sa_u};
    static const char *const proto_known[] = {"TCP", "UDP", NULL};
    static const char *const proto_sup[] = {"TCP", NULL};
    int rc;

    if ((rc = cfg_check_map(c, addr, &addr_f)) != 0)
        return rc;
    const yn_node *sa = cfg_get(addr, "socket_address");
    if (!sa)
        return cfg_err(c, addr, "missing required field 'socket_address'");
    size_t m = cfg_push(c, "socket_address");
    int proto = 0;
    uint32_t port = 0;
    if ((rc = cfg_check_map(c, sa, &sa_f)) != 0 ||
        (rc = cfg_get_str(c, sa, "address", true, &out->address)) != 0 ||
        (rc = cfg_get_enum(c, sa, "protocol", proto_known, proto_sup, &proto)) != 0 ||
        (rc = cfg_get_u32(c, sa, "port_value", false, 0, 65535, &port)) != 0)
        goto out;
    out->port = (uint16_t)port;
    if (need_ip && !cfg_is_ip_literal(out->address)) {
        size_t m2 = cfg_push(c, "address");
        rc = cfg_err(c, cfg_get(sa, "address"),
                     "expected an IP address, got '%s'", out->address);
        cfg_pop(c, m2);
    }
out:
    cfg_pop(c, m);
    return rc;
}

int cfg_one_of(cfg_ctx *c, const yn_node *map, const char *const *keys, int n, bool required,
               int *found)
{
    *found = -1;
    for (int i = 0; i < n; i++) {
        if (!cfg_get(map, keys[i]))
            continue;
        if (*found >= 0)
            return cfg_err(c, cfg_key_node(map, keys[i]), "only one of '%s' and '%s' may be set",
                           keys[*found], keys[i]);
        *found = i;
    }
    if (*found >= 0 || !required)
        return 0;
    char list[256];
    size_t used = 0;
    for (int i = 0; i < n && used < sizeof list; i++) {
        int k = snprintf(list + used, sizeof list - used, "%s'%s'", i ? ", " : "", keys[i]);
        if (k < 0)
            break;
        used += (size_t)k;
    }
    return cfg_err(c, map, "missing required field: one of %s", list);
}

int cfg_check_type_url(cfg_ctx *c, const yn_node *tc, const char *want)
{
    const yn_node *t = cfg_get(tc, "@type");
    if (!t)
        return cfg_err(c, tc, "missing required field '@type' (expected %s)", want);
    size_t m = cfg_push(c, "@type");
    int rc = 0;
    if (t->kind != YN_SCALAR)
        rc = cfg_err(c, t, "expected a string (%s)", want);
    else if (strcmp(t->str, want) != 0)
        rc = cfg_err(c, t, "not supported yet: %s (supported: %s)", t->str, want);
    cfg_pop(c, m);
    return rc;
}
