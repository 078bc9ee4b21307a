/* Per-stream bump allocator for headers and small strings.
 *
 * The first block lives inside the owner (a stream), so a typical request
 * allocates nothing; larger heads chain malloc'd blocks that are released by
 * pf_arena_reset().  Memory is never freed individually. */
#ifndef PF_ARENA_H
#define PF_ARENA_H

#include <stddef.h>

#define PF_ARENA_INLINE 4096

typedef struct pf_arena_block {
    struct pf_arena_block *next;
    size_t size;
    char data[];
} pf_arena_block;

typedef struct pf_arena {
    char *cur, *end;
    pf_arena_block *blocks;   /* malloc'd overflow blocks, freed by reset */
    char inline_buf[PF_ARENA_INLINE];
} pf_arena;

typedef struct pf_str {
    const char *p;
    size_t n;
} pf_str;

void pf_arena_init(pf_arena *a);
/* Frees overflow blocks and rewinds to the inline block. */
void pf_arena_reset(pf_arena *a);
/* Returns n bytes aligned to 8, or NULL when memory is exhausted. */
void *pf_arena_alloc(pf_arena *a, size_t n);
/* Appends data to *s, growing in place when *s is the arena's last
 * allocation (the usual case for header pieces split across reads).
 * Returns 0 or -ENOMEM. */
int pf_arena_append(pf_arena *a, pf_str *s, const char *data, size_t n);
/* Copies a string into the arena. */
int pf_arena_dup(pf_arena *a, pf_str *out, const char *data, size_t n);

#endif
