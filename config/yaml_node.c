/* libyaml event stream -> yn_node tree.  See yaml_node.h. */
#include "config/yaml_node.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <yaml.h>

typedef struct anchor {
    char *name;
    yn_node *node;             /* owned template; aliases copy it */
} anchor;

typedef struct builder {
    yaml_parser_t parser;
    const char *file;
    char *err;
    size_t errlen;
    size_t nodes;              /* nodes created so far (budget) */
    anchor *anchors;
    size_t n_anchors, cap_anchors;
    int rc;                    /* first error, 0 if none */
} builder;

static void berr(builder *b, const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void berr(builder *b, const yaml_mark_t *m, const char *fmt, ...)
{
    if (b->rc)
        return;
    b->rc = -EINVAL;
    if (!b->err || !b->errlen)
        return;
    int k = snprintf(b->err, b->errlen, "%s:%zu:%zu: ", b->file,
                     (size_t)m->line + 1, (size_t)m->column + 1);
    if (k < 0 || (size_t)k >= b->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err + k, b->errlen - (size_t)k, fmt, ap);
    va_end(ap);
}

static void boom(builder *b)
{
    if (b->rc)
        return;
    b->rc = -ENOMEM;
    if (b->err && b->errlen)
        snprintf(b->err, b->errlen, "%s: out of memory", b->file);
}

static yn_node *node_new(builder *b, yn_kind kind, const yaml_mark_t *m)
{
    if (b->nodes >= YN_MAX_NODES) {
        berr(b, m, "document too large (more than %d nodes)", YN_MAX_NODES);
        return NULL;
    }
    yn_node *n = calloc(1, sizeof(*n));
    if (!n) {
        boom(b);
        return NULL;
    }
    n->file = strdup(b->file);
    if (!n->file) {
        free(n);
        boom(b);
        return NULL;
    }
    n->kind = kind;
    n->line = (unsigned)m->line + 1;
    n->col = (unsigned)m->column + 1;
    n->height = 1;
    b->nodes++;
    return n;
}

void yn_free(yn_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++) {
        if (n->keys)
            yn_free(n->keys[i]);
        yn_free(n->items[i]);
    }
    free(n->keys);
    free(n->items);
    free(n->str);
    free(n->file);
    free(n);
}

static size_t count_nodes(const yn_node *n)
{
    size_t c = 1;
    for (size_t i = 0; i < n->n; i++)
        c += (n->keys ? count_nodes(n->keys[i]) : 0) + count_nodes(n->items[i]);
    return c;
}

yn_node *yn_copy(const yn_node *n)
{
    yn_node *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    *c = *n;
    c->file = NULL;
    c->str = NULL;
    c->keys = NULL;
    c->items = NULL;
    c->n = c->cap = 0;
    if (!(c->file = strdup(n->file)))
        goto fail;
    if (n->kind == YN_SCALAR) {
        c->str = malloc(n->len + 1);
        if (!c->str)
            goto fail;
        memcpy(c->str, n->str, n->len + 1);
        return c;
    }
    if (n->n) {
        c->items = calloc(n->n, sizeof(*c->items));
        if (!c->items)
            goto fail;
        if (n->keys && !(c->keys = calloc(n->n, sizeof(*c->keys))))
            goto fail;
        c->cap = n->n;
        for (size_t i = 0; i < n->n; i++) {
            c->n = i + 1;
            if (n->keys && !(c->keys[i] = yn_copy(n->keys[i])))
                goto fail;
            if (!(c->items[i] = yn_copy(n->items[i])))
                goto fail;
        }
    }
    return c;
fail:
    yn_free(c);
    return NULL;
}

static int append(yn_node *parent, yn_node *key, yn_node *val)
{
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 4;
        yn_node **items = realloc(parent->items, cap * sizeof(*items));
        if (!items)
            return -ENOMEM;
        parent->items = items;
        if (parent->kind == YN_MAP) {
            yn_node **keys = realloc(parent->keys, cap * sizeof(*keys));
            if (!keys)
                return -ENOMEM;
            parent->keys = keys;
        }
        parent->cap = cap;
    }
    if (parent->kind == YN_MAP)
        parent->keys[parent->n] = key;
    parent->items[parent->n++] = val;
    unsigned h = val->height + 1;
    if (key && key->height + 1 > h)
        h = key->height + 1;
    if (h > parent->height)
        parent->height = h;
    return 0;
}

static bool scalar_eq(const yn_node *a, const yn_node *b)
{
    return a->kind == YN_SCALAR && b->kind == YN_SCALAR && a->len == b->len &&
           memcmp(a->str, b->str, a->len) == 0;
}

static ssize_t map_find(const yn_node *map, const yn_node *key)
{
    if (key->kind != YN_SCALAR)
        return -1;
    for (size_t i = 0; i < map->n; i++)
        if (scalar_eq(map->keys[i], key))
            return (ssize_t)i;
    return -1;
}

yn_node *yn_map_get(const yn_node *map, const char *key)
{
    if (!map || map->kind != YN_MAP)
        return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < map->n; i++) {
        const yn_node *k = map->keys[i];
        if (k->kind == YN_SCALAR && k->len == kl && memcmp(k->str, key, kl) == 0)
            return map->items[i];
    }
    return NULL;
}

bool yn_is_null(const yn_node *n)
{
    if (!n || n->kind != YN_SCALAR || !n->plain)
        return false;
    return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
           strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

int yn_merge(yn_node **base, yn_node *overlay)
{
    if (!overlay)
        return 0;
    if (!*base) {
        *base = overlay;
        return 0;
    }
    if (yn_is_null(overlay)) {
        yn_free(overlay);
        return 0;
    }
    yn_node *b = *base;
    if (b->kind == YN_MAP && overlay->kind == YN_MAP) {
        int rc = 0;
        for (size_t i = 0; i < overlay->n; i++) {
            yn_node *k = overlay->keys[i], *v = overlay->items[i];
            overlay->keys[i] = overlay->items[i] = NULL;
            ssize_t at = rc ? -1 : map_find(b, k);
            if (rc) {
                yn_free(k);
                yn_free(v);
            } else if (at >= 0) {
                yn_free(k);
                rc = yn_merge(&b->items[at], v);
            } else if ((rc = append(b, k, v)) != 0) {
                yn_free(k);
                yn_free(v);
            }
        }
        yn_free(overlay);
        return rc;
    }
    if (b->kind == YN_SEQ && overlay->kind == YN_SEQ) {
        int rc = 0;
        for (size_t i = 0; i < overlay->n; i++) {
            yn_node *v = overlay->items[i];
            overlay->items[i] = NULL;
            if (rc || (rc = append(b, NULL, v)) != 0)
                yn_free(v);
        }
        yn_free(overlay);
        return rc;
    }
    yn_free(b);
    *base = overlay;
    return 0;
}

/* ---- building ---------------------------------------------------------- */

static int remember_anchor(builder *b, const yaml_char_t *name, const yn_node *n)
{
    if (!name)
        return 0;
    size_t cnt = count_nodes(n);
    if (b->nodes + cnt > YN_MAX_NODES) {
        yaml_mark_t m = {0, n->line - 1, n->col - 1};
        berr(b, &m, "document too large (more than %d nodes)", YN_MAX_NODES);
        return -EINVAL;
    }
    b->nodes += cnt;
    yn_node *copy = yn_copy(n);
    char *nm = strdup((const char *)name);
    if (!copy || !nm)
        goto oom;
    /* A redefined anchor shadows the earlier one. */
    for (size_t i = 0; i < b->n_anchors; i++) {
        if (strcmp(b->anchors[i].name, nm) == 0) {
            yn_free(b->anchors[i].node);
            free(nm);
            b->anchors[i].node = copy;
            return 0;
        }
    }
    if (b->n_anchors == b->cap_anchors) {
        size_t cap = b->cap_anchors ? b->cap_anchors * 2 : 8;
        anchor *a = realloc(b->anchors, cap * sizeof(*a));
        if (!a)
            goto oom;
        b->anchors = a;
        b->cap_anchors = cap;
    }
    b->anchors[b->n_anchors].name = nm;
    b->anchors[b->n_anchors].node = copy;
    b->n_anchors++;
    return 0;
oom:
    yn_free(copy);
    free(nm);
    boom(b);
    return -ENOMEM;
}

/* Apply `<<` merge keys of a finished map: entries of the merged map(s) are
 * added unless the map already has the key.  Earlier maps in a `<<: [..]`
 * list win over later ones. */
static int apply_merge_keys(builder *b, yn_node *map, const yaml_mark_t *m)
{
    for (size_t i = 0; i < map->n;) {
        yn_node *k = map->keys[i];
        if (!(k->kind == YN_SCALAR && k->plain && strcmp(k->str, "<<") == 0)) {
            i++;
            continue;
        }
        yn_node *v = map->items[i];
        memmove(map->keys + i, map->keys + i + 1, (map->n - i - 1) * sizeof(*map->keys));
        memmove(map->items + i, map->items + i + 1, (map->n - i - 1) * sizeof(*map->items));
        map->n--;
        yn_node **srcs = &v;
        size_t nsrc = 1;
        if (v->kind == YN_SEQ) {
            srcs = v->items;
            nsrc = v->n;
        }
        int rc = 0;
        for (size_t s = 0; s < nsrc && !rc; s++) {
            yn_node *src = srcs[s];
            if (src->kind != YN_MAP) {
                yaml_mark_t mm = {0, src->line - 1, src->col - 1};
                berr(b, &mm, "merge key '<<' expects a map or a list of maps");
                rc = -EINVAL;
                break;
            }
            for (size_t j = 0; j < src->n && !rc; j++) {
                if (map_find(map, src->keys[j]) >= 0)
                    continue;
                if (b->nodes + count_nodes(src->keys[j]) + count_nodes(src->items[j]) >
                    YN_MAX_NODES) {
                    berr(b, m, "document too large (more than %d nodes)", YN_MAX_NODES);
                    rc = -EINVAL;
                    break;
                }
                yn_node *kc = yn_copy(src->keys[j]), *vc = yn_copy(src->items[j]);
                if (!kc || !vc || append(map, kc, vc) != 0) {
                    yn_free(kc);
                    yn_free(vc);
                    boom(b);
                    rc = -ENOMEM;
                    break;
                }
                b->nodes += count_nodes(kc) + count_nodes(vc);
            }
        }
        yn_free(k);
        yn_free(v);
        if (rc)
            return rc;
    }
    return 0;
}

static bool next_event(builder *b, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&b->parser, ev)) {
        const char *p = b->parser.problem ? b->parser.problem : "syntax error";
        if (b->parser.context)
            berr(b, &b->parser.problem_mark, "%s %s", p, b->parser.context);
        else
            berr(b, &b->parser.problem_mark, "%s", p);
        return false;
    }
    return true;
}

/* Build the node that starts with `ev` (which this function consumes). */
static yn_node *build(builder *b, yaml_event_t *ev, unsigned depth)
{
    yn_node *n = NULL;
    const yaml_mark_t start = ev->start_mark;
    if (depth > YN_MAX_DEPTH) {
        berr(b, &start, "nesting too deep (more than %d levels)", YN_MAX_DEPTH);
        yaml_event_delete(ev);
        return NULL;
    }
    switch (ev->type) {
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)ev->data.alias.anchor;
        const anchor *a = NULL;
        for (size_t i = 0; i < b->n_anchors; i++)
            if (strcmp(b->anchors[i].name, name) == 0)
                a = &b->anchors[i];
        if (!a) {
            berr(b, &start, "unknown alias '*%s'", name);
            break;
        }
        size_t cnt = count_nodes(a->node);
        if (b->nodes + cnt > YN_MAX_NODES) {
            berr(b, &start, "document too large (more than %d nodes)", YN_MAX_NODES);
            break;
        }
        if (depth + a->node->height > YN_MAX_DEPTH + 1) {
            berr(b, &start, "nesting too deep (more than %d levels)", YN_MAX_DEPTH);
            break;
        }
        n = yn_copy(a->node);
        if (!n) {
            boom(b);
            break;
        }
        b->nodes += cnt;
        break;
    }
    case YAML_SCALAR_EVENT: {
        n = node_new(b, YN_SCALAR, &start);
        if (!n)
            break;
        n->len = ev->data.scalar.length;
        n->str = malloc(n->len + 1);
        if (!n->str) {
            yn_free(n);
            n = NULL;
            boom(b);
            break;
        }
        memcpy(n->str, ev->data.scalar.value, n->len);
        n->str[n->len] = '\0';
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag;
        if (remember_anchor(b, ev->data.scalar.anchor, n) != 0) {
            yn_free(n);
            n = NULL;
        }
        break;
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        bool is_map = ev->type == YAML_MAPPING_START_EVENT;
        yaml_char_t *anc = is_map ? ev->data.mapping_start.anchor
                                  : ev->data.sequence_start.anchor;
        char *anchor_name = anc ? strdup((const char *)anc) : NULL;
        if (anc && !anchor_name) {
            boom(b);
            break;
        }
        n = node_new(b, is_map ? YN_MAP : YN_SEQ, &start);
        if (!n) {
            free(anchor_name);
            break;
        }
        for (;;) {
            yaml_event_t kev, vev;
            if (!next_event(b, &kev))
                goto coll_fail;
            if (kev.type == YAML_SEQUENCE_END_EVENT || kev.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&kev);
                break;
            }
            yaml_mark_t kmark = kev.start_mark;
            yn_node *k = build(b, &kev, depth + 1);
            if (!k)
                goto coll_fail;
            yn_node *v = NULL;
            if (is_map) {
                if (!next_event(b, &vev)) {
                    yn_free(k);
                    goto coll_fail;
                }
                v = build(b, &vev, depth + 1);
                if (!v) {
                    yn_free(k);
                    goto coll_fail;
                }
                if (k->kind != YN_SCALAR) {
                    berr(b, &kmark, "map keys must be scalars");
                    yn_free(k);
                    yn_free(v);
                    goto coll_fail;
                }
                if (!(k->plain && strcmp(k->str, "<<") == 0) && map_find(n, k) >= 0) {
                    berr(b, &kmark, "duplicate key '%s'", k->str);
                    yn_free(k);
                    yn_free(v);
                    goto coll_fail;
                }
            } else {
                v = k;
                k = NULL;
            }
            if (append(n, k, v) != 0) {
                yn_free(k);
                yn_free(v);
                boom(b);
                goto coll_fail;
            }
        }
        if (is_map && apply_merge_keys(b, n, &start) != 0)
            goto coll_fail;
        if (anchor_name) {
            int rc = remember_anchor(b, (const yaml_char_t *)anchor_name, n);
            free(anchor_name);
            anchor_name = NULL;
            if (rc)
                goto coll_fail;
        }
        break;
    coll_fail:
        free(anchor_name);
        yn_free(n);
        n = NULL;
        break;
    }
    default:
        berr(b, &start, "unexpected YAML event");
        break;
    }
    yaml_event_delete(ev);
    return n;
}

int yn_parse(const char *file, const char *text, size_t len, yn_node **out,
             char *err, size_t errlen)
{
    builder b;
    memset(&b, 0, sizeof(b));
    b.file = file ? file : "<input>";
    b.err = err;
    b.errlen = errlen;
    if (err && errlen)
        err[0] = '\0';
    *out = NULL;
    if (!yaml_parser_initialize(&b.parser)) {
        boom(&b);
        return b.rc;
    }
    yaml_parser_set_input_string(&b.parser, (const unsigned char *)text, len);

    yn_node *root = NULL;
    bool have_doc = false;
    for (;;) {
        yaml_event_t ev;
        if (!next_event(&b, &ev))
            break;
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_END_EVENT) {
            yaml_event_delete(&ev);
            continue;
        }
        if (t == YAML_DOCUMENT_START_EVENT) {
            if (have_doc) {
                berr(&b, &ev.start_mark, "multiple YAML documents are not supported");
                yaml_event_delete(&ev);
                break;
            }
            have_doc = true;
            yaml_event_delete(&ev);
            continue;
        }
        /* The document's root node. */
        root = build(&b, &ev, 1);
        if (!root)
            break;
    }
    yaml_parser_delete(&b.parser);
    for (size_t i = 0; i < b.n_anchors; i++) {
        free(b.anchors[i].name);
        yn_free(b.anchors[i].node);
    }
    free(b.anchors);
    if (b.rc) {
        yn_free(root);
        return b.rc;
    }
    *out = root;
    return 0;
}
