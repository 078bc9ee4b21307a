/* TLS config: the DownstreamTlsContext of a filter chain, the
 * UpstreamTlsContext of a cluster and the filter_chain_match that picks a
 * chain (Envoy v3 envoy.extensions.transport_sockets.tls.v3.*).
 *
 * Certificates, keys and CAs are read and checked at config load (files
 * exist, PEM parses, every key matches its certificate, cipher and curve
 * lists are accepted by OpenSSL) and kept here as PEM text, so the proxy
 * (proxy/tls.c) builds its SSL_CTX objects from memory and never touches the
 * file system after start-up.  Everything is owned by the cfg_bootstrap. */
#ifndef PF_TLS_CONFIG_H
#define PF_TLS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* tls_params.tls_{minimum,maximum}_protocol_version; values are the
 * protocol numbers OpenSSL uses (TLS1_2_VERSION = 0x0303 ...). */
#define CFG_TLS_V1_0 0x0301
#define CFG_TLS_V1_1 0x0302
#define CFG_TLS_V1_2 0x0303
#define CFG_TLS_V1_3 0x0304

typedef struct cfg_tls_cert {
    char *chain_pem;            /* certificate_chain (leaf first); owned */
    char *key_pem;              /* private_key; owned */
    char *source;               /* "file:line:col" of the entry, for log messages */
} cfg_tls_cert;

typedef enum cfg_san_type {
    CFG_SAN_DNS,
    CFG_SAN_URI,
    CFG_SAN_EMAIL,
    CFG_SAN_IP,
} cfg_san_type;

typedef enum cfg_str_match_kind {
    CFG_STR_EXACT,
    CFG_STR_PREFIX,
    CFG_STR_SUFFIX,
    CFG_STR_CONTAINS,
} cfg_str_match_kind;

typedef struct cfg_san_matcher {
    cfg_san_type type;
    cfg_str_match_kind kind;
    bool ignore_case;
    char *value;                /* owned */
} cfg_san_matcher;

typedef struct cfg_tls_validation {
    char *trusted_ca_pem;       /* NULL: no chain verification; owned */
    cfg_san_matcher *san;       /* match_typed_subject_alt_names; any one must match */
    size_t n_san;
    uint8_t (*spki)[32];        /* verify_certificate_spki: sha256 of the SPKI (base64 in YAML) */
    size_t n_spki;
    uint8_t (*hash)[32];        /* verify_certificate_hash: sha256 of the DER cert (hex) */
    size_t n_hash;
} cfg_tls_validation;

typedef struct cfg_tls_common {
    cfg_tls_cert *certs;        /* tls_certificates */
    size_t n_certs;
    char **alpn;                /* alpn_protocols, in preference order */
    size_t n_alpn;
    uint16_t min_version;       /* default TLSv1_2 */
    uint16_t max_version;       /* default TLSv1_3 */
    char *cipher_suites;        /* joined with ':' (TLS <= 1.2 names); NULL: Envoy's default */
    char *ecdh_curves;          /* joined with ':'; NULL: Envoy's default */
    bool has_validation;
    cfg_tls_validation validation;
} cfg_tls_common;

/* DownstreamTlsContext */
typedef struct cfg_tls_server {
    cfg_tls_common common;
    bool require_client_certificate;
    bool disable_stateless_session_resumption;
    uint8_t *ticket_keys;       /* session_ticket_keys: 80 bytes each; NULL: random */
    size_t n_ticket_keys;
} cfg_tls_server;

/* UpstreamTlsContext.  auto_sni / auto_san_validation live in cfg_cluster
 * (HttpProtocolOptions, config/config_http_protocol.c). */
typedef struct cfg_tls_client {
    cfg_tls_common common;
    char *sni;                  /* NULL: none (unless the cluster's auto_sni) */
    uint32_t max_session_keys;  /* 0: no session resumption; default 1 */
} cfg_tls_client;

typedef enum cfg_transport_proto {
    CFG_TP_ANY,                 /* unset */
    CFG_TP_RAW_BUFFER,
    CFG_TP_TLS,
} cfg_transport_proto;

typedef struct cfg_filter_chain_match {
    char **server_names;        /* exact or "*.suffix", lower-case */
    size_t n_server_names;
    cfg_transport_proto transport_protocol;
    char **application_protocols;
    size_t n_application_protocols;
} cfg_filter_chain_match;

void cfg_tls_server_free(cfg_tls_server *t);
void cfg_tls_client_free(cfg_tls_client *t);
void cfg_fcm_free(cfg_filter_chain_match *m);

#endif
