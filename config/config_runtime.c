/* layered_runtime: layers, static_layer flattening (Envoy's ProtoLayer
 * walk), admin_layer.  disk_layer / rtds_layer are not supported yet. */
#include "config/config_internal.h"
#include "config/runtime_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const lr_handled[] = {"layers", NULL};
static const char *const layer_handled[] = {"name", "static_layer", "admin_layer", NULL};
static const char *const layer_unsupported[] = {"disk_layer", "rtds_layer", NULL};
static const char *const admin_layer_handled[] = {NULL};

void cfg_runtime_free(cfg_runtime *rt)
{
    if (!rt)
        return;
    for (size_t i = 0; i < rt->n_layers; i++) {
        cfg_runtime_layer *l = &rt->layers[i];
        for (size_t j = 0; j < l->n_entries; j++) {
            free(l->entries[j].key);
            free(l->entries[j].value);
        }
        free(l->entries);
        free(l->name);
    }
    free(rt->layers);
    free(rt);
}

typedef struct kv_vec {
    cfg_runtime_kv *v;
    size_t n, cap;
} kv_vec;

/* Adds key=value (copies); a key already present keeps its first value,
 * as Envoy's ProtoLayer emplace does.  Returns 0 or -1 on OOM. */
static int kv_add(kv_vec *kv, const char *key, const char *value)
{
    for (size_t i = 0; i < kv->n; i++)
        if (strcmp(kv->v[i].key, key) == 0)
            return 0;
    if (kv->n == kv->cap) {
        size_t cap = kv->cap ? kv->cap * 2 : 8;
        cfg_runtime_kv *nv = realloc(kv->v, cap * sizeof *nv);
        if (!nv)
            return -1;
        kv->v = nv;
        kv->cap = cap;
    }
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return -1;
    }
    kv->v[kv->n].key = k;
    kv->v[kv->n].value = v;
    kv->n++;
    return 0;
}

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const cfg_runtime_kv *)a)->key, ((const cfg_runtime_kv *)b)->key);
}

/* {numerator: N, denominator: HUNDRED|TEN_THOUSAND|MILLION} -> canonical JSON. */
static int fraction_value(cfg_ctx *c, const yn_node *n, char *out, size_t outlen)
{
    static const char *const h[] = {"numerator", "denominator", NULL};
    const cfg_fields f = {h, NULL, NULL};
    int rc = cfg_check_map(c, n, &f);
    if (rc)
        return rc;
    uint64_t num = 0;
    const yn_node *v = cfg_get(n, "numerator");
    if (v) {
        size_t m = cfg_push(c, "numerator");
        rc = cfg_node_u64(c, v, &num);
        if (!rc && num > UINT32_MAX)
            rc = cfg_err(c, v, "numerator out of range");
        cfg_pop(c, m);
        if (rc)
            return rc;
    }
    const char *den = "HUNDRED";
    v = cfg_get(n, "denominator");
    if (v) {
        size_t m = cfg_push(c, "denominator");
        if (v->kind != YN_SCALAR ||
            (strcmp(v->str, "HUNDRED") && strcmp(v->str, "TEN_THOUSAND") &&
             strcmp(v->str, "MILLION")))
            rc = cfg_err(c, v, "expected HUNDRED, TEN_THOUSAND or MILLION");
        else
            den = v->str;
        cfg_pop(c, m);
        if (rc)
            return rc;
    }
    snprintf(out, outlen, "{\"numerator\":%llu,\"denominator\":\"%s\"}",
             (unsigned long long)num, den);
    return 0;
}

/* Envoy's ProtoLayer::walkProtoValue: nested maps become dotted keys. */
static int walk(cfg_ctx *c, const yn_node *n, char *prefix, size_t plen, kv_vec *kv)
{
    if (n->kind == YN_SEQ || yn_is_null(n))
        return cfg_err(c, n, "Invalid runtime entry value for %s", prefix);
    if (n->kind == YN_SCALAR) {
        if (strlen(n->str) != n->len)
            return cfg_err(c, n, "runtime value for %s contains a NUL byte", prefix);
        if (kv_add(kv, prefix, n->str))
            return cfg_err(c, n, "out of memory");
        return 0;
    }
    if (n->n == 0 || cfg_get(n, "numerator") || cfg_get(n, "denominator")) {
        char buf[96];
        int rc = n->n == 0 ? (snprintf(buf, sizeof buf, "{}"), 0)
                           : fraction_value(c, n, buf, sizeof buf);
        if (rc)
            return rc;
        if (kv_add(kv, prefix, buf))
            return cfg_err(c, n, "out of memory");
        return 0;
    }
    for (size_t i = 0; i < n->n; i++) {
        const char *k = n->keys[i]->str;
        size_t klen = strlen(k);
        if (plen + 1 + klen + 1 > 1024)
            return cfg_err(c, n->keys[i], "runtime key too long");
        size_t np = plen;
        if (plen)
            prefix[np++] = '.';
        memcpy(prefix + np, k, klen + 1);
        size_t m = cfg_push(c, k);
        int rc = walk(c, n->items[i], prefix, np + klen, kv);
        cfg_pop(c, m);
        prefix[plen] = '\0';
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_layer(cfg_ctx *c, const yn_node *n, cfg_runtime_layer *l)
{
    static const cfg_fields f = {layer_handled, NULL, layer_unsupported};
    static const cfg_fields af = {admin_layer_handled, NULL, NULL};
    int rc;
    if ((rc = cfg_check_map(c, n, &f)) != 0 ||
        (rc = cfg_get_str(c, n, "name", false, &l->name)) != 0)
        return rc;
    if (!l->name && !(l->name = strdup("")))
        return cfg_err(c, n, "out of memory");
    const yn_node *st = yn_map_get(n, "static_layer");
    const yn_node *ad = yn_map_get(n, "admin_layer");
    if (st && ad)
        return cfg_err(c, n, "only one of static_layer, admin_layer may be set");
    if (!st && !ad)
        return cfg_err(c, n, "one of static_layer, disk_layer, admin_layer, rtds_layer "
                             "is required");
    if (ad) {
        l->kind = CFG_RUNTIME_ADMIN;
        if (yn_is_null(ad))
            return 0;
        size_t m = cfg_push(c, "admin_layer");
        rc = cfg_check_map(c, ad, &af);
        cfg_pop(c, m);
        return rc;
    }
    l->kind = CFG_RUNTIME_STATIC;
    if (yn_is_null(st))
        return 0;
    size_t m = cfg_push(c, "static_layer");
    if (st->kind != YN_MAP) {
        rc = cfg_err(c, st, "expected a map");
    } else {
        kv_vec kv = {0};
        char prefix[1024] = "";
        for (size_t i = 0; i < st->n && !rc; i++) {
            const char *k = st->keys[i]->str;
            if (strlen(k) >= sizeof prefix) {
                rc = cfg_err(c, st->keys[i], "runtime key too long");
                break;
            }
            strcpy(prefix, k);
            size_t mk = cfg_push(c, k);
            rc = walk(c, st->items[i], prefix, strlen(k), &kv);
            cfg_pop(c, mk);
        }
        if (kv.n)
            qsort(kv.v, kv.n, sizeof *kv.v, kv_cmp);
        l->entries = kv.v;      /* owned by the layer even on error (freed by caller) */
        l->n_entries = kv.n;
    }
    cfg_pop(c, m);
    return rc;
}

int cfg_parse_runtime(cfg_ctx *c, const yn_node *root)
{
    static const cfg_fields f = {lr_handled, NULL, NULL};
    const yn_node *lr = cfg_get(root, "layered_runtime");
    if (!lr)
        return 0;
    size_t m = cfg_push(c, "layered_runtime");
    int rc = cfg_check_map(c, lr, &f);
    if (rc)
        goto out;
    if (!(c->b->runtime = calloc(1, sizeof *c->b->runtime))) {
        rc = cfg_err(c, lr, "out of memory");
        goto out;
    }
    cfg_runtime *rt = c->b->runtime;
    const yn_node *layers = cfg_get(lr, "layers");
    size_t n = 0;
    if (!layers)
        goto out;
    size_t ml = cfg_push(c, "layers");
    if ((rc = cfg_expect_seq(c, layers, &n)) == 0 && n > 0 &&
        !(rt->layers = calloc(n, sizeof *rt->layers)))
        rc = cfg_err(c, layers, "out of memory");
    size_t n_admin = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t mi = cfg_push_idx(c, i);
        rt->n_layers = i + 1;
        rc = parse_layer(c, layers->items[i], &rt->layers[i]);
        if (!rc && rt->layers[i].kind == CFG_RUNTIME_ADMIN && ++n_admin > 1)
            rc = cfg_err(c, layers->items[i], "Too many admin layers specified in "
                         "LayeredRuntime, at most one may be specified");
        for (size_t j = 0; !rc && j < i; j++)
            if (strcmp(rt->layers[j].name, rt->layers[i].name) == 0)
                rc = cfg_err(c, layers->items[i], "Duplicate layer name: %s",
                             rt->layers[i].name);
        cfg_pop(c, mi);
    }
    cfg_pop(c, ml);
out:
    cfg_pop(c, m);
    return rc;
}
