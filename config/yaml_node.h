/* A small YAML (and therefore JSON) document tree built with libyaml.
 *
 * Every node remembers where it came from (file name, 1-based line and
 * column) so the config layer can point at the exact spot that is wrong.
 * Aliases are expanded into copies (bounded, so alias bombs are rejected),
 * `<<` merge keys are applied, duplicate keys and multi-document streams are
 * errors.
 */
#ifndef PF_YAML_NODE_H
#define PF_YAML_NODE_H

#include <stdbool.h>
#include <stddef.h>

typedef enum yn_kind {
    YN_SCALAR,
    YN_MAP,
    YN_SEQ,
} yn_kind;

typedef struct yn_node {
    yn_kind kind;
    char *file;                /* owned copy of the source name */
    unsigned line, col;        /* 1-based */
    unsigned height;           /* 1 for scalars, 1 + max child height otherwise */
    /* YN_SCALAR */
    char *str;                 /* NUL-terminated; may contain NULs (see len) */
    size_t len;
    bool plain;                /* unquoted plain scalar (null/bool detection) */
    /* YN_MAP: keys[i] -> items[i]; YN_SEQ: items[i] (keys unused) */
    struct yn_node **keys;
    struct yn_node **items;
    size_t n, cap;
} yn_node;

/* Maximum nesting depth and total node count accepted by yn_parse. */
#define YN_MAX_DEPTH 128
#define YN_MAX_NODES 200000

/* Parse one YAML/JSON document.  On success returns 0 and sets *out (NULL for
 * an empty stream).  On failure returns -EINVAL (or -ENOMEM) and writes
 * "file:line:col: message" to err. */
int yn_parse(const char *file, const char *text, size_t len, yn_node **out,
             char *err, size_t errlen);

void yn_free(yn_node *n);

/* Deep copy; NULL on allocation failure. */
yn_node *yn_copy(const yn_node *n);

/* Merge `overlay` into `*base` the way protobuf MergeFrom does for JSON-shaped
 * data: maps merge recursively, sequences append, scalars (and mismatched
 * kinds) are replaced, a null overlay leaves the base alone.  Consumes
 * `overlay` in all cases.  Returns 0 or -ENOMEM. */
int yn_merge(yn_node **base, yn_node *overlay);

/* Value for `key` in a map, or NULL (also NULL when `map` is not a map). */
yn_node *yn_map_get(const yn_node *map, const char *key);

/* The value is YAML null: a plain `~`, `null`, `Null`, `NULL` or empty. */
bool yn_is_null(const yn_node *n);

#endif
