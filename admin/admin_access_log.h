/* admin.access_log / admin.access_log_path: one line per admin request, in
 * the format of the configured logger (Envoy's default format for
 * access_log_path).  Written on the main thread — admin traffic is rare and
 * never shares a thread with the data path. */
#ifndef PF_ADMIN_ACCESS_LOG_H
#define PF_ADMIN_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"

typedef struct admin_alog admin_alog;

/* Opens every admin log.  Returns 0 and sets *out (NULL when none is
 * configured), or a negative errno after logging which path failed. */
int admin_alog_open(const cfg_bootstrap *cfg, admin_alog **out);
/* Logs one finished admin request. */
void admin_alog_write(admin_alog *l, const char *method, const char *target, int status,
                      size_t bytes_sent, uint64_t start_wall_us, uint64_t duration_ms,
                      const struct sockaddr_storage *peer, const struct sockaddr_storage *local);
void admin_alog_close(admin_alog *l);

#endif
