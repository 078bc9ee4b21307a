#include "proxy/tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "admin/stats.h"
#include "config/tls_config.h"
#include "proxy/log.h"
#include "proxy/proxy_stats.h"

/* Envoy's default cipher list (non-FIPS) without BoringSSL's equal-preference
 * groups, and its default curves. */
#define DEFAULT_CIPHERS "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:" \
                        "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:"     \
                        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
#define DEFAULT_CURVES "X25519:P-256"
#define TICKET_KEY_LEN 80           /* 16 name + 32 HMAC + 32 AES (Envoy's format) */

/* One SSL_CTX and what its callbacks need; reached from the SSL_CTX through
 * ex_data.  Owned by the store. */
typedef struct pf_tls_ctx {
    SSL_CTX *ctx;
    const cfg_tls_common *common;
    bool server;
    const cfg_listener *listener;   /* server: for ClientHello chain selection */
    int chain;                      /* server: index in listener->chains */
    unsigned char *alpn_wire;       /* alpn_protocols in wire format */
    size_t alpn_len;
    const unsigned char *keys;      /* session ticket keys (TICKET_KEY_LEN each) */
    size_t n_keys;
    unsigned char random_key[TICKET_KEY_LEN];
} pf_tls_ctx;

struct pf_tls_store {
    pf_tls_ctx **chains;            /* [cfg->n_hcms]; NULL: plaintext chain */
    pf_tls_ctx **clusters;          /* [cfg->n_clusters] */
    size_t n_chains, n_clusters;
};

static pf_tls_store *g_store;
static int ctx_idx = -1;
static int session_slot_idx = -1;   /* SSL ex_data: where an upstream keeps its session */
static const char **cipher_names;
static size_t n_cipher_names;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void init_once(void)
{
    ctx_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    session_slot_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    SSL_CTX *c = SSL_CTX_new(TLS_method());
    if (!c)
        return;
    SSL_CTX_set_security_level(c, 0);
    SSL_CTX_set_cipher_list(c, "ALL:COMPLEMENTOFALL");
    STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(c);
    int n = sk ? sk_SSL_CIPHER_num(sk) : 0;
    cipher_names = calloc((size_t)n + 1, sizeof *cipher_names);
    for (int i = 0; cipher_names && i < n; i++) {
        const char *nm = SSL_CIPHER_get_name(sk_SSL_CIPHER_value(sk, i));
        size_t j = 0;
        while (j < n_cipher_names && strcmp(cipher_names[j], nm) != 0)
            j++;
        if (j == n_cipher_names)
            cipher_names[n_cipher_names++] = nm;    /* static strings in libssl */
    }
    if (cipher_names)
        qsort(cipher_names, n_cipher_names, sizeof *cipher_names, cmp_str);
    SSL_CTX_free(c);
    ERR_clear_error();
}

/* The table lives as long as the process (names point into libssl). */
const char *const *pf_tls_cipher_names(size_t *n)
{
    pthread_once(&once, init_once);
    *n = n_cipher_names;
    return cipher_names;
}

static size_t cipher_index(const SSL_CIPHER *c)
{
    const char *nm = c ? SSL_CIPHER_get_name(c) : NULL;
    if (!nm || !cipher_names)
        return SIZE_MAX;
    const char **hit = bsearch(&nm, cipher_names, n_cipher_names, sizeof *cipher_names, cmp_str);
    return hit ? (size_t)(hit - cipher_names) : SIZE_MAX;
}

static pf_tls_ctx *tctx_of(SSL *ssl)
{
    return SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_idx);
}

/* ---- filter chain match (Envoy's order; the most specific level wins and
 * there is no fallback to a less specific one) ---- */

/* -1: no match; 0: catch-all; wildcard: suffix length; exact: INT_MAX. */
static int sni_score(const cfg_filter_chain_match *m, const char *sni)
{
    if (m->n_server_names == 0)
        return 0;
    if (!sni || !*sni)
        return -1;
    int best = -1;
    size_t sl = strlen(sni);
    for (size_t i = 0; i < m->n_server_names; i++) {
        const char *n = m->server_names[i];
        if (n[0] == '*') {
            size_t nl = strlen(n) - 1;              /* ".example.com" */
            if (sl > nl && !strcasecmp(sni + sl - nl, n + 1) && (int)nl > best)
                best = (int)nl;
        } else if (!strcasecmp(n, sni)) {
            return INT32_MAX;
        }
    }
    return best;
}

static int tp_score(const cfg_filter_chain_match *m, bool tls)
{
    if (m->transport_protocol == CFG_TP_ANY)
        return 0;
    return (m->transport_protocol == CFG_TP_TLS) == tls ? 1 : -1;
}

static int alpn_score(const cfg_filter_chain_match *m, const unsigned char *alpn, size_t len)
{
    if (m->n_application_protocols == 0)
        return 0;
    for (size_t i = 0; i < m->n_application_protocols; i++) {
        const char *want = m->application_protocols[i];
        size_t wl = strlen(want);
        for (size_t p = 0; alpn && p < len;) {
            size_t l = alpn[p];
            if (p + 1 + l > len)
                break;
            if (l == wl && !memcmp(alpn + p + 1, want, l))
                return 1;
            p += 1 + l;
        }
    }
    return -1;
}

int pf_tls_match_chain(const cfg_listener *l, const char *sni, bool tls,
                       const unsigned char *alpn, size_t alpn_len)
{
    size_t n = l->n_chains - (l->has_default ? 1 : 0);
    int best_sni = -1;
    for (size_t i = 0; i < n; i++) {
        int s = sni_score(l->chains[i].match, sni);
        if (s > best_sni)
            best_sni = s;
    }
    int best = -1, best_tp = -1, best_alpn = -1;
    if (best_sni >= 0) {
        for (size_t i = 0; i < n; i++) {
            const cfg_filter_chain_match *m = l->chains[i].match;
            if (sni_score(m, sni) != best_sni)
                continue;
            int t = tp_score(m, tls);
            if (t > best_tp)
                best_tp = t;
        }
        for (size_t i = 0; best_tp >= 0 && i < n; i++) {
            const cfg_filter_chain_match *m = l->chains[i].match;
            if (sni_score(m, sni) != best_sni || tp_score(m, tls) != best_tp)
                continue;
            int a = alpn_score(m, alpn, alpn_len);
            if (a > best_alpn) {
                best_alpn = a;
                best = (int)i;
            }
        }
    }
    if (best < 0 && l->has_default)
        best = (int)n;
    return best;
}

/* ---- callbacks ---- */

static int on_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg)
{
    pf_tls_ctx *t = tctx_of(ssl);
    if (!t || !t->alpn_len)
        return SSL_TLSEXT_ERR_NOACK;
    unsigned char *o;
    if (SSL_select_next_proto(&o, outlen, t->alpn_wire, (unsigned)t->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = o;
    return SSL_TLSEXT_ERR_OK;
}

/* server_name extension -> host name (NUL-terminated into buf). */
static const char *hello_sni(SSL *ssl, char *buf, size_t cap)
{
    const unsigned char *p;
    size_t len;
    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) || len < 5)
        return NULL;
    size_t list = (size_t)p[0] << 8 | p[1];
    if (list + 2 > len || p[2] != TLSEXT_NAMETYPE_host_name)
        return NULL;
    size_t nl = (size_t)p[3] << 8 | p[4];
    if (nl + 5 > len || nl == 0 || nl >= cap)
        return NULL;
    for (size_t i = 0; i < nl; i++)
        buf[i] = (char)tolower(p[5 + i]);
    buf[nl] = '\0';
    return buf;
}

/* Switches ssl to the chosen chain's context and its per-connection knobs
 * (SSL_set_SSL_CTX moves the certificates and the session id context only). */
static int switch_ctx(SSL *ssl, pf_tls_ctx *to)
{
    if (SSL_get_SSL_CTX(ssl) == to->ctx)
        return 1;
    if (!SSL_set_SSL_CTX(ssl, to->ctx))
        return 0;
    SSL_set_verify(ssl, SSL_CTX_get_verify_mode(to->ctx), SSL_CTX_get_verify_callback(to->ctx));
    SSL_clear_options(ssl, SSL_get_options(ssl));
    SSL_set_options(ssl, SSL_CTX_get_options(to->ctx));
    const cfg_tls_common *c = to->common;
    return SSL_set_min_proto_version(ssl, c->min_version) &&
           SSL_set_max_proto_version(ssl, c->max_version) &&
           SSL_set_cipher_list(ssl, c->cipher_suites ? c->cipher_suites : DEFAULT_CIPHERS) &&
           SSL_set1_groups_list(ssl, c->ecdh_curves ? c->ecdh_curves : DEFAULT_CURVES);
}

static int on_client_hello(SSL *ssl, int *al, void *arg)
{
    pf_sock *s = SSL_get_app_data(ssl);
    pf_tls_ctx *t = tctx_of(ssl);
    if (!s || !s->tls || !t || !t->listener)
        return SSL_CLIENT_HELLO_SUCCESS;
    if (s->tls->chain >= 0)
        return SSL_CLIENT_HELLO_SUCCESS;    /* chosen before the handshake */
    char buf[256];
    const char *sni = hello_sni(ssl, buf, sizeof buf);
    const unsigned char *alpn = NULL;
    size_t alen = 0;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation,
                                  &alpn, &alen) && alen >= 2) {
        alpn += 2;
        alen -= 2;
    } else {
        alpn = NULL;
        alen = 0;
    }
    int idx = pf_tls_match_chain(t->listener, sni, true, alpn, alen);
    const pf_tls_ctx *to = NULL;
    if (idx >= 0 && g_store)
        to = g_store->chains[t->listener->chains[idx].hcm.index];
    if (!to) {
        /* No chain, or a plaintext chain for a TLS hello. */
        s->tls->fail = PF_TLS_FAIL_NO_CHAIN;
        *al = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_CLIENT_HELLO_ERROR;
    }
    if (!switch_ctx(ssl, (pf_tls_ctx *)to)) {
        *al = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    s->tls->chain = idx;
    return SSL_CLIENT_HELLO_SUCCESS;
}

static bool str_match(const cfg_san_matcher *m, const char *v, size_t vl)
{
    const char *w = m->value;
    size_t wl = strlen(w);
    int (*ncmp)(const char *, const char *, size_t) = m->ignore_case ? strncasecmp : strncmp;
    switch (m->kind) {
    case CFG_STR_EXACT:
        return vl == wl && !ncmp(v, w, wl);
    case CFG_STR_PREFIX:
        return vl >= wl && !ncmp(v, w, wl);
    case CFG_STR_SUFFIX:
        return vl >= wl && !ncmp(v + vl - wl, w, wl);
    case CFG_STR_CONTAINS:
        for (size_t i = 0; i + wl <= vl; i++)
            if (!ncmp(v + i, w, wl))
                return true;
        return false;
    }
    return false;
}

/* A DNS SAN "*.example.com" in the certificate matches exact "a.example.com". */
static bool dns_match(const cfg_san_matcher *m, const char *v, size_t vl)
{
    if (str_match(m, v, vl))
        return true;
    if (m->kind != CFG_STR_EXACT || vl < 3 || v[0] != '*' || v[1] != '.')
        return false;
    const char *dot = strchr(m->value, '.');
    return dot && dot != m->value && strlen(dot) == vl - 1 && !strncasecmp(dot, v + 1, vl - 1);
}

static bool san_ok(X509 *x, const cfg_tls_validation *v)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    bool ok = false;
    int n = names ? sk_GENERAL_NAME_num(names) : 0;
    for (int i = 0; i < n && !ok; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        char ip[64];
        const char *val = NULL;
        size_t vl = 0;
        cfg_san_type type;
        if (g->type == GEN_DNS || g->type == GEN_URI || g->type == GEN_EMAIL) {
            type = g->type == GEN_DNS ? CFG_SAN_DNS : g->type == GEN_URI ? CFG_SAN_URI
                                                                          : CFG_SAN_EMAIL;
            val = (const char *)ASN1_STRING_get0_data(g->d.ia5);
            vl = (size_t)ASN1_STRING_length(g->d.ia5);
        } else if (g->type == GEN_IPADD) {
            type = CFG_SAN_IP;
            int l = ASN1_STRING_length(g->d.ip);
            const unsigned char *d = ASN1_STRING_get0_data(g->d.ip);
            if (!inet_ntop(l == 4 ? AF_INET : AF_INET6, d, ip, sizeof ip) || (l != 4 && l != 16))
                continue;
            val = ip;
            vl = strlen(ip);
        } else {
            continue;
        }
        for (size_t j = 0; j < v->n_san && !ok; j++) {
            const cfg_san_matcher *m = &v->san[j];
            if (m->type != type)
                continue;
            ok = type == CFG_SAN_DNS ? dns_match(m, val, vl) : str_match(m, val, vl);
        }
    }
    GENERAL_NAMES_free(names);
    return ok;
}

/* verify_certificate_hash / verify_certificate_spki: either list may match. */
static bool pins_ok(X509 *x, const cfg_tls_validation *v)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdl = 0;
    if (v->n_hash && X509_digest(x, EVP_sha256(), md, &mdl) && mdl == 32)
        for (size_t i = 0; i < v->n_hash; i++)
            if (!memcmp(md, v->hash[i], 32))
                return true;
    if (v->n_spki) {
        unsigned char *der = NULL;
        int l = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
        bool hit = false;
        if (l > 0 && EVP_Digest(der, (size_t)l, md, &mdl, EVP_sha256(), NULL))
            for (size_t i = 0; i < v->n_spki && !hit; i++)
                hit = !memcmp(md, v->spki[i], 32);
        OPENSSL_free(der);
        if (hit)
            return true;
    }
    return false;
}

static int on_verify(int ok, X509_STORE_CTX *xs)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    pf_tls_ctx *t = ssl ? tctx_of(ssl) : NULL;
    pf_tls_fail *fail = ssl ? pf_tls_mem_fail_slot(ssl) : NULL;
    if (!t || !fail)
        return ok;
    const cfg_tls_validation *v = &t->common->validation;
    if (!v->trusted_ca_pem)
        ok = 1;                     /* pins only: Envoy does not verify the chain */
    if (!ok) {
        int e = X509_STORE_CTX_get_error(xs);
        if (!*fail)
            *fail = e == X509_V_ERR_HOSTNAME_MISMATCH ? PF_TLS_FAIL_VERIFY_SAN
                                                      : PF_TLS_FAIL_VERIFY_ERROR;
        return 0;
    }
    if (X509_STORE_CTX_get_error_depth(xs) > 0)
        return 1;
    X509 *x = X509_STORE_CTX_get_current_cert(xs);
    if ((v->n_hash || v->n_spki) && !pins_ok(x, v)) {
        *fail = PF_TLS_FAIL_VERIFY_HASH;
        X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    if (v->n_san && !san_ok(x, v)) {
        *fail = PF_TLS_FAIL_VERIFY_SAN;
        X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    return 1;
}

/* Session tickets with Envoy's 80-byte keys: the first encrypts, any
 * decrypts (2: decrypted with an old key, issue a fresh ticket). */
static int on_ticket_key(SSL *ssl, unsigned char name[16], unsigned char *iv,
                         EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc)
{
    pf_tls_ctx *t = tctx_of(ssl);
    if (!t)
        return -1;
    const unsigned char *keys = t->n_keys ? t->keys : t->random_key;
    size_t nk = t->n_keys ? t->n_keys : 1;
    const unsigned char *k = NULL;
    int rc = 1;
    if (enc) {
        k = keys;
        memcpy(name, k, 16);
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1)
            return -1;
    } else {
        for (size_t i = 0; i < nk && !k; i++)
            if (!memcmp(name, keys + i * TICKET_KEY_LEN, 16)) {
                k = keys + i * TICKET_KEY_LEN;
                rc = i == 0 ? 1 : 2;
            }
        if (!k)
            return 0;
    }
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)(k + 16), 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (!EVP_MAC_CTX_set_params(hctx, params))
        return -1;
    if (enc ? !EVP_EncryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k + 48, iv)
            : !EVP_DecryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k + 48, iv))
        return -1;
    return rc;
}

/* ---- building contexts ---- */

static int fail(char *err, size_t errlen, const char *what, const char *where)
{
    char reason[256] = "";
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    ERR_clear_error();
    snprintf(err, errlen, "%s: %s%s%s", where, what, reason[0] ? ": " : "", reason);
    return -1;
}

static int load_certs(SSL_CTX *ctx, const cfg_tls_common *c, char *err, size_t errlen,
                      const char *where)
{
    for (size_t i = 0; i < c->n_certs; i++) {
        const cfg_tls_cert *ct = &c->certs[i];
        BIO *b = BIO_new_mem_buf(ct->chain_pem, -1);
        X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        int ok = x && SSL_CTX_use_certificate(ctx, x) == 1;
        X509_free(x);
        X509 *extra;
        while (ok && (extra = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
            /* add0: the chain takes the reference on success */
            if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
                X509_free(extra);
                ok = 0;
            }
        }
        ERR_clear_error();          /* the end of the PEM stream */
        BIO_free(b);
        b = BIO_new_mem_buf(ct->key_pem, -1);
        EVP_PKEY *k = ok && b ? PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"") : NULL;
        ok = k && SSL_CTX_use_PrivateKey(ctx, k) == 1;
        EVP_PKEY_free(k);
        BIO_free(b);
        if (!ok)
            return fail(err, errlen, "cannot load the certificate and key", ct->source);
    }
    return 0;
}

static int load_ca(SSL_CTX *ctx, const char *pem, char *err, size_t errlen, const char *where)
{
    X509_STORE *st = SSL_CTX_get_cert_store(ctx);
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x;
    int n = 0;
    while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        X509_STORE_add_cert(st, x);
        X509_free(x);
        n++;
    }
    ERR_clear_error();
    BIO_free(b);
    if (!n)
        return fail(err, errlen, "no trusted CA certificates", where);
    return 0;
}

static unsigned char *alpn_wire(char **v, size_t n, size_t *len)
{
    size_t l = 0;
    for (size_t i = 0; i < n; i++)
        l += 1 + strlen(v[i]);
    unsigned char *w = malloc(l + 1), *p = w;
    for (size_t i = 0; w && i < n; i++) {
        size_t k = strlen(v[i]);
        *p++ = (unsigned char)k;
        memcpy(p, v[i], k);
        p += k;
    }
    *len = l;
    return w;
}

static void tctx_free(pf_tls_ctx *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t->alpn_wire);
    OPENSSL_cleanse(t->random_key, sizeof t->random_key);
    free(t);
}

static pf_tls_ctx *tctx_new(const cfg_tls_common *c, bool server, char *err, size_t errlen,
                            const char *where)
{
    pf_tls_ctx *t = calloc(1, sizeof *t);
    if (!t || !(t->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()))) {
        free(t);
        fail(err, errlen, "out of memory", where);
        return NULL;
    }
    t->common = c;
    t->server = server;
    SSL_CTX *ctx = t->ctx;
    SSL_CTX_set_ex_data(ctx, ctx_idx, t);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (!SSL_CTX_set_min_proto_version(ctx, c->min_version) ||
        !SSL_CTX_set_max_proto_version(ctx, c->max_version) ||
        !SSL_CTX_set_cipher_list(ctx, c->cipher_suites ? c->cipher_suites : DEFAULT_CIPHERS) ||
        !SSL_CTX_set1_groups_list(ctx, c->ecdh_curves ? c->ecdh_curves : DEFAULT_CURVES) ||
        load_certs(ctx, c, err, errlen, where) != 0 ||
        (c->validation.trusted_ca_pem &&
         load_ca(ctx, c->validation.trusted_ca_pem, err, errlen, where) != 0))
        goto bad;
    if (c->n_alpn && !(t->alpn_wire = alpn_wire(c->alpn, c->n_alpn, &t->alpn_len)))
        goto bad;
    return t;
bad:
    if (!err[0])
        fail(err, errlen, "cannot build the TLS context", where);
    tctx_free(t);
    return NULL;
}

static pf_tls_ctx *server_ctx(const cfg_listener *l, size_t ci, char *err, size_t errlen)
{
    const cfg_filter_chain *ch = &l->chains[ci];
    const cfg_tls_server *ts = ch->tls;
    char where[300];
    snprintf(where, sizeof where, "listener '%s' filter chain %zu", l->name, ci);
    pf_tls_ctx *t = tctx_new(&ts->common, true, err, errlen, where);
    if (!t)
        return NULL;
    SSL_CTX *ctx = t->ctx;
    t->listener = l;
    t->chain = (int)ci;
    t->keys = ts->ticket_keys;
    t->n_keys = ts->n_ticket_keys;
    if (RAND_bytes(t->random_key, sizeof t->random_key) != 1)
        goto bad;
    /* Sessions resume only on the chain that issued them. */
    unsigned char sid[32];
    unsigned int sl = 0;
    char ident[300];
    int il = snprintf(ident, sizeof ident, "%s/%zu", l->name, ci);
    if (!EVP_Digest(ident, (size_t)il, sid, &sl, EVP_sha256(), NULL) ||
        !SSL_CTX_set_session_id_context(ctx, sid, sl))
        goto bad;
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_timeout(ctx, 7200);          /* Envoy's default session_timeout */
    if (ts->disable_stateless_session_resumption)
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    else
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket_key);
    SSL_CTX_set_client_hello_cb(ctx, on_client_hello, NULL);
    if (t->alpn_len)
        SSL_CTX_set_alpn_select_cb(ctx, on_alpn_select, NULL);
    const cfg_tls_validation *v = &ts->common.validation;
    if (v->trusted_ca_pem || v->n_hash || v->n_spki || ts->require_client_certificate)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (ts->require_client_certificate ?
                                                   SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                           on_verify);
    return t;
bad:
    fail(err, errlen, "cannot build the TLS context", where);
    tctx_free(t);
    return NULL;
}

/* A new session from an upstream (TLS 1.3: a NewSessionTicket after the
 * handshake; TLS 1.2: at its end): a copy replaces the one in the slot the
 * connection's pool gave, so the pool's next connection resumes.  A copy,
 * because OpenSSL marks a connection's own session not resumable when the
 * connection ends without close_notify, which upstreams often do. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    SSL_SESSION **slot = SSL_get_ex_data(ssl, session_slot_idx);
    SSL_SESSION *copy;
    if (!slot || !SSL_SESSION_is_resumable(sess) || !(copy = SSL_SESSION_dup(sess)))
        return 0;
    SSL_SESSION_free(*slot);
    *slot = copy;
    return 0;                       /* the connection keeps its own reference */
}

int pf_tls_session_slot(SSL *ssl, const cfg_cluster *c, void **slot)
{
    if (!slot) {
        SSL_set_ex_data(ssl, session_slot_idx, NULL);
        return 0;
    }
    if (!c->tls || !c->tls->max_session_keys)
        return 0;
    /* A copy, as pf_upstream_tls_start: a connection's session is spoilt if
     * it ends badly. */
    SSL_SESSION *offer = *slot ? SSL_SESSION_dup(*slot) : NULL;
    if (*slot && !offer)
        return -1;
    int ok = (!offer || SSL_set_session(ssl, offer)) && SSL_set_ex_data(ssl, session_slot_idx, slot);
    SSL_SESSION_free(offer);        /* the SSL holds its own reference */
    return ok ? 0 : -1;
}

void pf_tls_session_free(void *session)
{
    SSL_SESSION_free(session);
}

static pf_tls_ctx *client_ctx(const cfg_cluster *cl, char *err, size_t errlen)
{
    const cfg_tls_client *tc = cl->tls;
    char where[300];
    snprintf(where, sizeof where, "cluster '%s'", cl->name);
    pf_tls_ctx *t = tctx_new(&tc->common, false, err, errlen, where);
    if (!t)
        return NULL;
    if (!t->alpn_len && !cl->http_downstream) {
        /* No alpn_protocols: like Envoy's connection pools, offer what the
         * cluster speaks (auto_config: both), so HTTP/2-only servers such
         * as gRPC ones accept the connection. */
        static const unsigned char both[] = "\x02h2\x08http/1.1";
        const unsigned char *w = cl->http_auto ? both : cl->http2 ? both : both + 3;
        size_t n = cl->http_auto ? sizeof both - 1 : cl->http2 ? 3 : sizeof both - 4;
        if (!(t->alpn_wire = malloc(n))) {
            tctx_free(t);
            fail(err, errlen, "out of memory", where);
            return NULL;
        }
        memcpy(t->alpn_wire, w, n);
        t->alpn_len = n;
    }
    if (t->alpn_len && SSL_CTX_set_alpn_protos(t->ctx, t->alpn_wire, (unsigned)t->alpn_len)) {
        fail(err, errlen, "cannot set ALPN", where);
        tctx_free(t);
        return NULL;
    }
    const cfg_tls_validation *v = &tc->common.validation;
    if (v->trusted_ca_pem || v->n_hash || v->n_spki)
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, on_verify);
    else
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
    if (tc->max_session_keys) {
        /* Sessions live in the pools (on_new_session), not in OpenSSL's cache. */
        SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_CLIENT |
                                                   SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(t->ctx, on_new_session);
    } else {
        SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
    }
    return t;
}

void pf_tls_store_free(pf_tls_store *st)
{
    if (!st)
        return;
    for (size_t i = 0; st->chains && i < st->n_chains; i++)
        tctx_free(st->chains[i]);
    for (size_t i = 0; st->clusters && i < st->n_clusters; i++)
        tctx_free(st->clusters[i]);
    free(st->chains);
    free(st->clusters);
    if (g_store == st)
        g_store = NULL;
    free(st);
}

int pf_tls_store_new(const cfg_bootstrap *cfg, pf_tls_store **out, char *err, size_t errlen)
{
    pthread_once(&once, init_once);
    err[0] = '\0';
    pf_tls_store *st = calloc(1, sizeof *st);
    if (!st || !(st->chains = calloc(cfg->n_hcms + 1, sizeof *st->chains)) ||
        !(st->clusters = calloc(cfg->n_clusters + 1, sizeof *st->clusters))) {
        pf_tls_store_free(st);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    st->n_chains = cfg->n_hcms;
    st->n_clusters = cfg->n_clusters;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const cfg_listener *l = &cfg->listeners[i];
        for (size_t j = 0; j < l->n_chains; j++) {
            if (!l->chains[j].tls)
                continue;
            if (!(st->chains[l->chains[j].hcm.index] = server_ctx(l, j, err, errlen))) {
                pf_tls_store_free(st);
                return -1;
            }
        }
    }
    for (size_t i = 0; i < cfg->n_clusters; i++) {
        if (cfg->clusters[i].tls && !(st->clusters[i] = client_ctx(&cfg->clusters[i], err,
                                                                    errlen))) {
            pf_tls_store_free(st);
            return -1;
        }
    }
    g_store = st;
    *out = st;
    return 0;
}

const pf_tls_store *pf_tls_store_get(void)
{
    return g_store;
}

SSL_CTX *pf_tls_chain_ctx(const pf_tls_store *st, size_t hcm_index)
{
    return st && hcm_index < st->n_chains && st->chains[hcm_index] ? st->chains[hcm_index]->ctx
                                                                   : NULL;
}

SSL_CTX *pf_tls_cluster_ctx(const pf_tls_store *st, size_t ci)
{
    return st && ci < st->n_clusters && st->clusters[ci] ? st->clusters[ci]->ctx : NULL;
}

SSL_CTX *pf_tls_listener_ctx(const pf_tls_store *st, const cfg_listener *l)
{
    for (size_t i = 0; i < l->n_chains; i++) {
        SSL_CTX *c = pf_tls_chain_ctx(st, l->chains[i].hcm.index);
        if (c)
            return c;
    }
    return NULL;
}

/* ---- upstream ---- */

size_t pf_tls_auto_sni_len(const char *host, size_t host_len)
{
    if (!host || !host_len)
        return 0;
    if (host[0] == '[') {
        const char *rb = memchr(host, ']', host_len);
        return rb ? (size_t)(rb - host) + 1 : host_len;
    }
    const char *colon = memchr(host, ':', host_len);
    return colon ? (size_t)(colon - host) : host_len;
}

int pf_upstream_tls_start(pf_sock *s, const cfg_cluster *c, size_t ci, const char *host,
                          size_t host_len, void **session_slot)
{
    if (!c->tls)
        return 0;
    SSL_CTX *ctx = pf_tls_cluster_ctx(g_store, ci);
    if (!ctx)
        return UV_EINVAL;
    char sni[256];
    sni[0] = '\0';
    if (c->tls->sni) {
        snprintf(sni, sizeof sni, "%s", c->tls->sni);
    } else if (c->auto_sni) {
        /* The request's host without its port (Envoy's auto_sni). */
        size_t n = pf_tls_auto_sni_len(host, host_len);
        if (n < sizeof sni) {
            memcpy(sni, host, n);
            sni[n] = '\0';
        }
    }
    pf_worker *w = s->w;
    bool resume = session_slot && c->tls->max_session_keys;
    SSL_SESSION *offer = resume ? *session_slot : NULL;
    if (offer && !c->tls->sni && sni[0]) {
        /* auto_sni: a session is only offered to the name it came from
         * (OpenSSL would otherwise resume it under its old name). */
        const char *was = SSL_SESSION_get0_hostname(offer);
        if (!was || strcasecmp(was, sni) != 0)
            offer = NULL;
    }
    /* A copy again: the connection's session is spoilt if it ends badly. */
    if (offer && !(offer = SSL_SESSION_dup(offer)))
        return UV_ENOMEM;
    int rc = pf_sock_tls_client(s, ctx, sni[0] ? sni : NULL, offer, &w->ps->clusters[ci].ssl);
    SSL_SESSION_free(offer);        /* the SSL holds its own reference */
    if (rc == 0 && resume)      /* where the sessions this connection gets go */
        SSL_set_ex_data(s->tls->ssl, session_slot_idx, session_slot);
    if (rc == 0 && c->auto_san_validation && sni[0] && sni[0] != '[' &&
        c->tls->common.validation.trusted_ca_pem) {
        /* Verify the certificate against the SNI we sent. */
        if (!SSL_set1_host(s->tls->ssl, sni))
            rc = UV_EINVAL;
    }
    return rc;
}

/* ---- stats ---- */

static int version_slot(int v)
{
    switch (v) {
    case TLS1_VERSION:
        return 0;
    case TLS1_1_VERSION:
        return 1;
    case TLS1_2_VERSION:
        return 2;
    case TLS1_3_VERSION:
        return 3;
    }
    return -1;
}

static int curve_slot(int nid)
{
    switch (nid) {
    case NID_X25519:
        return 0;
    case NID_X9_62_prime256v1:
        return 1;
    case NID_secp384r1:
        return 2;
    case NID_secp521r1:
        return 3;
    case NID_X448:
        return 4;
    }
    return -1;
}

void pf_tls__handshake_done(pf_sock *s)
{
    pf_tls_count_handshake(s->w->stats, s->tls->stats, s->tls->ssl, s->tls->server);
}

void pf_tls_count_handshake(stats_shard *sh, const pf_tls_stats *ts, SSL *ssl, bool server)
{
    if (!ts || !ts->registered)
        return;
    stats_inc(sh, ts->handshake);
    if (SSL_session_reused(ssl))
        stats_inc(sh, ts->session_reused);
    int v = version_slot(SSL_version(ssl));
    if (v >= 0)
        stats_inc(sh, ts->versions[v]);
    size_t ci = cipher_index(SSL_get_current_cipher(ssl));
    if (ci != SIZE_MAX)
        stats_inc(sh, ts->ciphers_base + (stat_id)ci);
    int cv = curve_slot(SSL_get_negotiated_group(ssl));
    if (cv >= 0)
        stats_inc(sh, ts->curves[cv]);
    if (server && !SSL_get0_peer_certificate(ssl))
        stats_inc(sh, ts->no_certificate);
}

void pf_tls__handshake_failed(pf_sock *s)
{
    pf_tls_count_failure(s->w->stats, s->tls->stats, s->tls->fail);
}

/* Reads (does not clear) the reason OpenSSL left on the error queue. */
void pf_tls_count_failure(stats_shard *sh, const pf_tls_stats *ts, pf_tls_fail fail)
{
    unsigned long e = ERR_peek_error();
    if (PF_LOG_DEBUG >= pf_log_level) {
        char buf[256] = "";
        if (e)
            ERR_error_string_n(e, buf, sizeof buf);
        pf_debug("tls: handshake failed: %s", buf[0] ? buf : "(no reason)");
    }
    if (fail == PF_TLS_FAIL_NO_CHAIN || !ts || !ts->registered)
        return;
    stats_inc(sh, ts->connection_error);
    if (fail == PF_TLS_FAIL_VERIFY_SAN)
        stats_inc(sh, ts->fail_verify_san);
    else if (fail == PF_TLS_FAIL_VERIFY_HASH)
        stats_inc(sh, ts->fail_verify_cert_hash);
    else if (fail == PF_TLS_FAIL_VERIFY_ERROR)
        stats_inc(sh, ts->fail_verify_error);
    else if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
             ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
        stats_inc(sh, ts->fail_verify_no_cert);
        stats_inc(sh, ts->no_certificate);
    }
}
