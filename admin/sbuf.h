/* Growable output buffer for admin responses (stats text/JSON/Prometheus).
 *
 * Ownership: the sbuf owns p; sbuf_free() releases it.  After an
 * allocation failure the buffer is marked failed (oom) and further appends
 * are ignored, so formatters can append freely and check once at the end. */
#ifndef PF_SBUF_H
#define PF_SBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sbuf {
    char *p;            /* NUL-terminated when n > 0 */
    size_t n, cap;
    bool oom;
} sbuf;

#define SBUF_INIT {NULL, 0, 0, false}

void sbuf_free(sbuf *b);
/* Ensures room for `more` bytes plus the NUL; false (and oom set) on failure. */
bool sbuf_reserve(sbuf *b, size_t more);
void sbuf_append(sbuf *b, const char *s, size_t len);
void sbuf_puts(sbuf *b, const char *s);
void sbuf_putc(sbuf *b, char c);
void sbuf_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
