/* Output queue: chunk boundaries, partial consumption, recycling. */
#include <string.h>

#include "proxy/outq.h"
#include "tests/unit/pftest.h"

int main(void)
{
    pf_chunk_pool pool;
    pf_chunk_pool_init(&pool, 4);
    pf_outq q;
    pf_outq_init(&q);
    static char big[PF_CHUNK_SIZE * 3 + 100];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 7);
    CHECK(pf_outq_append(&q, &pool, big, sizeof big) == 0);
    CHECK(q.bytes == sizeof big);

    uv_buf_t bufs[8];
    unsigned n = pf_outq_peek(&q, bufs, 8);
    CHECK(n == 4);
    size_t total = 0;
    for (unsigned i = 0; i < n; i++) {
        CHECK(memcmp(bufs[i].base, big + total, bufs[i].len) == 0);
        total += bufs[i].len;
    }
    CHECK(total == sizeof big);

    pf_outq_consume(&q, &pool, PF_CHUNK_SIZE + 10);     /* across a chunk boundary */
    n = pf_outq_peek(&q, bufs, 8);
    CHECK(n == 3);
    CHECK(bufs[0].base[0] == big[PF_CHUNK_SIZE + 10]);
    CHECK(pool.n_free == 1);

    pf_outq_consume(&q, &pool, q.bytes);
    CHECK(q.bytes == 0 && q.head == NULL && q.tail == NULL);
    CHECK(pool.n_free == 4);                            /* capped at max_free */
    CHECK(pf_outq_peek(&q, bufs, 8) == 0);

    CHECK(pf_outq_append(&q, &pool, "abc", 3) == 0);
    CHECK(pool.n_free == 3);                            /* reused from the pool */
    pf_outq_clear(&q, &pool);
    pf_chunk_pool_destroy(&pool);
    return TEST_DONE();
}
