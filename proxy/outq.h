/* A socket's pending output: a list of fixed-size chunks.
 *
 * Producers append (one memcpy); the socket layer turns the chunks into one
 * writev.  Chunks come from a per-worker free list so steady-state traffic
 * does not call malloc.  Bytes handed to an in-flight uv_write stay where
 * they are until the write completes, so appends never move them. */
#ifndef PF_OUTQ_H
#define PF_OUTQ_H

#include <stddef.h>
#include <string.h>
#include <uv.h>

#define PF_CHUNK_SIZE 16384

typedef struct pf_chunk {
    struct pf_chunk *next;
    size_t start, end;              /* unsent bytes are data[start..end) */
    char data[PF_CHUNK_SIZE];
} pf_chunk;

/* Per-worker chunk cache; not thread safe (one per loop). */
typedef struct pf_chunk_pool {
    pf_chunk *free;
    size_t n_free, max_free;
} pf_chunk_pool;

typedef struct pf_outq {
    pf_chunk *head, *tail;
    size_t bytes;                   /* total unsent bytes */
} pf_outq;

void pf_chunk_pool_init(pf_chunk_pool *pool, size_t max_free);
void pf_chunk_pool_destroy(pf_chunk_pool *pool);

void pf_outq_init(pf_outq *q);
/* The general case of pf_outq_append (a new chunk is needed). */
int pf_outq__append_slow(pf_outq *q, pf_chunk_pool *pool, const void *data, size_t n);

/* Returns 0 or -ENOMEM.  Inline: most appends are small pieces of a head
 * that fit in the tail chunk. */
static inline int pf_outq_append(pf_outq *q, pf_chunk_pool *pool, const void *data, size_t n)
{
    pf_chunk *t = q->tail;
    if (t && PF_CHUNK_SIZE - t->end >= n) {
        memcpy(t->data + t->end, data, n);
        t->end += n;
        q->bytes += n;
        return 0;
    }
    return pf_outq__append_slow(q, pool, data, n);
}
/* Fills up to max bufs with the first unsent bytes; returns the count. */
unsigned pf_outq_peek(const pf_outq *q, uv_buf_t *bufs, unsigned max);
/* Marks n bytes sent, recycling emptied chunks. */
void pf_outq_consume(pf_outq *q, pf_chunk_pool *pool, size_t n);
void pf_outq_clear(pf_outq *q, pf_chunk_pool *pool);

#endif
