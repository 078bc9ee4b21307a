/* Intrusive doubly linked list (circular, with a sentinel head). */
#ifndef PF_QUEUE_H
#define PF_QUEUE_H

#include <stddef.h>

typedef struct pf_queue {
    struct pf_queue *next, *prev;
} pf_queue;

#define pf_queue_data(ptr, type, field) ((type *)((char *)(ptr) - offsetof(type, field)))

static inline void pf_queue_init(pf_queue *q) { q->next = q->prev = q; }
static inline int pf_queue_empty(const pf_queue *q) { return q->next == q; }
static inline void pf_queue_insert_tail(pf_queue *h, pf_queue *q)
{
    q->next = h;
    q->prev = h->prev;
    h->prev->next = q;
    h->prev = q;
}
static inline void pf_queue_remove(pf_queue *q)
{
    q->prev->next = q->next;
    q->next->prev = q->prev;
    q->next = q->prev = q;
}

#endif
