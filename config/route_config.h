/* Typed route configuration (envoy.config.route.v3): RouteConfiguration,
 * VirtualHost, Route, RouteMatch, RouteAction, RedirectAction,
 * DirectResponseAction and the header mutations of all levels.
 *
 * Built by config/config_route*.c, owned by the cfg_bootstrap and freed by
 * cfg_free_route_config().  Immutable after load: workers read it without
 * locks.  Strings that the data path compares carry their length so that
 * matching never calls strlen(); names compared against request headers are
 * stored lower-case.  Regexes are compiled (PCRE2 + JIT) at load time; the
 * compiled code is shared read-only by all workers, match data is per thread
 * (proxy/route_regex.c). */
#ifndef PF_ROUTE_CONFIG_H
#define PF_ROUTE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A compiled regex.  `full` regexes must match the whole subject (Envoy's
 * RE2::FullMatch for safe_regex matchers); others are searched (rewrites). */
typedef struct cfg_regex {
    char *pattern;              /* owned; NULL when unset */
    void *code;                 /* pcre2_code *, owned; NULL when unset */
} cfg_regex;

/* Compiles pattern (PCRE2, UTF-8, JIT when available).  Returns 0, or
 * -EINVAL with a message and the byte offset of the error in *erroff. */
int cfg_regex_init(cfg_regex *re, const char *pattern, bool full, char *err, size_t errlen,
                   size_t *erroff);
void cfg_regex_free(cfg_regex *re);

/* envoy.type.matcher.v3.StringMatcher */
typedef enum cfg_sm_kind {
    CFG_SM_EXACT,
    CFG_SM_PREFIX,
    CFG_SM_SUFFIX,
    CFG_SM_CONTAINS,
    CFG_SM_REGEX,
} cfg_sm_kind;

typedef struct cfg_string_match {
    cfg_sm_kind kind;
    bool ignore_case;           /* not for CFG_SM_REGEX (Envoy rejects it there) */
    char *value;                /* owned; lower-cased when ignore_case */
    size_t len;
    cfg_regex re;               /* CFG_SM_REGEX, full match */
} cfg_string_match;

/* envoy.config.route.v3.HeaderMatcher */
typedef enum cfg_header_match_kind {
    CFG_HM_STRING,
    CFG_HM_PRESENT,
    CFG_HM_RANGE,
} cfg_header_match_kind;

typedef struct cfg_header_match {
    char *name;                 /* lower-case, owned */
    size_t name_len;
    cfg_header_match_kind kind;
    cfg_string_match sm;        /* CFG_HM_STRING */
    bool present;               /* CFG_HM_PRESENT: present_match value */
    int64_t range_start, range_end;     /* CFG_HM_RANGE: [start, end) */
    bool invert;
    bool treat_missing_as_empty;
} cfg_header_match;

/* envoy.config.route.v3.QueryParameterMatcher */
typedef struct cfg_query_match {
    char *name;                 /* owned, case-sensitive as Envoy */
    size_t name_len;
    bool has_sm;
    cfg_string_match sm;
    bool has_present;
    bool present;
} cfg_query_match;

/* A header value template with Envoy's %VARIABLE% substitutions, compiled
 * at load.  A template without variables is one CFG_FMT_LIT part. */
typedef enum cfg_fmt_op {
    CFG_FMT_LIT,
    CFG_FMT_DS_REMOTE,          /* %DOWNSTREAM_REMOTE_ADDRESS% */
    CFG_FMT_DS_REMOTE_NOPORT,   /* %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% */
    CFG_FMT_DS_LOCAL,           /* %DOWNSTREAM_LOCAL_ADDRESS% */
    CFG_FMT_DS_LOCAL_NOPORT,    /* %DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT% */
    CFG_FMT_UP_REMOTE,          /* %UPSTREAM_REMOTE_ADDRESS% */
    CFG_FMT_PROTOCOL,           /* %PROTOCOL% */
    CFG_FMT_REQ,                /* %REQ(name)% (s: lower-case name) */
    CFG_FMT_RESP,               /* %RESP(name)% (response headers only) */
    CFG_FMT_START_TIME,         /* %START_TIME% / %START_TIME(strftime format)% */
    CFG_FMT_RESPONSE_CODE,      /* %RESPONSE_CODE% */
    CFG_FMT_HOSTNAME,           /* %HOSTNAME% */
} cfg_fmt_op;

typedef struct cfg_fmt_part {
    cfg_fmt_op op;
    char *s;                    /* literal, header name or time format; owned; may be NULL */
    size_t n;
} cfg_fmt_part;

typedef struct cfg_fmt {
    cfg_fmt_part *parts;        /* owned */
    size_t n;
} cfg_fmt;

/* envoy.config.core.v3.HeaderValueOption.append_action */
typedef enum cfg_append_action {
    CFG_APPEND_IF_EXISTS_OR_ADD,
    CFG_ADD_IF_ABSENT,
    CFG_OVERWRITE_IF_EXISTS_OR_ADD,
    CFG_OVERWRITE_IF_EXISTS,
} cfg_append_action;

typedef struct cfg_header_add {
    char *name;                 /* lower-case, owned */
    size_t name_len;
    cfg_fmt value;
    cfg_append_action action;
    bool keep_empty_value;
} cfg_header_add;

typedef struct cfg_lstr {
    char *p;                    /* owned */
    size_t n;
} cfg_lstr;

/* *_headers_to_add / *_headers_to_remove of one level.  Removes apply
 * before adds, as Envoy's HeaderParser. */
typedef struct cfg_header_mutations {
    cfg_header_add *add;
    size_t n_add;
    cfg_lstr *remove;           /* lower-case names */
    size_t n_remove;
} cfg_header_mutations;

typedef enum cfg_match_kind {
    CFG_MATCH_PREFIX,
    CFG_MATCH_PATH,
    CFG_MATCH_REGEX,            /* safe_regex: full match on the path without query */
    CFG_MATCH_SEP_PREFIX,       /* path_separated_prefix */
} cfg_match_kind;

typedef enum cfg_action_kind {
    CFG_ACTION_ROUTE,           /* forward to a cluster */
    CFG_ACTION_DIRECT,          /* direct_response */
    CFG_ACTION_REDIRECT,        /* redirect */
} cfg_action_kind;

typedef struct cfg_weighted_cluster {
    char *name;
    size_t cluster_index;
    uint32_t weight;
    uint64_t weight_end;        /* sum of the weights up to this one included (binary search) */
    char *runtime_key;          /* "<runtime_key_prefix>.<name>", or NULL; owned */
    char *host_rewrite_literal; /* NULL when absent */
    size_t host_rewrite_literal_len;
    cfg_header_mutations req_mut, resp_mut;
} cfg_weighted_cluster;

/* RouteAction.hash_policy entries */
typedef enum cfg_hash_kind {
    CFG_HASH_HEADER,
    CFG_HASH_COOKIE,
    CFG_HASH_SOURCE_IP,
    CFG_HASH_QUERY,
} cfg_hash_kind;

typedef struct cfg_hash_policy {
    cfg_hash_kind kind;
    char *name;                 /* header (lower-case), cookie or query parameter name */
    size_t name_len;
    bool terminal;
    bool disabled;              /* connection_properties.source_ip: false */
    bool has_ttl;               /* cookie: generate one when absent */
    uint64_t ttl_s;             /* cookie Max-Age; 0: session cookie */
    char *path;                 /* cookie Path, or NULL */
} cfg_hash_policy;

/* envoy.type.matcher.v3.RegexMatchAndSubstitute: every match is replaced;
 * \0..\9 in the substitution insert capture groups. */
typedef struct cfg_regex_rewrite {
    cfg_regex re;               /* re.code NULL when unset */
    char *subst;
    size_t subst_len;
} cfg_regex_rewrite;

typedef struct cfg_redirect {
    char *scheme;               /* scheme_redirect or "https" (https_redirect); NULL: keep */
    char *host;                 /* host_redirect or NULL */
    char *port;                 /* ":N" from port_redirect, or NULL */
    char *path;                 /* path_redirect or NULL */
    bool path_has_query;
    char *prefix_rewrite;       /* NULL when absent */
    size_t prefix_rewrite_len;
    cfg_regex_rewrite regex_rewrite;
    uint16_t code;              /* 301 default */
    bool strip_query;
} cfg_redirect;

/* RouteAction.request_mirror_policies[] (envoy.config.route.v3.RouteAction.
 * RequestMirrorPolicy), run by proxy/mirror.c. */
typedef struct cfg_mirror_policy {
    char *cluster;              /* `cluster`, or NULL when cluster_header is used; owned */
    size_t cluster_index;       /* index into cfg_bootstrap.clusters (with `cluster`) */
    char *cluster_header;       /* lower-case, or NULL; owned */
    size_t cluster_header_len;
    bool has_fraction;          /* runtime_fraction given: mirror only that share */
    char *rf_key;               /* runtime_fraction.runtime_key, or NULL; owned */
    uint32_t rf_num, rf_den;    /* runtime_fraction.default_value */
    bool keep_host;             /* disable_shadow_host_suffix_append */
} cfg_mirror_policy;

/* At most this many mirror policies per list (a bit each on the stream). */
#define CFG_MAX_MIRRORS 8

/* request_mirror_policies of one level.  Envoy: the most specific non-empty
 * list applies whole (route, else virtual host, else route configuration). */
typedef struct cfg_mirrors {
    cfg_mirror_policy *v;       /* owned */
    size_t n;
} cfg_mirrors;

typedef struct cfg_route {
    char *name;                 /* may be NULL */

    /* match */
    cfg_match_kind match_kind;
    char *match_value;          /* prefix, exact path, separated prefix or the regex text */
    size_t match_len;
    cfg_regex match_re;         /* CFG_MATCH_REGEX */
    bool case_insensitive;      /* case_sensitive: false (prefix/path kinds) */
    cfg_header_match *headers;
    size_t n_headers;
    cfg_query_match *queries;
    size_t n_queries;
    bool grpc;
    bool has_runtime_fraction;
    char *rf_key;               /* runtime_fraction.runtime_key, or NULL */
    uint32_t rf_num, rf_den;    /* default_value */

    cfg_action_kind action;
    /* CFG_ACTION_ROUTE: exactly one of cluster, cluster_header, weighted */
    char *cluster;              /* NULL unless `cluster` is used */
    size_t cluster_index;       /* index into cfg_bootstrap.clusters */
    char *cluster_header;       /* lower-case, or NULL */
    size_t cluster_header_len;
    uint16_t cluster_not_found_code;    /* 503 default */
    cfg_weighted_cluster *weighted;
    size_t n_weighted;
    uint32_t total_weight;      /* sum of the configured weights */
    bool wc_runtime;            /* some weighted[i].runtime_key is set */
    char *wc_header_name;       /* weighted_clusters.header_name (lower-case) or NULL */
    size_t wc_header_name_len;
    cfg_hash_policy *hash;
    size_t n_hash;
    uint64_t timeout_ms;        /* route.timeout; default 15000; 0 disables */
    bool has_idle_timeout;
    uint64_t idle_timeout_ms;   /* route.idle_timeout (proxy/hcm_timeout.c; 0 disables) */
    char *prefix_rewrite;       /* NULL when absent */
    size_t prefix_rewrite_len;
    cfg_regex_rewrite regex_rewrite;
    char *host_rewrite_literal; /* NULL when absent */
    size_t host_rewrite_literal_len;
    bool auto_host_rewrite;
    char *host_rewrite_header;  /* lower-case, or NULL */
    size_t host_rewrite_header_len;
    bool append_x_forwarded_host;
    /* CFG_ACTION_REDIRECT */
    cfg_redirect redirect;
    /* CFG_ACTION_DIRECT */
    uint16_t direct_status;
    char *direct_body;          /* NULL when absent */
    size_t direct_body_len;

    cfg_header_mutations req_mut, resp_mut;
    struct cfg_retry_policy *retry;     /* route.retry_policy; owned; NULL when absent */
    cfg_mirrors mirrors;                /* route.request_mirror_policies */
    /* Resolved at load, for the request path: the retry policy that applies
     * (the route's, else its virtual host's; not owned; NULL: none), and
     * whether some mirror list applies (route, virtual host or route config). */
    const struct cfg_retry_policy *retry_applied;
    bool mirrored;
    /* typed_per_filter_config (config/filter_config.h); owned */
    struct cfg_per_filter *per_filter;
    size_t n_per_filter;
    /* cluster_specifier_plugin / inline_cluster_specifier_plugin
     * (config/cluster_specifier_config.h): owned when inline, else in the
     * route config's cluster_plugins; NULL when absent */
    struct cfg_cluster_specifier *cluster_plugin;
    bool owns_cluster_plugin;
    /* metadata.filter_metadata (config/metadata_config.h); owned; NULL when absent */
    struct yn_node *filter_metadata;
} cfg_route;

typedef struct cfg_virtual_host {
    char *name;
    char **domains;             /* "*", "*.suffix", "prefix.*" or exact */
    size_t *domain_lens;        /* may be NULL (then strlen is used) */
    size_t n_domains;
    cfg_route *routes;
    size_t n_routes;
    cfg_header_mutations req_mut, resp_mut;
    struct cfg_per_filter *per_filter;  /* typed_per_filter_config; owned */
    size_t n_per_filter;
    struct route_index *index;  /* route_index_new; owned; NULL: route_match scans */
    /* retry_policy for routes without their own (Envoy: a route's policy
     * replaces the virtual host's whole); owned; NULL when absent */
    struct cfg_retry_policy *retry;
    cfg_mirrors mirrors;        /* request_mirror_policies for routes without their own */
} cfg_virtual_host;

/* The route index of a parsed virtual host (proxy/route_index.c); NULL for
 * few routes or without memory. */
struct route_index *route_index_new(const cfg_virtual_host *vh);
void route_index_free(struct route_index *ix);

typedef struct cfg_route_config {
    char *name;                 /* may be NULL */
    cfg_virtual_host *vhosts;
    size_t n_vhosts;
    bool ignore_port_in_host_matching;
    bool most_specific_header_mutations_wins;
    cfg_header_mutations req_mut, resp_mut;
    cfg_mirrors mirrors;        /* request_mirror_policies for virtual hosts without their own */
    struct cfg_cluster_specifier *cluster_plugins;  /* cluster_specifier_plugins; owned */
    size_t n_cluster_plugins;
} cfg_route_config;

#endif
