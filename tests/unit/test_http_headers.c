/* Header list helpers and hop-by-hop stripping. */
#include <string.h>

#include "proxy/http.h"
#include "tests/unit/pftest.h"

static pf_str S(const char *s) { return (pf_str){ s, strlen(s) }; }

int main(void)
{
    pf_arena a;
    pf_arena_init(&a);
    pf_hdrs h = { 0 };
    const char *pairs[][2] = {
        { "connection", "keep-alive, x-secret" }, { "keep-alive", "timeout=5" },
        { "x-secret", "1" }, { "te", "trailers, deflate" }, { "transfer-encoding", "chunked" },
        { "upgrade", "h2c" }, { "proxy-connection", "x" }, { "x-keep", "yes" },
        { "accept", "*/*" },
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        CHECK(pf_hdrs_add(&h, &a, S(pairs[i][0]), S(pairs[i][1])) == 0);
    pf_hdrs_strip_hop_by_hop(&h);
    CHECK(h.n == 3);
    CHECK(pf_hdrs_get_lit(&h, "x-keep") != NULL);
    CHECK(pf_hdrs_get_lit(&h, "accept") != NULL);
    pf_hdr *te = pf_hdrs_get_lit(&h, "te");
    CHECK(te && pf_str_eq_lit(te->value, "trailers"));
    CHECK(pf_hdrs_get_lit(&h, "x-secret") == NULL);

    CHECK(pf_value_has_token(S("a, Close ,b"), "close", 5));
    CHECK(!pf_value_has_token(S("closed"), "close", 5));

    /* many headers grow the array inside the arena, past the inline block */
    pf_hdrs many = { 0 };
    for (int i = 0; i < 1000; i++)
        CHECK(pf_hdrs_add(&many, &a, S("x-n"), S("v")) == 0);
    CHECK(pf_hdrs_remove_lit(&many, "x-n") == 1000 && many.n == 0);

    pf_str s = { NULL, 0 };
    CHECK(pf_arena_append(&a, &s, "ab", 2) == 0);
    CHECK(pf_arena_append(&a, &s, "cd", 2) == 0);
    CHECK(pf_str_eq_lit(s, "abcd"));
    pf_arena_reset(&a);
    return TEST_DONE();
}
