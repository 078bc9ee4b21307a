/* TLS contexts, filter chain selection, certificate verification and the
 * ssl.* stats.
 *
 * pf_tls_store_new() builds one OpenSSL SSL_CTX per TLS filter chain and per
 * TLS cluster on the main thread before workers start; afterwards the
 * contexts are only read (SSL_CTX is safe for concurrent SSL_new and
 * handshakes; its session cache has its own lock), so every worker shares
 * them.  The socket layer (proxy/sock.c) runs the per-connection engine; it
 * calls back here when a handshake ends, for the stats.
 *
 * Server side: ALPN is chosen in the listener's alpn_protocols order;
 * several certificates (RSA + ECDSA) live in one context and OpenSSL picks by
 * the client's signature algorithms; the ClientHello callback picks the
 * filter chain from SNI and ALPN (Envoy's filter_chain_match order:
 * server_names, then transport_protocol, then application_protocols) and
 * switches the connection to that chain's context.  Session tickets (keys
 * from session_ticket_keys or random per context) and a server-side session
 * cache are on by default; TLS < 1.2 and renegotiation are refused. */
#ifndef PF_TLS_H
#define PF_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "config/config.h"
#include "proxy/outq.h"
#include "proxy/sock.h"
#include "proxy/tls_mem.h"
#include "proxy/worker.h"

struct pf_tls_stats;

/* Per-connection TLS state of a pf_sock (s->tls); owned by the socket. */
typedef struct pf_sock_tls {
    SSL *ssl;                       /* on memory BIOs (proxy/tls_mem.h) */
    pf_outq cout;                   /* ciphertext waiting for the socket */
    pf_deferred pump;               /* resume delivering buffered plaintext */
    pf_sock *sock;
    const struct pf_tls_stats *stats;
    int chain;                      /* server: the filter chain (-1 until chosen) */
    pf_tls_fail fail;
    bool server, started, hs_done, failed, shutdown_sent, eof;
} pf_sock_tls;

typedef struct pf_tls_store pf_tls_store;

/* Builds every context of cfg.  Returns 0, or -1 with a message in err. */
int pf_tls_store_new(const cfg_bootstrap *cfg, pf_tls_store **out, char *err, size_t errlen);
void pf_tls_store_free(pf_tls_store *st);
/* The process-wide store set by pf_tls_store_new (NULL before); read-only. */
const pf_tls_store *pf_tls_store_get(void);

/* The SSL_CTX of a filter chain (by cfg_hcm.index) or cluster; NULL when it
 * is plaintext. */
SSL_CTX *pf_tls_chain_ctx(const pf_tls_store *st, size_t hcm_index);
SSL_CTX *pf_tls_cluster_ctx(const pf_tls_store *st, size_t cluster_index);
/* The context a listener starts TLS connections on before the ClientHello
 * picks their chain (the first TLS chain's); NULL when it has none. */
SSL_CTX *pf_tls_listener_ctx(const pf_tls_store *st, const cfg_listener *l);

/* Envoy's filter chain match for a connection: sni (NULL/"" when none),
 * tls: the transport protocol detected ("tls" vs "raw_buffer"), alpn: the
 * client's ALPN list in wire format (may be NULL).  Returns the chain index
 * (default_filter_chain included), or -1. */
int pf_tls_match_chain(const cfg_listener *l, const char *sni, bool tls,
                       const unsigned char *alpn, size_t alpn_len);

/* Upstream: starts TLS on a cluster's new connection (call right after
 * pf_sock_connect).  sni_host: the request's host for auto_sni (may be
 * NULL).  session_slot (may be NULL): where the host's last TLS session is
 * kept (SSL_SESSION *); it is offered for resumption and replaced by the
 * sessions this connection receives.  It must outlive the connection.
 * A no-op returning 0 for plaintext clusters. */
int pf_upstream_tls_start(pf_sock *s, const cfg_cluster *c, size_t cluster_index,
                          const char *sni_host, size_t sni_len, void **session_slot);
/* Session resumption for a client SSL made without pf_upstream_tls_start
 * (health checks, proxy/hc_tls.c): offers a copy of the session in *slot and
 * keeps the sessions ssl receives there.  slot NULL stops keeping them (do
 * it before the slot goes away).  A no-op when c keeps no sessions
 * (max_session_keys 0).  Returns 0, or -1 when out of memory. */
int pf_tls_session_slot(SSL *ssl, const cfg_cluster *c, void **slot);
/* Frees a session kept in a session slot (NULL is fine). */
void pf_tls_session_free(void *session);
/* auto_sni: the length of host's name without its port. */
size_t pf_tls_auto_sni_len(const char *host, size_t host_len);

/* Every cipher name OpenSSL knows, sorted (for ssl.ciphers.<name> stats). */
const char *const *pf_tls_cipher_names(size_t *n);

/* Socket-layer callbacks (proxy/sock.c): a handshake ended. */
void pf_tls__handshake_done(pf_sock *s);
void pf_tls__handshake_failed(pf_sock *s);
/* The same ssl.* counting for any SSL, into the calling thread's shard sh
 * (the main thread's health checks use these with the main shard). */
struct stats_shard;
void pf_tls_count_handshake(struct stats_shard *sh, const struct pf_tls_stats *ts, SSL *ssl,
                            bool server);
void pf_tls_count_failure(struct stats_shard *sh, const struct pf_tls_stats *ts,
                          pf_tls_fail fail);

#endif
