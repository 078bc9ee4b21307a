/* libFuzzer target: arbitrary bytes through the whole config loader. */
#include "config/config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cfg_bootstrap *b = NULL;
    char err[CFG_ERR_MAX];
    int rc = cfg_load_string("fuzz.yaml", (const char *)data, size, &b, err, sizeof(err));
    if (rc == 0) {
        if (!b)
            abort();
        cfg_free(b);
    } else if (b || memchr(err, '\0', sizeof(err)) == NULL) {
        abort();
    }
    return 0;
}
