#include "proxy/arena.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void pf_arena_init(pf_arena *a)
{
    a->blocks = NULL;
    a->cur = a->inline_buf;
    a->end = a->inline_buf + sizeof a->inline_buf;
}

void pf_arena_reset(pf_arena *a)
{
    while (a->blocks) {
        pf_arena_block *b = a->blocks;
        a->blocks = b->next;
        free(b);
    }
    pf_arena_init(a);
}

static int arena_grow(pf_arena *a, size_t need)
{
    size_t size = need + 16 > 16384 ? need + 16 : 16384;
    pf_arena_block *b = malloc(sizeof *b + size);
    if (!b)
        return -ENOMEM;
    b->next = a->blocks;
    b->size = size;
    a->blocks = b;
    a->cur = b->data;
    a->end = b->data + size;
    return 0;
}

void *pf_arena_alloc(pf_arena *a, size_t n)
{
    uintptr_t p = ((uintptr_t)a->cur + 7) & ~(uintptr_t)7;
    if (p + n > (uintptr_t)a->end) {
        if (arena_grow(a, n + 8) < 0)
            return NULL;
        p = ((uintptr_t)a->cur + 7) & ~(uintptr_t)7;
    }
    a->cur = (char *)(p + n);
    return (void *)p;
}

int pf_arena_append(pf_arena *a, pf_str *s, const char *data, size_t n)
{
    if (s->p && s->p + s->n == a->cur && (size_t)(a->end - a->cur) >= n) {
        memcpy(a->cur, data, n);
        a->cur += n;
        s->n += n;
        return 0;
    }
    char *p = pf_arena_alloc(a, s->n + n);
    if (!p)
        return -ENOMEM;
    if (s->n)
        memcpy(p, s->p, s->n);
    memcpy(p + s->n, data, n);
    s->p = p;
    s->n += n;
    return 0;
}

int pf_arena_dup(pf_arena *a, pf_str *out, const char *data, size_t n)
{
    out->p = NULL;
    out->n = 0;
    return pf_arena_append(a, out, data, n);
}
