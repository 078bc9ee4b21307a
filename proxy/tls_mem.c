#include "proxy/tls_mem.h"

#include <pthread.h>

#include <openssl/err.h>
#include <uv.h>

static int fail_idx = -1;           /* SSL ex_data: the pf_tls_fail slot */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_once(void)
{
    fail_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

SSL *pf_tls_mem_new(SSL_CTX *ctx, bool server, pf_tls_fail *fail)
{
    pthread_once(&once, init_once);
    SSL *ssl = SSL_new(ctx);
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
    if (!ssl || !rbio || !wbio || fail_idx < 0 || !SSL_set_ex_data(ssl, fail_idx, fail)) {
        SSL_free(ssl);
        BIO_free(rbio);
        BIO_free(wbio);
        return NULL;
    }
    /* An empty BIO means "retry later", never end of stream. */
    BIO_set_mem_eof_return(rbio, -1);
    BIO_set_mem_eof_return(wbio, -1);
    SSL_set_bio(ssl, rbio, wbio);
    if (server)
        SSL_set_accept_state(ssl);
    else
        SSL_set_connect_state(ssl);
    return ssl;
}

pf_tls_fail *pf_tls_mem_fail_slot(const SSL *ssl)
{
    return fail_idx < 0 ? NULL : SSL_get_ex_data(ssl, fail_idx);
}

int pf_tls_mem_feed(SSL *ssl, const void *data, size_t n)
{
    return !n || BIO_write(SSL_get_rbio(ssl), data, (int)n) == (int)n ? 0 : -1;
}

size_t pf_tls_mem_out(SSL *ssl, char **p)
{
    long n = BIO_get_mem_data(SSL_get_wbio(ssl), p);
    return n > 0 ? (size_t)n : 0;
}

void pf_tls_mem_out_clear(SSL *ssl)
{
    (void)BIO_reset(SSL_get_wbio(ssl));
}

int pf_tls_mem_handshake(SSL *ssl)
{
    ERR_clear_error();
    int r = SSL_do_handshake(ssl);
    if (r == 1)
        return 1;
    int e = SSL_get_error(ssl, r);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

int pf_tls_mem_read(SSL *ssl, char *buf, size_t cap)
{
    ERR_clear_error();
    int k = SSL_read(ssl, buf, (int)cap);
    if (k > 0)
        return k;
    int e = SSL_get_error(ssl, k);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    ERR_clear_error();
    return e == SSL_ERROR_ZERO_RETURN ? UV_EOF : UV_EPROTO;
}
