/* Internal to admin/: one parsed admin request, its response, and the
 * endpoint table's handler signature.  admin.c owns the HTTP plumbing;
 * admin_endpoints.c and the admin_*.c handler files fill responses. */
#ifndef PF_ADMIN_HTTP_H
#define PF_ADMIN_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "admin/sbuf.h"

struct pf_server;
struct pf_admin;

typedef struct admin_param {
    char *key, *value;              /* percent-decoded, NUL-terminated; owned by the request */
} admin_param;

typedef struct admin_request {
    struct pf_server *srv;
    struct pf_admin *admin;
    const char *method;             /* "GET", "POST", ... */
    const char *path;               /* raw path without the query */
    admin_param *params;            /* in order of appearance */
    size_t n_params;
} admin_request;

typedef struct admin_response {
    int status;                     /* default 200 */
    const char *content_type;       /* static string; default text/plain; charset=UTF-8 */
    sbuf body;
    /* Run on the main thread once the response is written (or failed):
     * e.g. /quitquitquit starts the drain only after "OK\n" left. */
    void (*after_write)(struct pf_server *srv);
} admin_response;

#define ADMIN_CT_TEXT "text/plain; charset=UTF-8"
#define ADMIN_CT_JSON "application/json"

typedef void (*admin_handler_fn)(const admin_request *rq, admin_response *rs);

/* First value of a query parameter, or NULL when absent. */
const char *admin_query(const admin_request *rq, const char *key);
/* Splits and percent-decodes a query string ("a=1&b=%20"); '+' is a space.
 * Returns 0, or -1 on a malformed escape or an encoded NUL (caller answers
 * 400).  *out is malloc'd (free with admin_params_free). */
int admin_parse_query(const char *q, size_t len, admin_param **out, size_t *n_out);
void admin_params_free(admin_param *p, size_t n);

/* Dispatch through the endpoint table (admin_endpoints.c). */
void admin_dispatch(const admin_request *rq, admin_response *rs);
/* Appends s as a JSON string literal (quotes included). */
void admin_json_str(sbuf *b, const char *s);
/* "ip:port" for an address (IPv6 in brackets). */
void admin_fmt_addr(const void *sockaddr_storage, char *buf, size_t len);

/* Handlers in separate files. */
void admin_h_stats(const admin_request *rq, admin_response *rs);
void admin_h_stats_prometheus(const admin_request *rq, admin_response *rs);
void admin_h_clusters(const admin_request *rq, admin_response *rs);
void admin_h_listeners(const admin_request *rq, admin_response *rs);
void admin_h_config_dump(const admin_request *rq, admin_response *rs);
void admin_h_runtime(const admin_request *rq, admin_response *rs);
void admin_h_runtime_modify(const admin_request *rq, admin_response *rs);
void admin_h_server_info(const admin_request *rq, admin_response *rs);
void admin_h_memory(const admin_request *rq, admin_response *rs);

#endif
