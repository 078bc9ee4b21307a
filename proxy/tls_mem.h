/* The socket-free half of a TLS engine: an SSL over two memory BIOs.
 *
 * The owner moves the bytes: ciphertext read from the peer goes in with
 * pf_tls_mem_feed, ciphertext OpenSSL produced comes out with
 * pf_tls_mem_out / pf_tls_mem_out_clear and is written to the connection.
 * Worker sockets (proxy/sock.c) and the main thread's health-check probes
 * (proxy/health_check.c) both drive their SSL through these helpers, so
 * neither needs the other's event plumbing.
 *
 * Each SSL carries a pf_tls_fail slot where proxy/tls.c's verify callback
 * records why a certificate was refused (for the ssl.fail_verify_* stats). */
#ifndef PF_TLS_MEM_H
#define PF_TLS_MEM_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

/* Why a handshake failed, for the fail_verify_* stats. */
typedef enum pf_tls_fail {
    PF_TLS_FAIL_NONE,
    PF_TLS_FAIL_VERIFY_ERROR,
    PF_TLS_FAIL_VERIFY_SAN,
    PF_TLS_FAIL_VERIFY_HASH,
    PF_TLS_FAIL_NO_CHAIN,       /* no filter chain matched the ClientHello */
} pf_tls_fail;

/* A new SSL on ctx in client or server state, its BIOs in memory.  fail
 * (which must outlive the SSL) is where verification failures are recorded.
 * NULL when out of memory. */
SSL *pf_tls_mem_new(SSL_CTX *ctx, bool server, pf_tls_fail *fail);
/* The slot given to pf_tls_mem_new (NULL for other SSLs). */
pf_tls_fail *pf_tls_mem_fail_slot(const SSL *ssl);
/* Ciphertext from the peer; 0, or -1 when out of memory. */
int pf_tls_mem_feed(SSL *ssl, const void *data, size_t n);
/* The ciphertext waiting to be written (its length; *p valid until
 * pf_tls_mem_out_clear or the next SSL call). */
size_t pf_tls_mem_out(SSL *ssl, char **p);
void pf_tls_mem_out_clear(SSL *ssl);
/* Drives the handshake: 1 done, 0 waiting for the peer, -1 failed (the
 * reason is left on OpenSSL's error queue for the caller to report). */
int pf_tls_mem_handshake(SSL *ssl);
/* Decrypts into buf: the plaintext length (> 0), 0 when more ciphertext is
 * needed, UV_EOF on close_notify or UV_EPROTO on a TLS error. */
int pf_tls_mem_read(SSL *ssl, char *buf, size_t cap);

#endif
