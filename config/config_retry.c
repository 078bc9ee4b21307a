/* route.retry_policy -> cfg_retry_policy. */
#include "config/config_internal.h"

#include <stdlib.h>
#include <string.h>

#include "config/retry_config.h"

static const char *const rp_handled[] = {
    "retry_on", "num_retries", "per_try_timeout", "retry_back_off", "retry_host_predicate",
    "host_selection_retry_max_attempts", "retriable_status_codes", "retry_priority", NULL};
static const char *const rp_unsupported[] = {
    "per_try_idle_timeout", "retriable_headers",
    "retriable_request_headers", "rate_limited_retry_back_off", "retry_options_predicates",
    NULL};
static const char *const backoff_handled[] = {"base_interval", "max_interval", NULL};
static const char *const pred_handled[] = {"name", "typed_config", NULL};

static const struct {
    const char *name;
    uint32_t bit;
} conditions[] = {
    {"5xx", CFG_RETRY_5XX},
    {"gateway-error", CFG_RETRY_GATEWAY_ERROR},
    {"reset", CFG_RETRY_RESET},
    {"connect-failure", CFG_RETRY_CONNECT_FAILURE},
    {"retriable-4xx", CFG_RETRY_RETRIABLE_4XX},
    {"refused-stream", CFG_RETRY_REFUSED_STREAM},
    {"retriable-status-codes", CFG_RETRY_RETRIABLE_STATUS_CODES},
    {"cancelled", CFG_RETRY_GRPC_CANCELLED},
    {"deadline-exceeded", CFG_RETRY_GRPC_DEADLINE_EXCEEDED},
    {"resource-exhausted", CFG_RETRY_GRPC_RESOURCE_EXHAUSTED},
    {"unavailable", CFG_RETRY_GRPC_UNAVAILABLE},
    {"internal", CFG_RETRY_GRPC_INTERNAL},
};
/* Envoy conditions pilotfish does not act on yet. */
static const char *const conditions_unsupported[] = {
    "retriable-headers", "reset-before-request", "envoy-ratelimited", "http3-post-connect-failure",
    NULL};

void cfg_retry_policy_free(cfg_retry_policy *p)
{
    if (!p)
        return;
    free(p->status_codes);
    free(p);
}

static int parse_retry_on(cfg_ctx *c, const yn_node *n, uint32_t *out)
{
    char *s = NULL;
    int rc = cfg_node_str(c, n, &s);
    for (char *save = NULL, *tok = rc ? NULL : strtok_r(s, ", ", &save); tok && !rc;
         tok = strtok_r(NULL, ", ", &save)) {
        bool found = false;
        for (size_t i = 0; i < sizeof conditions / sizeof conditions[0] && !found; i++)
            if (strcmp(tok, conditions[i].name) == 0) {
                *out |= conditions[i].bit;
                found = true;
            }
        for (size_t i = 0; conditions_unsupported[i] && !found; i++)
            if (strcmp(tok, conditions_unsupported[i]) == 0)
                rc = cfg_err(c, n, "not supported yet: retry condition '%s'", tok);
        if (!found && !rc)
            rc = cfg_err(c, n, "unknown retry condition '%s' (expected 5xx, gateway-error, reset, "
                               "connect-failure, retriable-4xx, refused-stream, "
                               "retriable-status-codes, cancelled, deadline-exceeded, "
                               "resource-exhausted, unavailable, internal)", tok);
    }
    free(s);
    return rc;
}

static int parse_predicates(cfg_ctx *c, const yn_node *seq, cfg_retry_policy *p)
{
    static const cfg_fields f = {pred_handled, NULL, NULL};
    size_t n;
    int rc = cfg_expect_seq(c, seq, &n);
    for (size_t i = 0; i < n && !rc; i++) {
        size_t m = cfg_push_idx(c, i);
        char *name = NULL;
        if ((rc = cfg_check_map(c, seq->items[i], &f)) == 0 &&
            (rc = cfg_get_str(c, seq->items[i], "name", true, &name)) == 0) {
            if (strcmp(name, "envoy.retry_host_predicates.previous_hosts") == 0)
                p->previous_hosts = true;
            else
                rc = cfg_err(c, seq->items[i], "not supported yet: retry host predicate '%s' "
                             "(supported: envoy.retry_host_predicates.previous_hosts)", name);
        }
        free(name);
        cfg_pop(c, m);
    }
    return rc;
}

static int parse_status_codes(cfg_ctx *c, const yn_node *seq, cfg_retry_policy *p)
{
    size_t n;
    int rc = cfg_expect_seq(c, seq, &n);
    if (rc || n == 0)
        return rc;
    if (!(p->status_codes = calloc(n, sizeof *p->status_codes)))
        return cfg_err(c, seq, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        size_t m = cfg_push_idx(c, i);
        uint64_t v = 0;
        if ((rc = cfg_node_u64(c, seq->items[i], &v)) == 0 && (v < 100 || v > 599))
            rc = cfg_err(c, seq->items[i], "expected an HTTP status code (100..599)");
        p->status_codes[i] = (uint16_t)v;
        cfg_pop(c, m);
    }
    p->n_status_codes = n;
    return rc;
}

int cfg_parse_retry_policy(cfg_ctx *c, const yn_node *n, cfg_retry_policy **out)
{
    static const cfg_fields f = {rp_handled, NULL, rp_unsupported};
    int rc = cfg_check_map(c, n, &f);
    if (rc)
        return rc;
    cfg_retry_policy *p = calloc(1, sizeof *p);
    if (!p)
        return cfg_err(c, n, "out of memory");
    *out = p;
    p->num_retries = 1;
    p->backoff_base_ms = 25;
    p->host_selection_attempts = 1;
    const yn_node *v;
    if ((v = cfg_get(n, "retry_on"))) {
        size_t m = cfg_push(c, "retry_on");
        rc = parse_retry_on(c, v, &p->retry_on);
        cfg_pop(c, m);
    }
    if (!rc)
        rc = cfg_get_u32(c, n, "num_retries", false, 0, 1000, &p->num_retries);
    if (!rc)
        rc = cfg_get_u32(c, n, "host_selection_retry_max_attempts", false, 1, 100,
                         &p->host_selection_attempts);
    if (!rc)
        rc = cfg_get_duration(c, n, "per_try_timeout", &p->per_try_timeout_ms);
    if (!rc && (v = cfg_get(n, "retry_back_off"))) {
        static const cfg_fields bf = {backoff_handled, NULL, NULL};
        size_t m = cfg_push(c, "retry_back_off");
        if ((rc = cfg_check_map(c, v, &bf)) == 0 && !cfg_get(v, "base_interval"))
            rc = cfg_err(c, v, "missing required field 'base_interval'");
        if (!rc)
            rc = cfg_get_duration(c, v, "base_interval", &p->backoff_base_ms);
        if (!rc)
            rc = cfg_get_duration(c, v, "max_interval", &p->backoff_max_ms);
        if (!rc && p->backoff_max_ms && p->backoff_max_ms < p->backoff_base_ms)
            rc = cfg_err(c, v, "max_interval must be >= base_interval");
        cfg_pop(c, m);
    }
    if (!p->backoff_max_ms)
        p->backoff_max_ms = p->backoff_base_ms * 10;
    if (!rc && (v = cfg_get(n, "retry_host_predicate"))) {
        size_t m = cfg_push(c, "retry_host_predicate");
        rc = parse_predicates(c, v, p);
        cfg_pop(c, m);
    }
    if (!rc && (v = cfg_get(n, "retry_priority"))) {
        static const cfg_fields pf = {pred_handled, NULL, NULL};
        size_t m = cfg_push(c, "retry_priority");
        char *name = NULL;
        if ((rc = cfg_check_map(c, v, &pf)) == 0 &&
            (rc = cfg_get_str(c, v, "name", true, &name)) == 0) {
            if (strcmp(name, "envoy.retry_priorities.previous_priorities") == 0)
                p->previous_priorities = true;
            else
                rc = cfg_err(c, v, "not supported yet: retry priority '%s' (supported: "
                                   "envoy.retry_priorities.previous_priorities)", name);
        }
        free(name);
        cfg_pop(c, m);
    }
    if (!rc && (v = cfg_get(n, "retriable_status_codes"))) {
        size_t m = cfg_push(c, "retriable_status_codes");
        rc = parse_status_codes(c, v, p);
        cfg_pop(c, m);
    }
    return rc;
}
