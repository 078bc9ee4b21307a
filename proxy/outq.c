#include "proxy/outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void pf_chunk_pool_init(pf_chunk_pool *pool, size_t max_free)
{
    pool->free = NULL;
    pool->n_free = 0;
    pool->max_free = max_free;
}

void pf_chunk_pool_destroy(pf_chunk_pool *pool)
{
    while (pool->free) {
        pf_chunk *c = pool->free;
        pool->free = c->next;
        free(c);
    }
    pool->n_free = 0;
}

static pf_chunk *chunk_get(pf_chunk_pool *pool)
{
    pf_chunk *c = pool->free;
    if (c) {
        pool->free = c->next;
        pool->n_free--;
    } else if (!(c = malloc(sizeof *c))) {
        return NULL;
    }
    c->next = NULL;
    c->start = c->end = 0;
    return c;
}

static void chunk_put(pf_chunk_pool *pool, pf_chunk *c)
{
    if (pool->n_free >= pool->max_free) {
        free(c);
        return;
    }
    c->next = pool->free;
    pool->free = c;
    pool->n_free++;
}

void pf_outq_init(pf_outq *q)
{
    q->head = q->tail = NULL;
    q->bytes = 0;
}

int pf_outq__append_slow(pf_outq *q, pf_chunk_pool *pool, const void *data, size_t n)
{
    const char *p = data;
    while (n) {
        pf_chunk *t = q->tail;
        if (!t || t->end == PF_CHUNK_SIZE) {
            if (!(t = chunk_get(pool)))
                return -ENOMEM;
            if (q->tail)
                q->tail->next = t;
            else
                q->head = t;
            q->tail = t;
        }
        size_t room = PF_CHUNK_SIZE - t->end;
        size_t k = n < room ? n : room;
        memcpy(t->data + t->end, p, k);
        t->end += k;
        q->bytes += k;
        p += k;
        n -= k;
    }
    return 0;
}

unsigned pf_outq_peek(const pf_outq *q, uv_buf_t *bufs, unsigned max)
{
    unsigned i = 0;
    for (pf_chunk *c = q->head; c && i < max; c = c->next) {
        if (c->end == c->start)
            continue;
        bufs[i++] = uv_buf_init(c->data + c->start, (unsigned)(c->end - c->start));
    }
    return i;
}

void pf_outq_consume(pf_outq *q, pf_chunk_pool *pool, size_t n)
{
    q->bytes -= n;
    while (q->head) {
        pf_chunk *c = q->head;
        size_t avail = c->end - c->start;
        size_t k = n < avail ? n : avail;
        c->start += k;
        n -= k;
        if (c->start != c->end)
            break;
        /* Emptied chunks go back to the pool at once: an idle keep-alive
         * connection holds no output memory. */
        q->head = c->next;
        if (!q->head)
            q->tail = NULL;
        chunk_put(pool, c);
    }
}

void pf_outq_clear(pf_outq *q, pf_chunk_pool *pool)
{
    while (q->head) {
        pf_chunk *c = q->head;
        q->head = c->next;
        chunk_put(pool, c);
    }
    pf_outq_init(q);
}
