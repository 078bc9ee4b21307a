/* route.retry_policy (envoy.config.route.v3.RetryPolicy). */
#ifndef PF_RETRY_CONFIG_H
#define PF_RETRY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* retry_on conditions, as a bit set */
enum {
    CFG_RETRY_5XX = 1 << 0,
    CFG_RETRY_GATEWAY_ERROR = 1 << 1,
    CFG_RETRY_RESET = 1 << 2,
    CFG_RETRY_CONNECT_FAILURE = 1 << 3,
    CFG_RETRY_RETRIABLE_4XX = 1 << 4,
    CFG_RETRY_REFUSED_STREAM = 1 << 5,
    CFG_RETRY_RETRIABLE_STATUS_CODES = 1 << 6,
    CFG_RETRY_GRPC_CANCELLED = 1 << 7,
    CFG_RETRY_GRPC_DEADLINE_EXCEEDED = 1 << 8,
    CFG_RETRY_GRPC_RESOURCE_EXHAUSTED = 1 << 9,
    CFG_RETRY_GRPC_UNAVAILABLE = 1 << 10,
    CFG_RETRY_GRPC_INTERNAL = 1 << 11,
};

typedef struct cfg_retry_policy {
    uint32_t retry_on;                  /* CFG_RETRY_* */
    uint32_t num_retries;               /* default 1 */
    uint64_t per_try_timeout_ms;        /* 0: none */
    uint64_t backoff_base_ms;           /* retry_back_off.base_interval, default 25 */
    uint64_t backoff_max_ms;            /* default 10 x base */
    bool previous_hosts;                /* retry_host_predicate envoy.retry_host_predicates.previous_hosts */
    bool previous_priorities;           /* retry_priority envoy.retry_priorities.previous_priorities */
    uint32_t host_selection_attempts;   /* host_selection_retry_max_attempts, default 1 */
    uint16_t *status_codes;             /* retriable_status_codes; owned */
    size_t n_status_codes;
} cfg_retry_policy;

void cfg_retry_policy_free(cfg_retry_policy *p);

#endif
