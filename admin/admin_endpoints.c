/* The admin endpoint table (Envoy's paths, help texts and POST-only rules),
 * dispatch, and the small handlers: /ready, /help, health checks, drain,
 * quit, logging, reset_counters.  Bigger handlers live in admin_*.c. */
#include <stdlib.h>
#include <string.h>

#include "admin/admin_http.h"
#include "admin/stats.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/server_state.h"

typedef struct admin_endpoint {
    const char *path;
    const char *help;
    admin_handler_fn fn;
    bool mutating;          /* POST only (Envoy's mutates_server_state) */
} admin_endpoint;

static void h_help(const admin_request *rq, admin_response *rs);
static void h_ready(const admin_request *rq, admin_response *rs);
static void h_hc_fail(const admin_request *rq, admin_response *rs);
static void h_hc_ok(const admin_request *rq, admin_response *rs);
static void h_drain_listeners(const admin_request *rq, admin_response *rs);
static void h_quit(const admin_request *rq, admin_response *rs);
static void h_logging(const admin_request *rq, admin_response *rs);
static void h_reset_counters(const admin_request *rq, admin_response *rs);

/* Sorted by path, as Envoy lists them. */
static const admin_endpoint endpoints[] = {
    {"/", "Admin home page", h_help, false},
    {"/clusters", "upstream cluster status", admin_h_clusters, false},
    {"/config_dump", "dump current Envoy configs (experimental)", admin_h_config_dump, false},
    {"/drain_listeners", "drain listeners", h_drain_listeners, true},
    {"/healthcheck/fail", "cause the server to fail health checks", h_hc_fail, true},
    {"/healthcheck/ok", "cause the server to pass health checks", h_hc_ok, true},
    {"/help", "print out list of admin commands", h_help, false},
    {"/listeners", "print listener info", admin_h_listeners, false},
    {"/logging", "query/change logging levels", h_logging, true},
    {"/memory", "print current allocation/heap usage", admin_h_memory, false},
    {"/quitquitquit", "exit the server", h_quit, true},
    {"/ready", "print server state, return 200 if LIVE, otherwise return 503", h_ready, false},
    {"/reset_counters", "reset all counters to zero", h_reset_counters, true},
    {"/runtime", "print runtime values", admin_h_runtime, false},
    {"/runtime_modify",
     "Adds or modifies runtime values as passed in query parameters. To delete a previously "
     "added key, use an empty string as the value. Note that deletion only applies to "
     "overrides added via this endpoint; values loaded from disk can be modified via override "
     "but not deleted. E.g. ?key1=value1&key2=value2...",
     admin_h_runtime_modify, true},
    {"/server_info", "print server version/status information", admin_h_server_info, false},
    {"/stats", "print server stats", admin_h_stats, false},
    {"/stats/prometheus", "print server stats in prometheus format", admin_h_stats_prometheus,
     false},
};
#define N_ENDPOINTS (sizeof endpoints / sizeof endpoints[0])

static void put_help(sbuf *b)
{
    sbuf_puts(b, "admin commands are:\n");
    for (size_t i = 0; i < N_ENDPOINTS; i++)
        sbuf_printf(b, "  %s%s: %s\n", endpoints[i].path, endpoints[i].mutating ? " (POST)" : "",
                    endpoints[i].help);
}

void admin_dispatch(const admin_request *rq, admin_response *rs)
{
    for (size_t i = 0; i < N_ENDPOINTS; i++) {
        const admin_endpoint *e = &endpoints[i];
        if (strcmp(rq->path, e->path) != 0)
            continue;
        if (e->mutating && strcmp(rq->method, "POST") != 0) {
            pf_error("admin path \"%s\" mutates state, method=%s rather than POST", e->path,
                     rq->method);
            rs->status = 405;
            sbuf_printf(&rs->body, "Method %s not allowed, POST required.", rq->method);
            return;
        }
        e->fn(rq, rs);
        return;
    }
    rs->status = 404;
    sbuf_puts(&rs->body, "invalid path. ");
    put_help(&rs->body);
}

static void h_help(const admin_request *rq, admin_response *rs)
{
    put_help(&rs->body);
}

static void h_ready(const admin_request *rq, admin_response *rs)
{
    pf_server_state st = pf_server_state_get(rq->srv);
    rs->status = st == PF_STATE_LIVE ? 200 : 503;
    sbuf_printf(&rs->body, "%s\n", pf_server_state_name(st));
}

static void h_hc_fail(const admin_request *rq, admin_response *rs)
{
    pf_server_set_hc_failed(rq->srv, true);
    sbuf_puts(&rs->body, "OK\n");
}

static void h_hc_ok(const admin_request *rq, admin_response *rs)
{
    pf_server_set_hc_failed(rq->srv, false);
    sbuf_puts(&rs->body, "OK\n");
}

/* ?graceful and ?inboundonly are accepted: every listener is inbound here,
 * and listeners close at once either way (in-flight connections finish). */
static void h_drain_listeners(const admin_request *rq, admin_response *rs)
{
    for (size_t i = 0; i < rq->n_params; i++) {
        const char *k = rq->params[i].key;
        if (strcmp(k, "graceful") && strcmp(k, "inboundonly") && strcmp(k, "skip_exit")) {
            rs->status = 400;
            sbuf_printf(&rs->body, "unknown parameter: %s\n", k);
            return;
        }
    }
    pf_server_stop_listeners(rq->srv);
    sbuf_puts(&rs->body, "OK\n");
}

static void start_drain(pf_server *srv)
{
    pf_server_begin_drain(srv);
}

static void h_quit(const admin_request *rq, admin_response *rs)
{
    pf_info("shutting down from admin handler");
    sbuf_puts(&rs->body, "OK\n");
    rs->after_write = start_drain;
}

static const char *const level_names[] = {"trace", "debug", "info", "warning",
                                          "error", "critical", "off"};
/* Envoy's logger names; pilotfish has one level for all of them. */
static const char *const logger_names[] = {
    "admin", "assert", "client", "config", "connection", "conn_handler", "dns", "filter",
    "hc", "http", "http1", "http2", "init", "lua", "main", "misc", "pool", "router",
    "runtime", "stats", "upstream"};

static void put_loggers(sbuf *b)
{
    int lvl = pf_log_level;
    const char *name = lvl >= 0 && lvl <= PF_LOG_OFF ? level_names[lvl] : "info";
    sbuf_puts(b, "active loggers:\n");
    for (size_t i = 0; i < sizeof logger_names / sizeof logger_names[0]; i++)
        sbuf_printf(b, "  %s: %s\n", logger_names[i], name);
    sbuf_puts(b, "\n");
}

static bool is_logger(const char *name)
{
    for (size_t i = 0; i < sizeof logger_names / sizeof logger_names[0]; i++)
        if (strcmp(name, logger_names[i]) == 0)
            return true;
    return false;
}

/* POST /logging: no parameter lists; ?level=L sets every logger; ?<name>=L
 * and ?paths=name:L,... are accepted and set the one global level. */
static void h_logging(const admin_request *rq, admin_response *rs)
{
    const char *err = NULL;
    int level = -1;
    if (rq->n_params > 1) {
        err = "invalid number of parameters";
    } else if (rq->n_params == 1) {
        const char *k = rq->params[0].key, *v = rq->params[0].value;
        if (strcmp(k, "paths") == 0) {
            /* name:level,name:level: all must be valid; the last level wins. */
            const char *p = v;
            while (!err && *p) {
                const char *comma = strchr(p, ',');
                size_t n = comma ? (size_t)(comma - p) : strlen(p);
                char item[128];
                if (n >= sizeof item) {
                    err = "invalid paths parameter";
                    break;
                }
                memcpy(item, p, n);
                item[n] = '\0';
                char *colon = strchr(item, ':');
                if (!colon) {
                    err = "invalid paths parameter";
                    break;
                }
                *colon = '\0';
                if (!is_logger(item))
                    err = "unknown logger name";
                else if ((level = pf_log_level_parse(colon + 1)) < 0)
                    err = "unknown logger level";
                p = comma ? comma + 1 : p + n;
            }
            if (!err && level < 0)
                err = "invalid paths parameter";
        } else if (strcmp(k, "level") != 0 && !is_logger(k)) {
            err = "unknown logger name";
        } else if ((level = pf_log_level_parse(v)) < 0 || strcmp(v, "warn") == 0) {
            err = "unknown logger level";
        }
    }
    if (err) {
        rs->status = 400;
        sbuf_printf(&rs->body, "error: %s\n\n", err);
        sbuf_puts(&rs->body,
                  "usage: /logging?<name>=<level> (change single level)\n"
                  "usage: /logging?paths=name1:level1,name2:level2,... (change multiple levels)\n"
                  "usage: /logging?level=<level> (change all levels)\n"
                  "levels: ");
        for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
            sbuf_printf(&rs->body, "%s ", level_names[i]);
        sbuf_puts(&rs->body, "\n");
    } else if (level >= 0) {
        pf_info("change all log levels: level='%s'", level_names[level]);
        pf_log_level = level;
    }
    put_loggers(&rs->body);
}

static void h_reset_counters(const admin_request *rq, admin_response *rs)
{
    if (rq->srv->stats)
        stats_reset_counters(rq->srv->stats);
    sbuf_puts(&rs->body, "OK\n");
}
