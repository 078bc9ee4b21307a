/* Minimal unit-test helpers: CHECK records a failure and goes on. */
#ifndef PF_UNIT_TEST_H
#define PF_UNIT_TEST_H

#include <stdio.h>

static int pf_test_failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            pf_test_failures++;                                                      \
        }                                                                            \
    } while (0)

#define TEST_DONE()                                                                  \
    (pf_test_failures ? (fprintf(stderr, "%d check(s) failed\n", pf_test_failures), 1) \
                      : (printf("ok\n"), 0))

#endif
