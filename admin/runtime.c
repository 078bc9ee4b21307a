/* Runtime snapshots: building (main thread), reference counting, lookups. */
#include "admin/runtime.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/runtime_config.h"

/* ---- parsing one value (Envoy's SnapshotImpl::resolveEntryType) ---- */

static bool parse_double(const char *s, double *out)
{
    while (isspace((unsigned char)*s))
        s++;
    if (!*s)
        return false;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (end == s || errno == ERANGE)
        return false;
    while (isspace((unsigned char)*end))
        end++;
    if (*end || isnan(d))
        return false;
    *out = d;
    return true;
}

/* Finds `"name"` or `name` followed by ':' in s; returns what follows. */
static const char *field_after(const char *s, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(s, name); p; p = strstr(p + 1, name)) {
        const char *q = p + n;
        if (*q == '"')
            q++;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q == ':') {
            q++;
            while (*q == ' ' || *q == '\t' || *q == '"')
                q++;
            return q;
        }
    }
    return NULL;
}

/* FractionalPercent in JSON or YAML flow form: {numerator: N, denominator: D}. */
static bool parse_fraction(const char *s, uint32_t *num, uint32_t *den)
{
    const char *p = field_after(s, "numerator");
    if (!p && !strstr(s, "denominator"))
        return false;
    uint64_t n = 0;
    if (p) {
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p)) {
            n = n * 10 + (uint64_t)(*p++ - '0');
            if (n > UINT32_MAX)
                return false;
        }
    }
    uint32_t d = 100;
    const char *q = field_after(s, "denominator");
    if (q) {
        if (strncmp(q, "HUNDRED", 7) == 0)
            d = 100;
        else if (strncmp(q, "TEN_THOUSAND", 12) == 0)
            d = 10000;
        else if (strncmp(q, "MILLION", 7) == 0)
            d = 1000000;
        else
            return false;
    }
    *num = (uint32_t)n;
    *den = d;
    return true;
}

void runtime_entry_resolve(runtime_entry *e)
{
    e->has_uint = e->has_double = e->has_bool = e->has_fraction = false;
    const char *v = e->value;
    if (strcasecmp(v, "true") == 0 || strcasecmp(v, "false") == 0) {
        e->has_bool = true;
        e->bool_value = strcasecmp(v, "true") == 0;
        return;
    }
    double d;
    if (parse_double(v, &d)) {
        e->has_double = true;
        e->double_value = d;
        if (d >= 0 && d <= 18446744073709549568.0) {
            e->has_uint = true;
            e->uint_value = (uint64_t)d;
        }
        return;
    }
    e->has_fraction = parse_fraction(v, &e->numerator, &e->denominator);
}

/* ---- snapshots ---- */

pf_runtime_snapshot *runtime_snapshot_ref(pf_runtime_snapshot *s)
{
    if (s)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

static void free_entries(runtime_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].key);
        free(e[i].value);
    }
    free(e);
}

static void snapshot_free(pf_runtime_snapshot *s)
{
    for (size_t i = 0; i < s->n_layers; i++) {
        free(s->layers[i].name);
        free_entries(s->layers[i].entries, s->layers[i].n);
    }
    free(s->layers);
    free_entries(s->entries, s->n);
    free(s);
}

void runtime_snapshot_unref(pf_runtime_snapshot *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        snapshot_free(s);
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const runtime_entry *)a)->key, ((const runtime_entry *)b)->key);
}

static const runtime_entry *find_in(const runtime_entry *v, size_t n, const char *key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, v[mid].key);
        if (c == 0)
            return &v[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const runtime_entry *runtime_find(const pf_runtime_snapshot *s, const char *key)
{
    return s && key ? find_in(s->entries, s->n, key) : NULL;
}

const char *runtime_get(const pf_runtime_snapshot *s, const char *key)
{
    const runtime_entry *e = runtime_find(s, key);
    return e ? e->value : NULL;
}

uint64_t runtime_get_uint(const pf_runtime_snapshot *s, const char *key, uint64_t def)
{
    const runtime_entry *e = runtime_find(s, key);
    return e && e->has_uint ? e->uint_value : def;
}

double runtime_get_double(const pf_runtime_snapshot *s, const char *key, double def)
{
    const runtime_entry *e = runtime_find(s, key);
    return e && e->has_double ? e->double_value : def;
}

bool runtime_get_bool(const pf_runtime_snapshot *s, const char *key, bool def)
{
    const runtime_entry *e = runtime_find(s, key);
    return e && e->has_bool ? e->bool_value : def;
}

void runtime_get_fraction(const pf_runtime_snapshot *s, const char *key, uint32_t def_num,
                          uint32_t def_den, uint32_t *num, uint32_t *den)
{
    const runtime_entry *e = runtime_find(s, key);
    if (e && e->has_fraction) {
        *num = e->numerator;
        *den = e->denominator;
    } else if (e && e->has_uint) {
        *num = e->uint_value > 100 ? 100 : (uint32_t)e->uint_value;
        *den = 100;
    } else {
        *num = def_num;
        *den = def_den ? def_den : 100;
    }
}

bool runtime_feature_enabled(const pf_runtime_snapshot *s, const char *key, uint64_t def_pct,
                             uint64_t random)
{
    uint64_t pct = runtime_get_uint(s, key, def_pct);
    return random % 100 < (pct < 100 ? pct : 100);
}

bool runtime_fraction_enabled(const pf_runtime_snapshot *s, const char *key, uint32_t def_num,
                              uint32_t def_den, uint64_t random)
{
    const runtime_entry *e = runtime_find(s, key);
    if (e && !e->has_fraction && e->has_uint && e->uint_value > 100)
        return true;
    uint32_t num, den;
    runtime_get_fraction(s, key, def_num, def_den, &num, &den);
    return random % den < num;
}

/* ---- the loader ---- */

typedef struct loader_layer {
    char *name;
    bool is_admin;
    runtime_entry *entries;         /* sorted; static: from config; admin: mutable */
    size_t n, cap;
} loader_layer;

struct runtime_loader {
    loader_layer *layers;
    size_t n_layers;
    loader_layer *admin;            /* NULL without an admin layer */
    pf_runtime_snapshot *current;   /* one reference */
};

static int entry_set(runtime_entry *e, const char *key, const char *value)
{
    memset(e, 0, sizeof *e);
    e->key = strdup(key);
    e->value = strdup(value);
    if (!e->key || !e->value) {
        free(e->key);
        free(e->value);
        return -ENOMEM;
    }
    runtime_entry_resolve(e);
    return 0;
}

static int copy_entries(const runtime_entry *src, size_t n, runtime_entry **out)
{
    *out = NULL;
    if (!n)
        return 0;
    runtime_entry *v = calloc(n, sizeof *v);
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (entry_set(&v[i], src[i].key, src[i].value)) {
            free_entries(v, i);
            return -ENOMEM;
        }
    }
    *out = v;
    return 0;
}

/* Builds a snapshot of the loader's layers now; NULL on allocation failure. */
static pf_runtime_snapshot *build_snapshot(const runtime_loader *l)
{
    pf_runtime_snapshot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    atomic_init(&s->refs, 1);
    size_t total = 0;
    if (l->n_layers && !(s->layers = calloc(l->n_layers, sizeof *s->layers)))
        goto fail;
    for (size_t i = 0; i < l->n_layers; i++) {
        runtime_layer *d = &s->layers[i];
        s->n_layers = i + 1;
        d->is_admin = l->layers[i].is_admin;
        if (!(d->name = strdup(l->layers[i].name)) ||
            copy_entries(l->layers[i].entries, l->layers[i].n, &d->entries))
            goto fail;
        d->n = l->layers[i].n;
        total += d->n;
    }
    /* Merge: walk layers from the last (highest) down; first seen wins. */
    if (total && !(s->entries = calloc(total, sizeof *s->entries)))
        goto fail;
    for (size_t i = l->n_layers; i-- > 0;) {
        const runtime_layer *d = &s->layers[i];
        for (size_t j = 0; j < d->n; j++) {
            bool seen = false;
            for (size_t k = 0; k < s->n && !seen; k++)
                seen = strcmp(s->entries[k].key, d->entries[j].key) == 0;
            if (seen)
                continue;
            if (entry_set(&s->entries[s->n], d->entries[j].key, d->entries[j].value))
                goto fail;
            s->n++;
        }
    }
    if (s->n)
        qsort(s->entries, s->n, sizeof *s->entries, entry_cmp);
    return s;
fail:
    snapshot_free(s);
    return NULL;
}

void runtime_loader_free(runtime_loader *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n_layers; i++) {
        free(l->layers[i].name);
        free_entries(l->layers[i].entries, l->layers[i].n);
    }
    free(l->layers);
    runtime_snapshot_unref(l->current);
    free(l);
}

runtime_loader *runtime_loader_new(const struct cfg_runtime *cfg)
{
    static const cfg_runtime_layer def_layers[] = {
        {.name = (char *)"base", .kind = CFG_RUNTIME_STATIC},
        {.name = (char *)"admin", .kind = CFG_RUNTIME_ADMIN},
    };
    const cfg_runtime_layer *cl = cfg ? cfg->layers : def_layers;
    size_t n = cfg ? cfg->n_layers : 2;
    runtime_loader *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    if (n && !(l->layers = calloc(n, sizeof *l->layers)))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        loader_layer *d = &l->layers[i];
        l->n_layers = i + 1;
        d->is_admin = cl[i].kind == CFG_RUNTIME_ADMIN;
        if (d->is_admin && !l->admin)
            l->admin = d;
        if (!(d->name = strdup(cl[i].name ? cl[i].name : "")))
            goto fail;
        if (cl[i].n_entries) {
            if (!(d->entries = calloc(cl[i].n_entries, sizeof *d->entries)))
                goto fail;
            for (size_t j = 0; j < cl[i].n_entries; j++) {
                if (entry_set(&d->entries[j], cl[i].entries[j].key, cl[i].entries[j].value))
                    goto fail;
                d->n = d->cap = j + 1;
            }
        }
    }
    if (!(l->current = build_snapshot(l)))
        goto fail;
    return l;
fail:
    runtime_loader_free(l);
    return NULL;
}

pf_runtime_snapshot *runtime_loader_snapshot(runtime_loader *l)
{
    return l ? l->current : NULL;
}

/* Sets or (value "") removes key in the admin layer, keeping it sorted. */
static int admin_set(loader_layer *a, const char *key, const char *value)
{
    runtime_entry *e = (runtime_entry *)find_in(a->entries, a->n, key);
    if (!*value) {
        if (e) {
            free(e->key);
            free(e->value);
            size_t i = (size_t)(e - a->entries);
            memmove(e, e + 1, (a->n - i - 1) * sizeof *e);
            a->n--;
        }
        return 0;
    }
    if (e) {
        char *v = strdup(value);
        if (!v)
            return -ENOMEM;
        free(e->value);
        e->value = v;
        runtime_entry_resolve(e);
        return 0;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        runtime_entry *nv = realloc(a->entries, cap * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        a->entries = nv;
        a->cap = cap;
    }
    if (entry_set(&a->entries[a->n], key, value))
        return -ENOMEM;
    a->n++;
    qsort(a->entries, a->n, sizeof *a->entries, entry_cmp);
    return 0;
}

int runtime_loader_merge(runtime_loader *l, const char *const *keys,
                         const char *const *values, size_t n, char *err, size_t errlen)
{
    if (!l->admin) {
        snprintf(err, errlen, "No admin layer specified");
        return -ENOENT;
    }
    for (size_t i = 0; i < n; i++) {
        if (admin_set(l->admin, keys[i], values[i])) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
    }
    pf_runtime_snapshot *s = build_snapshot(l);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    runtime_snapshot_unref(l->current);
    l->current = s;
    return 0;
}
