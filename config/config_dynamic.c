/* node, dynamic_resources (filesystem ConfigSources) and the CDS / LDS
 * files they name: see config/dynamic_config.h. */
#include "config/dynamic_config.h"

#include "config/cluster_config.h"
#include "config/config_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CDS_TYPE "type.googleapis.com/envoy.config.cluster.v3.Cluster"
#define LDS_TYPE "type.googleapis.com/envoy.config.listener.v3.Listener"

static const char *const node_handled[] = {"id", "cluster", NULL};
static const char *const node_ignored[] = {
    "metadata", "dynamic_parameters", "locality", "user_agent_name", "user_agent_version",
    "user_agent_build_version", "extensions", "client_features", "listening_addresses", NULL};

static const char *const dr_handled[] = {"cds_config", "lds_config", NULL};
static const char *const dr_unsupported[] = {"ads_config", "cds_resources_locator",
                                             "lds_resources_locator", NULL};

static const char *const cs_handled[] = {"path_config_source", "path", "resource_api_version",
                                         NULL};
/* initial_fetch_timeout: a file is read synchronously at start-up, never awaited. */
static const char *const cs_ignored[] = {"initial_fetch_timeout", NULL};
static const char *const cs_unsupported[] = {"api_config_source", "ads", "self", "authorities",
                                             NULL};
static const char *const pcs_handled[] = {"path", "watched_directory", NULL};
static const char *const wd_handled[] = {"path", NULL};
static const char *const api_known[] = {"AUTO", "V2", "V3", NULL};
static const char *const api_sup[] = {"AUTO", "V3", NULL};

static const char *const dresp_handled[] = {"version_info", "resources", "type_url", NULL};
static const char *const dresp_ignored[] = {"nonce", "control_plane", "canary", NULL};

void cfg_dynamic_free(cfg_dynamic *d)
{
    if (!d)
        return;
    free(d->node_id);
    free(d->node_cluster);
    cfg_xds_source *srcs[2] = {&d->cds, &d->lds};
    for (int i = 0; i < 2; i++) {
        free(srcs[i]->path);
        free(srcs[i]->watched_dir);
        free(srcs[i]->version_info);
        yn_free(srcs[i]->doc);
    }
    free(d);
}

/* ---- bootstrap side: node and the ConfigSources ---- */

static int parse_node(cfg_ctx *c, const yn_node *n, cfg_dynamic *d)
{
    static const cfg_fields f = {node_handled, node_ignored, NULL};
    size_t m = cfg_push(c, "node");
    int rc;
    if ((rc = cfg_check_map(c, n, &f)) == 0 &&
        (rc = cfg_get_str(c, n, "id", false, &d->node_id)) == 0)
        rc = cfg_get_str(c, n, "cluster", false, &d->node_cluster);
    cfg_pop(c, m);
    return rc;
}

/* Envoy reads .json as JSON, .yaml/.yml as YAML, anything else as protobuf. */
static bool yaml_or_json(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash))
        return false;
    return !strcmp(dot, ".yaml") || !strcmp(dot, ".yml") || !strcmp(dot, ".json");
}

static int parse_path(cfg_ctx *c, const yn_node *map, const char *key, char **out)
{
    int rc = cfg_get_str(c, map, key, true, out);
    if (rc)
        return rc;
    size_t m = cfg_push(c, key);
    if (!(*out)[0])
        rc = cfg_err(c, cfg_get(map, key), "must not be empty");
    else if (!yaml_or_json(*out))
        rc = cfg_err(c, cfg_get(map, key), "not supported yet: '%s': only .yaml, .yml and "
                                            ".json files (protobuf text and binary are not)",
                     *out);
    cfg_pop(c, m);
    return rc;
}

/* A ConfigSource `cs` (the field `key` of dynamic_resources). */
static int parse_config_source(cfg_ctx *c, const yn_node *cs, const char *key,
                               cfg_xds_source *out)
{
    static const cfg_fields f = {cs_handled, cs_ignored, cs_unsupported};
    static const cfg_fields pf = {pcs_handled, NULL, NULL};
    static const cfg_fields wf = {wd_handled, NULL, NULL};
    static const char *const specifiers[] = {"path_config_source", "path", "api_config_source",
                                             "ads", "self"};
    size_t m = cfg_push(c, key);
    int rc, api = 0, which = -1;
    if ((rc = cfg_check_map(c, cs, &f)) != 0 ||
        (rc = cfg_get_enum(c, cs, "resource_api_version", api_known, api_sup, &api)) != 0 ||
        (rc = cfg_one_of(c, cs, specifiers, 5, true, &which)) != 0)
        goto out;
    out->set = true;
    if (which == 1) {
        rc = parse_path(c, cs, "path", &out->path);
        goto out;
    }
    const yn_node *pcs = cfg_get(cs, "path_config_source");
    size_t mp = cfg_push(c, "path_config_source");
    if ((rc = cfg_check_map(c, pcs, &pf)) == 0 &&
        (rc = parse_path(c, pcs, "path", &out->path)) == 0) {
        const yn_node *wd = cfg_get(pcs, "watched_directory");
        if (wd) {
            size_t mw = cfg_push(c, "watched_directory");
            if ((rc = cfg_check_map(c, wd, &wf)) == 0 &&
                (rc = cfg_get_str(c, wd, "path", true, &out->watched_dir)) == 0 &&
                !out->watched_dir[0]) {
                size_t m2 = cfg_push(c, "path");
                rc = cfg_err(c, cfg_get(wd, "path"), "must not be empty");
                cfg_pop(c, m2);
            }
            cfg_pop(c, mw);
        }
    }
    cfg_pop(c, mp);
out:
    cfg_pop(c, m);
    return rc;
}

int cfg_parse_dynamic(cfg_ctx *c, const yn_node *root)
{
    static const cfg_fields f = {dr_handled, NULL, dr_unsupported};
    const yn_node *node = cfg_get(root, "node");
    const yn_node *dr = cfg_get(root, "dynamic_resources");
    if (!node && !dr)
        return 0;
    cfg_dynamic *d = c->b->dynamic = calloc(1, sizeof *d);
    if (!d)
        return cfg_err(c, root, "out of memory");
    int rc = 0;
    if (node && (rc = parse_node(c, node, d)) != 0)
        return rc;
    if (!dr)
        return 0;
    size_t m = cfg_push(c, "dynamic_resources");
    if ((rc = cfg_check_map(c, dr, &f)) != 0)
        goto out;
    const yn_node *cds = cfg_get(dr, "cds_config"), *lds = cfg_get(dr, "lds_config");
    if (cds && (rc = parse_config_source(c, cds, "cds_config", &d->cds)) != 0)
        goto out;
    if (lds)
        rc = parse_config_source(c, lds, "lds_config", &d->lds);
out:
    cfg_pop(c, m);
    return rc;
}

/* ---- the files ---- */

/* Parses one xDS file's text (YAML errors are located in the file). */
static int parse_doc(const char *path, char *text, size_t len, yn_node **doc, char *err,
                     size_t errlen)
{
    int rc = yn_parse(path, text, len, doc, err, errlen);
    free(text);
    return rc;
}

/* A view of resource r without its "@type" key (the resource parsers do not
 * know it).  The arrays are the caller's to free(view->keys/items). */
static int strip_type(cfg_ctx *c, const yn_node *r, yn_node *view)
{
    *view = *r;
    view->keys = calloc(r->n + 1, sizeof *view->keys);
    view->items = calloc(r->n + 1, sizeof *view->items);
    if (!view->keys || !view->items) {
        free(view->keys);
        free(view->items);
        view->keys = view->items = NULL;
        return cfg_err(c, r, "out of memory");
    }
    view->n = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->keys[i]->kind == YN_SCALAR && !strcmp(r->keys[i]->str, "@type"))
            continue;
        view->keys[view->n] = r->keys[i];
        view->items[view->n++] = r->items[i];
    }
    view->cap = view->n;
    return 0;
}

typedef int (*parse_resource_fn)(cfg_ctx *c, const yn_node *r, size_t idx, void *arg);

/* Walks a DiscoveryResponse document: checks its fields, sets *version and
 * calls fn for each resource (a map of type `type`, "@type" stripped) with
 * the path "resources[i]".  An empty or null document has no resources. */
static int walk_doc(cfg_ctx *c, const yn_node *doc, const char *type, char **version,
                    parse_resource_fn fn, void *arg)
{
    static const cfg_fields f = {dresp_handled, dresp_ignored, NULL};
    int rc;
    if (!doc)
        return 0;
    if ((rc = cfg_check_map(c, doc, &f)) != 0 ||
        (rc = cfg_get_str(c, doc, "version_info", false, version)) != 0)
        return rc;
    const yn_node *tu = cfg_get(doc, "type_url");
    if (tu) {
        size_t m = cfg_push(c, "type_url");
        if (tu->kind != YN_SCALAR || strcmp(tu->str, type) != 0)
            rc = cfg_err(c, tu, "expected %s", type);
        cfg_pop(c, m);
        if (rc)
            return rc;
    }
    const yn_node *res = cfg_get(doc, "resources");
    size_t n;
    size_t m = cfg_push(c, "resources");
    if ((rc = cfg_expect_seq(c, res, &n)) != 0)
        goto out;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t mi = cfg_push_idx(c, i);
        const yn_node *r = res->items[i];
        yn_node view;
        if (r->kind != YN_MAP)
            rc = cfg_err(c, r, "expected a map, got %s", r->kind == YN_SEQ ? "a list" : "a scalar");
        else if ((rc = cfg_check_type_url(c, r, type)) == 0 &&
                 (rc = strip_type(c, r, &view)) == 0) {
            rc = fn(c, &view, i, arg);
            free(view.keys);
            free(view.items);
        }
        cfg_pop(c, mi);
    }
out:
    cfg_pop(c, m);
    return rc;
}

/* Errors inside a file are located there and their path starts at the
 * document ("resources[0].type"), not at the bootstrap field naming it. */
typedef struct path_save {
    char path[sizeof(((cfg_ctx *)0)->path)];
    size_t plen;
} path_save;

static void path_reset(cfg_ctx *c, path_save *s)
{
    memcpy(s->path, c->path, sizeof s->path);
    s->plen = c->plen;
    cfg_pop(c, 0);
}

static void path_restore(cfg_ctx *c, const path_save *s)
{
    memcpy(c->path, s->path, sizeof s->path);
    c->plen = s->plen;
}

/* A name node for locating a clash (the resource's `name`, or itself). */
static const yn_node *name_node(cfg_ctx *c, const yn_node *r)
{
    const yn_node *nm = cfg_get(r, "name");
    if (nm)
        cfg_push(c, "name");
    return nm ? nm : r;
}

typedef struct cds_target {
    cfg_cluster **clusters;     /* array being appended to */
    size_t *n;
    /* Clusters the file may not redefine (the static ones): fixed[0..n_fixed),
     * or when fixed is NULL the first n_fixed of *clusters. */
    const cfg_cluster *fixed;
    size_t n_fixed;
} cds_target;

static int add_cluster(cfg_ctx *c, const yn_node *r, size_t idx, void *arg)
{
    (void)idx;
    cds_target *t = arg;
    cfg_cluster *v = realloc(*t->clusters, (*t->n + 1) * sizeof *v);
    if (!v)
        return cfg_err(c, r, "out of memory");
    *t->clusters = v;
    cfg_cluster *cl = &v[(*t->n)++];
    memset(cl, 0, sizeof *cl);
    cl->from_cds = true;
    int rc = cfg_parse_cluster(c, r, cl);
    if (rc)
        return rc;
    const cfg_cluster *fixed = t->fixed ? t->fixed : v;
    size_t m = c->plen;
    for (size_t j = 0; j < t->n_fixed && !rc; j++)
        if (!strcmp(fixed[j].name, cl->name))
            rc = cfg_err(c, name_node(c, r), "cluster '%s' is already defined in "
                         "static_resources.clusters[%zu] (CDS cannot replace a static cluster)",
                         cl->name, j);
    for (size_t j = 0; j + 1 < *t->n && !rc; j++)
        if (v[j].from_cds && !strcmp(v[j].name, cl->name))
            rc = cfg_err(c, name_node(c, r), "duplicate cluster name '%s'", cl->name);
    cfg_pop(c, m);
    return rc;
}

typedef struct lds_target {
    cfg_listener **listeners;
    size_t *n;
    const cfg_listener *fixed;  /* static ones, as cds_target.fixed */
    size_t n_fixed;
} lds_target;

static int add_listener(cfg_ctx *c, const yn_node *r, size_t idx, void *arg)
{
    (void)idx;
    lds_target *t = arg;
    cfg_listener *v = realloc(*t->listeners, (*t->n + 1) * sizeof *v);
    if (!v)
        return cfg_err(c, r, "out of memory");
    *t->listeners = v;
    cfg_listener *l = &v[(*t->n)++];
    memset(l, 0, sizeof *l);
    /* xDS resources are keyed by name (static listeners may go unnamed). */
    const yn_node *nm = cfg_get(r, "name");
    if (!nm || nm->kind != YN_SCALAR || !nm->str[0]) {
        size_t m = c->plen;
        int rc = cfg_err(c, name_node(c, r), "a name is required (LDS listeners are keyed by "
                                             "name)");
        cfg_pop(c, m);
        return rc;
    }
    int rc = cfg_parse_listener(c, r, *t->n - 1, l);
    if (rc)
        return rc;
    const cfg_listener *fixed = t->fixed ? t->fixed : v;
    size_t m = c->plen;
    for (size_t j = 0; j < t->n_fixed && !rc; j++)
        if (!strcmp(fixed[j].name, l->name))
            rc = cfg_err(c, name_node(c, r), "listener '%s' is already defined in "
                         "static_resources.listeners[%zu]", l->name, j);
    size_t from = t->fixed ? 0 : t->n_fixed;
    for (size_t j = from; j + 1 < *t->n && !rc; j++)
        if (!strcmp(v[j].name, l->name))
            rc = cfg_err(c, name_node(c, r), "duplicate listener name '%s' (resources[%zu])",
                         l->name, j - from);
    cfg_pop(c, m);
    return rc;
}

/* Loads the file of src at start-up; read errors are located at the
 * bootstrap's path node. */
static int load_source(cfg_ctx *c, const yn_node *root, cfg_xds_source *src, const char *key,
                       const char *type, parse_resource_fn fn, void *arg)
{
    char *text = NULL;
    size_t len = 0;
    int rc = cfg_read_file(src->path, &text, &len, NULL, 0);
    if (rc == 0 && (rc = parse_doc(src->path, text, len, &src->doc, c->err, c->errlen)) != 0)
        return rc;
    if (rc) {
        const yn_node *cs = cfg_get(cfg_get(root, "dynamic_resources"), key);
        const yn_node *pcs = cfg_get(cs, "path_config_source");
        const yn_node *at = cfg_get(pcs ? pcs : cs, "path");
        size_t m = cfg_push(c, "dynamic_resources");
        cfg_push(c, key);
        if (pcs)
            cfg_push(c, "path_config_source");
        cfg_push(c, "path");
        rc = cfg_err(c, at, "cannot read '%s': %s", src->path, strerror(-rc));
        cfg_pop(c, m);
        return rc;
    }
    path_save ps;
    path_reset(c, &ps);
    rc = walk_doc(c, src->doc, type, &src->version_info, fn, arg);
    path_restore(c, &ps);
    return rc;
}

int cfg_load_cds(cfg_ctx *c, const yn_node *root)
{
    cfg_bootstrap *b = c->b;
    if (!b->dynamic || !b->dynamic->cds.set)
        return 0;
    cfg_xds_source *src = &b->dynamic->cds;
    src->first = b->n_clusters;
    cds_target t = {&b->clusters, &b->n_clusters, NULL, b->n_clusters};
    int rc = load_source(c, root, src, "cds_config", CDS_TYPE, add_cluster, &t);
    src->n = b->n_clusters - src->first;
    return rc;
}

int cfg_load_lds(cfg_ctx *c, const yn_node *root)
{
    cfg_bootstrap *b = c->b;
    if (!b->dynamic || !b->dynamic->lds.set)
        return 0;
    cfg_xds_source *src = &b->dynamic->lds;
    src->first = b->n_listeners;
    lds_target t = {&b->listeners, &b->n_listeners, NULL, b->n_listeners};
    int rc = load_source(c, root, src, "lds_config", LDS_TYPE, add_listener, &t);
    src->n = b->n_listeners - src->first;
    return rc;
}

/* ---- updates (main thread, proxy/xds_fs.c) ---- */

/* Same protobuf value: scalars by text, maps by key whatever the order,
 * lists item by item; a null value equals an absent one. */
static bool absent(const yn_node *n)
{
    return !n || yn_is_null(n);
}

static bool node_equal(const yn_node *a, const yn_node *b)
{
    if (absent(a) || absent(b))
        return absent(a) && absent(b);
    if (a->kind != b->kind)
        return false;
    if (a->kind == YN_SCALAR)
        return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    if (a->kind == YN_SEQ) {
        if (a->n != b->n)
            return false;
        for (size_t i = 0; i < a->n; i++)
            if (!node_equal(a->items[i], b->items[i]))
                return false;
        return true;
    }
    size_t na = 0, nb = 0;
    for (size_t i = 0; i < a->n; i++) {
        if (absent(a->items[i]))
            continue;
        na++;
        if (!node_equal(a->items[i], yn_map_get(b, a->keys[i]->str)))
            return false;
    }
    for (size_t i = 0; i < b->n; i++)
        nb += !absent(b->items[i]);
    return na == nb;
}

/* Reads path (errors: "path: cannot read: ...", -errno) and parses it. */
static int read_update(const char *path, yn_node **doc, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc = cfg_read_file(path, &text, &len, NULL, 0);
    if (rc) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
        return rc;
    }
    return parse_doc(path, text, len, doc, err, errlen);
}

void cfg_cds_update_free(cfg_cds_update *u)
{
    yn_free(u->doc);
    free(u->version_info);
    for (size_t i = 0; i < u->n_clusters; i++)
        cfg_free_cluster(&u->clusters[i]);
    free(u->clusters);
    free(u->changed);
    memset(u, 0, sizeof *u);
}

int cfg_cds_read(const cfg_bootstrap *live, cfg_cds_update *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const cfg_xds_source *src = &live->dynamic->cds;
    int rc = read_update(src->path, &out->doc, err, errlen);
    if (rc)
        return rc;
    cfg_bootstrap scratch = {0};
    cfg_ctx c = {.err = err, .errlen = errlen, .b = &scratch};
    cds_target t = {&out->clusters, &out->n_clusters, live->clusters, src->first};
    if ((rc = walk_doc(&c, out->doc, CDS_TYPE, &out->version_info, add_cluster, &t)) != 0)
        cfg_cds_update_free(out);
    return rc;
}

/* The resource of a (valid) document named `name`.  By name, not index: the
 * live document's order need not be the live clusters' order (an update
 * may reorder them). */
static const yn_node *resource_named(const yn_node *doc, const char *name)
{
    const yn_node *res = cfg_get(doc, "resources");
    for (size_t i = 0; res && res->kind == YN_SEQ && i < res->n; i++) {
        const yn_node *nm = cfg_get(res->items[i], "name");
        if (nm && nm->kind == YN_SCALAR && !strcmp(nm->str, name))
            return res->items[i];
    }
    return NULL;
}

/* Cluster fields the main thread can apply while running: the endpoints
 * (a new host set through proxy/cluster_mgr.c) and the DNS refresh rate
 * (the resolver is restarted with them). */
static bool cds_live_field(const char *key)
{
    return !strcmp(key, "load_assignment") || !strcmp(key, "dns_refresh_rate");
}

/* First field of cluster resource a or b (other than the live ones) whose
 * value differs, or NULL. */
static const char *cds_fixed_change(const yn_node *a, const yn_node *b)
{
    const yn_node *maps[2] = {a, b};
    for (int s = 0; s < 2; s++) {
        const yn_node *m = maps[s], *o = maps[1 - s];
        for (size_t i = 0; i < m->n; i++) {
            const char *k = m->keys[i]->str;
            if (!cds_live_field(k) && !node_equal(m->items[i], yn_map_get(o, k)))
                return k;
        }
    }
    return NULL;
}

int cfg_cds_diff(const cfg_bootstrap *live, cfg_cds_update *upd, char *msg, size_t msglen)
{
    const cfg_xds_source *src = &live->dynamic->cds;
    if (!(upd->changed = malloc((src->n + 1) * sizeof *upd->changed))) {
        snprintf(msg, msglen, "out of memory");
        return -ENOMEM;
    }
    for (size_t j = 0; j < upd->n_clusters; j++) {
        size_t k = 0;
        while (k < src->n && strcmp(live->clusters[src->first + k].name, upd->clusters[j].name))
            k++;
        if (k == src->n) {
            snprintf(msg, msglen, "cluster '%s' added", upd->clusters[j].name);
            return -EPERM;
        }
    }
    for (size_t k = 0; k < src->n; k++) {
        const cfg_cluster *lc = &live->clusters[src->first + k];
        size_t j = 0;
        while (j < upd->n_clusters && strcmp(upd->clusters[j].name, lc->name))
            j++;
        if (j == upd->n_clusters) {
            snprintf(msg, msglen, "cluster '%s' removed", lc->name);
            return -EPERM;
        }
        const yn_node *a = resource_named(src->doc, lc->name);
        const yn_node *b = resource_named(upd->doc, lc->name);
        const char *field = cds_fixed_change(a, b);
        if (field) {
            snprintf(msg, msglen, "cluster '%s': field '%s' changed", lc->name, field);
            return -EPERM;
        }
        bool same = node_equal(yn_map_get(a, "load_assignment"), yn_map_get(b, "load_assignment")) &&
                    node_equal(yn_map_get(a, "dns_refresh_rate"), yn_map_get(b, "dns_refresh_rate"));
        upd->changed[k] = same ? SIZE_MAX : j;
    }
    return 0;
}

#define SWAP(T, x, y) do { T tmp_ = (x); (x) = (y); (y) = tmp_; } while (0)

size_t cfg_cds_apply(cfg_bootstrap *live, cfg_cds_update *upd)
{
    cfg_xds_source *src = &live->dynamic->cds;
    size_t n = 0;
    for (size_t k = 0; k < src->n; k++) {
        if (upd->changed[k] == SIZE_MAX)
            continue;
        cfg_cluster *a = &live->clusters[src->first + k], *b = &upd->clusters[upd->changed[k]];
        SWAP(cfg_socket_address *, a->endpoints, b->endpoints);
        SWAP(size_t, a->n_endpoints, b->n_endpoints);
        SWAP(uint64_t, a->dns_refresh_rate_ms, b->dns_refresh_rate_ms);
        SWAP(cfg_lb_endpoint *, a->lb->endpoints, b->lb->endpoints);
        SWAP(cfg_locality *, a->lb->localities, b->lb->localities);
        SWAP(size_t, a->lb->n_localities, b->lb->n_localities);
        SWAP(uint32_t, a->lb->overprovisioning_factor, b->lb->overprovisioning_factor);
        n++;
    }
    SWAP(yn_node *, src->doc, upd->doc);
    SWAP(char *, src->version_info, upd->version_info);
    return n;
}

int cfg_lds_check(const cfg_bootstrap *live, char **version_out, char *msg, size_t msglen)
{
    const cfg_xds_source *src = &live->dynamic->lds;
    yn_node *doc = NULL;
    *version_out = NULL;
    int rc = read_update(src->path, &doc, msg, msglen);
    if (rc)
        return rc;
    /* Routes resolve against the live clusters; nothing of them is kept. */
    cfg_bootstrap scratch = {.clusters = live->clusters, .n_clusters = live->n_clusters,
                             .n_hcms = live->n_hcms};
    cfg_ctx c = {.err = msg, .errlen = msglen, .b = &scratch};
    cfg_listener *ls = NULL;
    size_t n = 0;
    lds_target t = {&ls, &n, live->listeners, src->first};
    rc = walk_doc(&c, doc, LDS_TYPE, version_out, add_listener, &t);
    for (size_t i = 0; !rc && i < n + src->n; i++) {
        /* Listeners are not snapshotted per worker yet: any change needs a restart. */
        const char *name = i < n ? ls[i].name : live->listeners[src->first + i - n].name;
        size_t k = 0, j = 0;
        while (k < src->n && strcmp(live->listeners[src->first + k].name, name))
            k++;
        while (j < n && strcmp(ls[j].name, name))
            j++;
        if (k == src->n || j == n ||
            !node_equal(resource_named(src->doc, name), resource_named(doc, name))) {
            snprintf(msg, msglen, "listener '%s' %s", name,
                     k == src->n ? "added" : j == n ? "removed" : "changed");
            rc = -EPERM;
        }
    }
    for (size_t i = 0; i < n; i++)
        cfg_free_listener(&ls[i]);
    free(ls);
    yn_free(doc);
    if (rc) {
        free(*version_out);
        *version_out = NULL;
    }
    return rc;
}
