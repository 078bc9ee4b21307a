#include "proxy/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int pf_log_level = PF_LOG_INFO;

static const char *const level_names[] = {
    "trace", "debug", "info", "warning", "error", "critical", "off",
};

int pf_log_level_parse(const char *name)
{
    for (int i = 0; i <= PF_LOG_OFF; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    if (strcmp(name, "warn") == 0)
        return PF_LOG_WARNING;
    return -1;
}

/* One fprintf per line so lines from different threads do not interleave. */
void pf_log_write(int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "[%04d-%02d-%02d %02d:%02d:%02d.%03ld][%s] %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
            level_names[level], msg);
}
