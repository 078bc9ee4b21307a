/* Leveled logging to stderr, Envoy's level names.  The level is a process
 * global set once at start-up (and by the admin /logging endpoint later);
 * reading it is a plain load, so disabled levels cost one compare. */
#ifndef PF_LOG_H
#define PF_LOG_H

enum pf_log_level {
    PF_LOG_TRACE, PF_LOG_DEBUG, PF_LOG_INFO, PF_LOG_WARNING,
    PF_LOG_ERROR, PF_LOG_CRITICAL, PF_LOG_OFF,
};

extern int pf_log_level;

/* Returns the level for an Envoy level name, or -1. */
int pf_log_level_parse(const char *name);

void pf_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pf_log(level, ...) \
    do { if ((level) >= pf_log_level) pf_log_write((level), __VA_ARGS__); } while (0)
#define pf_trace(...) pf_log(PF_LOG_TRACE, __VA_ARGS__)
#define pf_debug(...) pf_log(PF_LOG_DEBUG, __VA_ARGS__)
#define pf_info(...) pf_log(PF_LOG_INFO, __VA_ARGS__)
#define pf_warn(...) pf_log(PF_LOG_WARNING, __VA_ARGS__)
#define pf_error(...) pf_log(PF_LOG_ERROR, __VA_ARGS__)

#endif
