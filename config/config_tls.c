/* TLS config parsing: transport_socket (DownstreamTlsContext and
 * UpstreamTlsContext), filter_chain_match, listener_filters (tls_inspector)
 * and the TLS part of a cluster's HttpProtocolOptions.
 *
 * Keys and certificates are read and checked here with OpenSSL so a broken
 * file is a config error naming its location, in serve and validate modes
 * alike; the PEM text is kept for proxy/tls.c (see config/tls_config.h). */
#include "config/config_internal.h"
#include "config/tls_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define TLS_SOCKET_NAME "envoy.transport_sockets.tls"
#define RAW_SOCKET_NAME "envoy.transport_sockets.raw_buffer"
#define DOWNSTREAM_TYPE "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3." \
                        "DownstreamTlsContext"
#define UPSTREAM_TYPE "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3." \
                      "UpstreamTlsContext"
#define RAW_TYPE "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3." \
                 "RawBuffer"
#define TLS_INSPECTOR_NAME "envoy.filters.listener.tls_inspector"
#define TLS_INSPECTOR_TYPE "type.googleapis.com/envoy.extensions.filters.listener." \
                           "tls_inspector.v3.TlsInspector"

/* ---- freeing ---- */

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void common_free(cfg_tls_common *t)
{
    for (size_t i = 0; i < t->n_certs; i++) {
        free(t->certs[i].chain_pem);
        if (t->certs[i].key_pem) {
            OPENSSL_cleanse(t->certs[i].key_pem, strlen(t->certs[i].key_pem));
            free(t->certs[i].key_pem);
        }
        free(t->certs[i].source);
    }
    free(t->certs);
    free_strv(t->alpn, t->n_alpn);
    free(t->cipher_suites);
    free(t->ecdh_curves);
    cfg_tls_validation *v = &t->validation;
    free(v->trusted_ca_pem);
    for (size_t i = 0; i < v->n_san; i++)
        free(v->san[i].value);
    free(v->san);
    free(v->spki);
    free(v->hash);
}

void cfg_tls_server_free(cfg_tls_server *t)
{
    if (!t)
        return;
    common_free(&t->common);
    if (t->ticket_keys)
        OPENSSL_cleanse(t->ticket_keys, t->n_ticket_keys * 80);
    free(t->ticket_keys);
    free(t);
}

void cfg_tls_client_free(cfg_tls_client *t)
{
    if (!t)
        return;
    common_free(&t->common);
    free(t->sni);
    free(t);
}

void cfg_fcm_free(cfg_filter_chain_match *m)
{
    if (!m)
        return;
    free_strv(m->server_names, m->n_server_names);
    free_strv(m->application_protocols, m->n_application_protocols);
    free(m);
}

/* ---- small helpers ---- */

/* typed_config with @type `want` (a map). */
static int check_typed(cfg_ctx *c, const yn_node *tc, const char *want)
{
    if (tc->kind != YN_MAP)
        return cfg_err(c, tc, "expected a map");
    return cfg_check_type_url(c, tc, want);
}

/* A sequence of strings -> *out (n entries). */
static int get_strv(cfg_ctx *c, const yn_node *map, const char *key, char ***out, size_t *n)
{
    const yn_node *seq = cfg_get(map, key);
    if (!seq)
        return 0;
    size_t m = cfg_push(c, key), k;
    int rc = cfg_expect_seq(c, seq, &k);
    if (!rc && k) {
        if (!(*out = calloc(k, sizeof **out)))
            rc = cfg_err(c, seq, "out of memory");
        else
            *n = k;
    }
    for (size_t i = 0; i < k && !rc; i++) {
        size_t mi = cfg_push_idx(c, i);
        rc = cfg_node_str(c, seq->items[i], &(*out)[i]);
        cfg_pop(c, mi);
    }
    cfg_pop(c, m);
    return rc;
}

static void openssl_reason(char *buf, size_t n)
{
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, buf, n);
    else
        snprintf(buf, n, "no PEM data");
    ERR_clear_error();
}

/* Reads a file whole (NUL-terminated). */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - n - 1, f);
        if (n < cap - 1)
            break;
        if (cap >= (16u << 20)) {
            free(b);
            b = NULL;
            errno = EFBIG;
            break;
        }
        char *nb = realloc(b, cap * 2);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    if (b && ferror(f)) {
        free(b);
        b = NULL;
        errno = EIO;
    }
    fclose(f);
    if (b) {
        b[n] = '\0';
        *len = n;
    }
    return b;
}

/* envoy.config.core.v3.DataSource node ds (its path pushed) -> *out
 * (NUL-terminated bytes) and *len. */
static int parse_ds(cfg_ctx *c, const yn_node *ds, char **out, size_t *len)
{
    static const char *const h[] = {"filename", "inline_string", "inline_bytes",
                                    "environment_variable", NULL};
    static const char *const u[] = {"watched_directory", NULL};
    static const cfg_fields f = {h, NULL, u};
    size_t l = 0;
    int rc = cfg_check_map(c, ds, &f);
    char *s = NULL, *data = NULL;
    const char *which = NULL;
    int nset = 0;
    for (int i = 0; h[i]; i++)
        if (cfg_get(ds, h[i])) {
            nset++;
            which = h[i];
        }
    if (!rc && nset != 1)
        rc = cfg_err(c, ds, "exactly one of filename, inline_string, inline_bytes, "
                            "environment_variable must be set");
    if (!rc && (rc = cfg_get_str(c, ds, which, true, &s)) == 0) {
        size_t mw = cfg_push(c, which);
        const yn_node *v = cfg_get(ds, which);
        if (!strcmp(which, "filename")) {
            if (!(data = slurp(s, &l)))
                rc = cfg_err(c, v, "cannot read '%s': %s", s, strerror(errno));
        } else if (!strcmp(which, "inline_string")) {
            data = s;
            l = strlen(s);
            s = NULL;
        } else if (!strcmp(which, "environment_variable")) {
            const char *e = getenv(s);
            if (!e)
                rc = cfg_err(c, v, "environment variable '%s' is not set", s);
            else if (!(data = strdup(e)))
                rc = cfg_err(c, v, "out of memory");
            else
                l = strlen(data);
        } else { /* inline_bytes: base64 */
            size_t in = strlen(s);
            if (!(data = malloc(in / 4 * 3 + 4))) {
                rc = cfg_err(c, v, "out of memory");
            } else {
                int k = in ? EVP_DecodeBlock((unsigned char *)data, (unsigned char *)s,
                                             (int)in) : 0;
                if (k < 0 || in % 4) {
                    rc = cfg_err(c, v, "invalid base64");
                } else {
                    while (in && s[in - 1] == '=' && k > 0) {
                        in--;
                        k--;
                    }
                    l = (size_t)k;
                    data[l] = '\0';
                }
            }
        }
        cfg_pop(c, mw);
    }
    free(s);
    if (rc) {
        free(data);
        return rc;
    }
    *out = data;
    *len = l;
    return 0;
}

/* DataSource at map[key]: returns 0, 1 when absent and !required, or an error. */
static int get_datasource(cfg_ctx *c, const yn_node *map, const char *key, bool required,
                          char **out, size_t *len)
{
    const yn_node *ds = cfg_get(map, key);
    if (!ds) {
        if (required)
            return cfg_err(c, map, "missing required field '%s'", key);
        return 1;
    }
    size_t m = cfg_push(c, key);
    int rc = parse_ds(c, ds, out, len);
    cfg_pop(c, m);
    return rc;
}

/* ---- tls_params ---- */

static const char *const version_known[] = {"TLS_AUTO", "TLSv1_0", "TLSv1_1", "TLSv1_2",
                                            "TLSv1_3", NULL};
static const uint16_t version_num[] = {0, CFG_TLS_V1_0, CFG_TLS_V1_1, CFG_TLS_V1_2,
                                       CFG_TLS_V1_3};

/* Joins a sequence of OpenSSL list entries with ':' after checking each one
 * against a scratch SSL_CTX (check(ctx, entry) != 1 -> error).  BoringSSL's
 * equal-preference groups "[a|b]" become "a:b"; TLS 1.3 suite names are
 * skipped in cipher_suites (they have no effect there, as in Envoy). */
static int parse_list(cfg_ctx *c, const yn_node *map, const char *key, bool ciphers,
                      char **out)
{
    const yn_node *seq = cfg_get(map, key);
    if (!seq)
        return 0;
    size_t m = cfg_push(c, key), n;
    int rc = cfg_expect_seq(c, seq, &n);
    SSL_CTX *ctx = rc ? NULL : SSL_CTX_new(TLS_method());
    char *joined = NULL;
    size_t jl = 0;
    if (!rc && !ctx)
        rc = cfg_err(c, seq, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        size_t mi = cfg_push_idx(c, i);
        char *e = NULL;
        if ((rc = cfg_node_str(c, seq->items[i], &e)) == 0) {
            char *w = e;
            size_t wl = strlen(w);
            if (wl && w[0] == '[' && w[wl - 1] == ']') {
                w[wl - 1] = '\0';
                w++;
            }
            for (char *p = w; *p; p++)
                if (*p == '|')
                    *p = ':';
            char *save = NULL, *dup = strdup(w);
            for (char *tok = dup ? strtok_r(dup, ":", &save) : NULL; tok && !rc;
                 tok = strtok_r(NULL, ":", &save)) {
                if (ciphers && !strncmp(tok, "TLS_", 4))
                    continue;
                int ok = ciphers ? SSL_CTX_set_cipher_list(ctx, tok)
                                 : SSL_CTX_set1_groups_list(ctx, tok);
                ERR_clear_error();
                if (ok != 1) {
                    rc = cfg_err(c, seq->items[i], "unknown %s '%s'",
                                 ciphers ? "cipher suite" : "curve", tok);
                    break;
                }
                size_t tl = strlen(tok);
                char *nj = realloc(joined, jl + tl + 2);
                if (!nj) {
                    rc = cfg_err(c, seq->items[i], "out of memory");
                    break;
                }
                joined = nj;
                if (jl)
                    joined[jl++] = ':';
                memcpy(joined + jl, tok, tl + 1);
                jl += tl;
            }
            if (!dup)
                rc = cfg_err(c, seq->items[i], "out of memory");
            free(dup);
        }
        free(e);
        cfg_pop(c, mi);
    }
    if (!rc && n && !joined)
        rc = cfg_err(c, seq, "no usable %s", ciphers ? "TLS 1.2 cipher suite" : "curve");
    SSL_CTX_free(ctx);
    cfg_pop(c, m);
    if (rc) {
        free(joined);
        return rc;
    }
    *out = joined;
    return 0;
}

static int parse_tls_params(cfg_ctx *c, const yn_node *p, cfg_tls_common *t, bool server)
{
    static const char *const h[] = {"tls_minimum_protocol_version",
                                    "tls_maximum_protocol_version", "cipher_suites",
                                    "ecdh_curves", NULL};
    static const char *const u[] = {"signature_algorithms", "compliance_policy",
                                    "compliance_policies", NULL};
    static const cfg_fields f = {h, NULL, u};
    int rc, lo = 0, hi = 0;
    if ((rc = cfg_check_map(c, p, &f)) != 0 ||
        (rc = cfg_get_enum(c, p, "tls_minimum_protocol_version", version_known,
                           version_known, &lo)) != 0 ||
        (rc = cfg_get_enum(c, p, "tls_maximum_protocol_version", version_known,
                           version_known, &hi)) != 0 ||
        (rc = parse_list(c, p, "cipher_suites", true, &t->cipher_suites)) != 0 ||
        (rc = parse_list(c, p, "ecdh_curves", false, &t->ecdh_curves)) != 0)
        return rc;
    if (lo)
        t->min_version = version_num[lo];
    if (hi)
        t->max_version = version_num[hi];
    (void)server;
    if (t->min_version > t->max_version) {
        size_t m = cfg_push(c, "tls_minimum_protocol_version");
        rc = cfg_err(c, cfg_key_node(p, "tls_minimum_protocol_version"),
                     "minimum protocol version is above the maximum");
        cfg_pop(c, m);
    }
    return rc;
}

/* ---- certificates ---- */

static int cert_key_type(X509 *x)
{
    EVP_PKEY *k = X509_get0_pubkey(x);
    return k ? EVP_PKEY_get_base_id(k) : 0;
}

static int parse_cert(cfg_ctx *c, const yn_node *n, cfg_tls_cert *out, int *key_type)
{
    static const char *const h[] = {"certificate_chain", "private_key", NULL};
    static const char *const u[] = {"password", "ocsp_staple", "signed_certificate_timestamp",
                                    "watched_directory", "private_key_provider", "pkcs12",
                                    NULL};
    static const cfg_fields f = {h, NULL, u};
    size_t len;
    int rc;
    char buf[256];
    if ((rc = cfg_check_map(c, n, &f)) != 0 ||
        (rc = get_datasource(c, n, "certificate_chain", true, &out->chain_pem, &len)) != 0 ||
        (rc = get_datasource(c, n, "private_key", true, &out->key_pem, &len)) != 0)
        return rc;
    snprintf(buf, sizeof buf, "%s:%u:%u", n->file, n->line, n->col);
    if (!(out->source = strdup(buf)))
        return cfg_err(c, n, "out of memory");
    BIO *b = BIO_new_mem_buf(out->chain_pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!x) {
        openssl_reason(buf, sizeof buf);
        size_t m = cfg_push(c, "certificate_chain");
        rc = cfg_err(c, cfg_get(n, "certificate_chain"), "failed to load certificate chain: %s",
                     buf);
        cfg_pop(c, m);
        return rc;
    }
    b = BIO_new_mem_buf(out->key_pem, -1);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"") : NULL;
    BIO_free(b);
    if (!k) {
        openssl_reason(buf, sizeof buf);
        size_t m = cfg_push(c, "private_key");
        rc = cfg_err(c, cfg_get(n, "private_key"), "failed to load private key: %s", buf);
        cfg_pop(c, m);
    } else if (X509_check_private_key(x, k) != 1) {
        ERR_clear_error();
        size_t m = cfg_push(c, "private_key");
        rc = cfg_err(c, cfg_get(n, "private_key"),
                     "private key does not match the certificate_chain's certificate");
        cfg_pop(c, m);
    }
    *key_type = cert_key_type(x);
    EVP_PKEY_free(k);
    X509_free(x);
    return rc;
}

static int parse_certs(cfg_ctx *c, const yn_node *ctc, cfg_tls_common *t)
{
    const yn_node *seq = cfg_get(ctc, "tls_certificates");
    if (!seq)
        return 0;
    size_t m = cfg_push(c, "tls_certificates"), n;
    int rc = cfg_expect_seq(c, seq, &n);
    int types[16] = {0};
    if (!rc && n > 16)
        rc = cfg_err(c, seq, "too many certificates (at most 16)");
    if (!rc && n && !(t->certs = calloc(n, sizeof *t->certs)))
        rc = cfg_err(c, seq, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        size_t mi = cfg_push_idx(c, i);
        t->n_certs++;
        rc = parse_cert(c, seq->items[i], &t->certs[i], &types[i]);
        for (size_t j = 0; !rc && j < i; j++)
            if (types[j] == types[i])
                rc = cfg_err(c, seq->items[i], "at most one certificate of a given key type "
                                               "may be specified (same type as "
                                               "tls_certificates[%zu])", j);
        cfg_pop(c, mi);
    }
    cfg_pop(c, m);
    return rc;
}

/* ---- validation_context ---- */

static int parse_string_matcher(cfg_ctx *c, const yn_node *n, cfg_san_matcher *s)
{
    static const char *const h[] = {"exact", "prefix", "suffix", "contains", "ignore_case",
                                    NULL};
    static const char *const u[] = {"safe_regex", "custom", NULL};
    static const cfg_fields f = {h, NULL, u};
    static const char *const kinds[] = {"exact", "prefix", "suffix", "contains"};
    int rc;
    if ((rc = cfg_check_map(c, n, &f)) != 0 ||
        (rc = cfg_get_bool(c, n, "ignore_case", &s->ignore_case)) != 0)
        return rc;
    int set = -1;
    for (int i = 0; i < 4; i++) {
        if (!cfg_get(n, kinds[i]))
            continue;
        if (set >= 0)
            return cfg_err(c, n, "only one of exact, prefix, suffix, contains may be set");
        set = i;
    }
    if (set < 0)
        return cfg_err(c, n, "one of exact, prefix, suffix, contains must be set");
    s->kind = (cfg_str_match_kind)set;
    return cfg_get_str(c, n, kinds[set], true, &s->value);
}

static int parse_sans(cfg_ctx *c, const yn_node *vc, cfg_tls_validation *v)
{
    static const char *const h[] = {"san_type", "matcher", NULL};
    static const char *const u[] = {"oid", NULL};
    static const cfg_fields f = {h, NULL, u};
    static const char *const types_known[] = {"SAN_TYPE_UNSPECIFIED", "EMAIL", "DNS", "URI",
                                              "IP_ADDRESS", "OTHER_NAME", NULL};
    static const char *const types_sup[] = {"EMAIL", "DNS", "URI", "IP_ADDRESS", NULL};
    static const cfg_san_type types_map[] = {CFG_SAN_EMAIL, CFG_SAN_DNS, CFG_SAN_URI,
                                             CFG_SAN_IP};
    const yn_node *seq = cfg_get(vc, "match_typed_subject_alt_names");
    if (!seq)
        return 0;
    size_t m = cfg_push(c, "match_typed_subject_alt_names"), n;
    int rc = cfg_expect_seq(c, seq, &n);
    if (!rc && n && !(v->san = calloc(n, sizeof *v->san)))
        rc = cfg_err(c, seq, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        size_t mi = cfg_push_idx(c, i);
        const yn_node *e = seq->items[i];
        int t = -1;
        v->n_san++;
        if ((rc = cfg_check_map(c, e, &f)) == 0 &&
            (rc = cfg_get_enum(c, e, "san_type", types_known, types_sup, &t)) == 0) {
            if (t < 0) {
                rc = cfg_err(c, e, "missing required field 'san_type'");
            } else {
                v->san[i].type = types_map[t];
                const yn_node *mt = cfg_get(e, "matcher");
                if (!mt) {
                    rc = cfg_err(c, e, "missing required field 'matcher'");
                } else {
                    size_t mm = cfg_push(c, "matcher");
                    rc = parse_string_matcher(c, mt, &v->san[i]);
                    cfg_pop(c, mm);
                }
            }
        }
        cfg_pop(c, mi);
    }
    cfg_pop(c, m);
    return rc;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = tolower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* verify_certificate_spki (base64 of 32 bytes) or verify_certificate_hash
 * (64 hex digits, optionally colon-separated). */
static int parse_pins(cfg_ctx *c, const yn_node *vc, const char *key, bool b64,
                      uint8_t (**out)[32], size_t *nout)
{
    char **v = NULL;
    size_t n = 0;
    int rc = get_strv(c, vc, key, &v, &n);
    if (!rc && n && !(*out = calloc(n, 32)))
        rc = cfg_err(c, vc, "out of memory");
    const yn_node *seq = cfg_get(vc, key);
    for (size_t i = 0; i < n && !rc; i++) {
        uint8_t *d = (*out)[i];
        bool ok = true;
        if (b64) {
            unsigned char tmp[64];
            size_t l = strlen(v[i]);
            ok = l == 44 && EVP_DecodeBlock(tmp, (unsigned char *)v[i], 44) == 33;
            if (ok)
                memcpy(d, tmp, 32);
        } else {
            size_t k = 0;
            for (const char *p = v[i]; *p && ok; p++) {
                if (*p == ':')
                    continue;
                int hi = hexval((unsigned char)p[0]), lo = p[1] ? hexval((unsigned char)p[1]) : -1;
                if (hi < 0 || lo < 0 || k >= 32)
                    ok = false;
                else
                    d[k++] = (uint8_t)(hi << 4 | lo);
                p++;
            }
            ok = ok && k == 32;
        }
        if (!ok) {
            size_t m = cfg_push(c, key), mi = cfg_push_idx(c, i);
            rc = cfg_err(c, seq->items[i], b64 ? "invalid SPKI pin (expected the base64 "
                                                 "SHA-256 of the SubjectPublicKeyInfo)"
                                               : "invalid certificate hash (expected a "
                                                 "hex SHA-256)");
            cfg_pop(c, mi);
            cfg_pop(c, m);
        }
    }
    if (!rc)
        *nout = n;
    free_strv(v, n);
    return rc;
}

static int parse_validation(cfg_ctx *c, const yn_node *vc, cfg_tls_validation *v)
{
    static const char *const h[] = {"trusted_ca", "match_typed_subject_alt_names",
                                    "verify_certificate_spki", "verify_certificate_hash",
                                    NULL};
    static const char *const u[] = {
        "match_subject_alt_names", "crl", "allow_expired_certificate",
        "trust_chain_verification", "custom_validator_config", "only_verify_leaf_cert_crl",
        "max_verify_depth", "watched_directory", "ca_certificate_provider_instance",
        "system_root_certs", "auto_sni_san_validation", NULL};
    static const cfg_fields f = {h, NULL, u};
    int rc;
    size_t len;
    if ((rc = cfg_check_map(c, vc, &f)) != 0)
        return rc;
    rc = get_datasource(c, vc, "trusted_ca", false, &v->trusted_ca_pem, &len);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        /* At least one certificate must parse. */
        BIO *b = BIO_new_mem_buf(v->trusted_ca_pem, -1);
        X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        if (!x) {
            char buf[256];
            openssl_reason(buf, sizeof buf);
            size_t m = cfg_push(c, "trusted_ca");
            rc = cfg_err(c, cfg_get(vc, "trusted_ca"), "failed to load trusted CA "
                                                       "certificates: %s", buf);
            cfg_pop(c, m);
            return rc;
        }
        X509_free(x);
    }
    if ((rc = parse_sans(c, vc, v)) != 0 ||
        (rc = parse_pins(c, vc, "verify_certificate_spki", true, &v->spki, &v->n_spki)) != 0 ||
        (rc = parse_pins(c, vc, "verify_certificate_hash", false, &v->hash, &v->n_hash)) != 0)
        return rc;
    if (!v->trusted_ca_pem && v->n_san)
        return cfg_err(c, cfg_key_node(vc, "match_typed_subject_alt_names"),
                       "SAN-based verification of peer certificates without trusted CA "
                       "is insecure and not allowed");
    return 0;
}

/* ---- common_tls_context ---- */

static int parse_common(cfg_ctx *c, const yn_node *n, cfg_tls_common *t, bool server)
{
    static const char *const h[] = {"tls_params", "tls_certificates", "validation_context",
                                    "alpn_protocols", NULL};
    static const char *const u[] = {
        "tls_certificate_sds_secret_configs", "tls_certificate_provider_instance",
        "custom_tls_certificate_selector", "tls_certificate_certificate_provider",
        "tls_certificate_certificate_provider_instance", "validation_context_sds_secret_config",
        "combined_validation_context", "validation_context_certificate_provider",
        "validation_context_certificate_provider_instance", "custom_handshaker", "key_log",
        NULL};
    static const cfg_fields f = {h, NULL, u};
    t->min_version = CFG_TLS_V1_2;
    t->max_version = server ? CFG_TLS_V1_3 : CFG_TLS_V1_2;
    if (!n)
        return 0;
    int rc;
    if ((rc = cfg_check_map(c, n, &f)) != 0 || (rc = parse_certs(c, n, t)) != 0 ||
        (rc = get_strv(c, n, "alpn_protocols", &t->alpn, &t->n_alpn)) != 0)
        return rc;
    for (size_t i = 0; i < t->n_alpn; i++) {
        size_t l = strlen(t->alpn[i]);
        if (l == 0 || l > 255) {
            size_t m = cfg_push(c, "alpn_protocols"), mi = cfg_push_idx(c, i);
            rc = cfg_err(c, cfg_get(n, "alpn_protocols")->items[i],
                         "invalid ALPN protocol (1 to 255 bytes)");
            cfg_pop(c, mi);
            cfg_pop(c, m);
            return rc;
        }
    }
    const yn_node *p = cfg_get(n, "tls_params");
    if (p) {
        size_t m = cfg_push(c, "tls_params");
        rc = parse_tls_params(c, p, t, server);
        cfg_pop(c, m);
        if (rc)
            return rc;
    }
    const yn_node *vc = cfg_get(n, "validation_context");
    if (vc) {
        size_t m = cfg_push(c, "validation_context");
        t->has_validation = true;
        rc = parse_validation(c, vc, &t->validation);
        cfg_pop(c, m);
    }
    return rc;
}

/* ---- DownstreamTlsContext / UpstreamTlsContext ---- */

static int parse_ticket_keys(cfg_ctx *c, const yn_node *stk, cfg_tls_server *t)
{
    static const char *const h[] = {"keys", NULL};
    static const cfg_fields f = {h, NULL, NULL};
    int rc;
    if ((rc = cfg_check_map(c, stk, &f)) != 0)
        return rc;
    const yn_node *seq = cfg_get(stk, "keys");
    size_t m = cfg_push(c, "keys"), n = 0;
    if (!seq)
        rc = cfg_err(c, stk, "missing required field 'keys'");
    else
        rc = cfg_expect_seq(c, seq, &n);
    if (!rc && n == 0)
        rc = cfg_err(c, seq, "must contain at least one key");
    if (!rc && !(t->ticket_keys = calloc(n, 80)))
        rc = cfg_err(c, seq, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        size_t mi = cfg_push_idx(c, i);
        const yn_node *ip = seq->items[i];
        char *data = NULL;
        size_t len = 0;
        rc = parse_ds(c, ip, &data, &len);
        if (!rc && len != 80)
            rc = cfg_err(c, ip, "session ticket key must be 80 bytes (got %zu)", len);
        if (!rc) {
            memcpy(t->ticket_keys + 80 * i, data, 80);
            t->n_ticket_keys++;
        }
        if (data) {
            OPENSSL_cleanse(data, len);
            free(data);
        }
        cfg_pop(c, mi);
    }
    cfg_pop(c, m);
    return rc;
}

static int parse_downstream(cfg_ctx *c, const yn_node *tc, cfg_tls_server *t)
{
    static const char *const h[] = {"@type", "common_tls_context", "require_client_certificate",
                                    "session_ticket_keys", "disable_stateless_session_resumption",
                                    NULL};
    static const char *const u[] = {"session_ticket_keys_sds_secret_config", "session_timeout",
                                    "ocsp_staple_policy", "full_scan_certs_on_sni_mismatch",
                                    "prefer_client_ciphers", "require_sni",
                                    "disable_stateful_session_resumption", "require_signed_certificate_timestamp",
                                    NULL};
    static const cfg_fields f = {h, NULL, u};
    int rc;
    if ((rc = check_typed(c, tc, DOWNSTREAM_TYPE)) != 0 || (rc = cfg_check_map(c, tc, &f)) != 0)
        return rc;
    const yn_node *ctc = cfg_get(tc, "common_tls_context");
    size_t m = cfg_push(c, "common_tls_context");
    rc = parse_common(c, ctc, &t->common, true);
    if (!rc && t->common.n_certs == 0)
        rc = cfg_err(c, ctc ? ctc : tc, "no TLS certificates found for the server context "
                                        "(tls_certificates is required)");
    cfg_pop(c, m);
    if (rc || (rc = cfg_get_bool(c, tc, "require_client_certificate",
                                 &t->require_client_certificate)) != 0 ||
        (rc = cfg_get_bool(c, tc, "disable_stateless_session_resumption",
                           &t->disable_stateless_session_resumption)) != 0)
        return rc;
    if (t->require_client_certificate && !t->common.validation.trusted_ca_pem)
        return cfg_err(c, cfg_key_node(tc, "require_client_certificate"),
                       "require_client_certificate needs "
                       "common_tls_context.validation_context.trusted_ca");
    const yn_node *stk = cfg_get(tc, "session_ticket_keys");
    if (stk) {
        m = cfg_push(c, "session_ticket_keys");
        rc = parse_ticket_keys(c, stk, t);
        cfg_pop(c, m);
    }
    return rc;
}

static int parse_upstream(cfg_ctx *c, const yn_node *tc, cfg_tls_client *t)
{
    static const char *const h[] = {"@type", "common_tls_context", "sni", "allow_renegotiation",
                                    "max_session_keys", NULL};
    static const char *const u[] = {"enforce_rsa_key_usage", "auto_host_sni",
                                    "auto_sni_san_validation", NULL};
    static const cfg_fields f = {h, NULL, u};
    int rc;
    bool reneg = false;
    if ((rc = check_typed(c, tc, UPSTREAM_TYPE)) != 0 || (rc = cfg_check_map(c, tc, &f)) != 0 ||
        (rc = cfg_get_str(c, tc, "sni", false, &t->sni)) != 0 ||
        (rc = cfg_get_bool(c, tc, "allow_renegotiation", &reneg)) != 0)
        return rc;
    /* Envoy keeps up to max_session_keys (default 1) sessions to resume;
     * 0 turns upstream resumption off.  pilotfish keeps one per host. */
    t->max_session_keys = 1;
    if ((rc = cfg_get_u32(c, tc, "max_session_keys", false, 0, 4294967295u,
                          &t->max_session_keys)) != 0)
        return rc;
    if (reneg)
        return cfg_err(c, cfg_get(tc, "allow_renegotiation"),
                       "not supported yet: allow_renegotiation: true");
    if (t->sni && strlen(t->sni) > 255)
        return cfg_err(c, cfg_get(tc, "sni"), "SNI too long");
    const yn_node *ctc = cfg_get(tc, "common_tls_context");
    size_t m = cfg_push(c, "common_tls_context");
    rc = parse_common(c, ctc, &t->common, false);
    cfg_pop(c, m);
    return rc;
}

/* transport_socket {name, typed_config}: *is_tls false for raw_buffer. */
static int parse_transport_socket(cfg_ctx *c, const yn_node *ts, const char *want_type,
                                  const yn_node **tc_out)
{
    static const char *const h[] = {"name", "typed_config", NULL};
    static const cfg_fields f = {h, NULL, NULL};
    char *name = NULL;
    int rc;
    *tc_out = NULL;
    if ((rc = cfg_check_map(c, ts, &f)) != 0 ||
        (rc = cfg_get_str(c, ts, "name", true, &name)) != 0) {
        free(name);
        return rc;
    }
    const yn_node *tc = cfg_get(ts, "typed_config");
    const yn_node *type = tc ? cfg_get(tc, "@type") : NULL;
    bool raw = !strcmp(name, RAW_SOCKET_NAME) || !strcmp(name, "raw_buffer") ||
               (type && type->kind == YN_SCALAR && !strcmp(type->str, RAW_TYPE));
    if (!raw && strcmp(name, TLS_SOCKET_NAME) != 0 && strcmp(name, "tls") != 0 && !type) {
        size_t m = cfg_push(c, "name");
        rc = cfg_err(c, cfg_get(ts, "name"), "not supported yet: transport socket '%s' "
                                             "(supported: %s, %s)", name, TLS_SOCKET_NAME,
                     RAW_SOCKET_NAME);
        cfg_pop(c, m);
    } else if (!raw && !tc) {
        rc = cfg_err(c, ts, "missing required field 'typed_config' (expected @type %s)",
                     want_type);
    } else if (raw && tc) {
        size_t m = cfg_push(c, "typed_config");
        rc = check_typed(c, tc, RAW_TYPE);
        cfg_pop(c, m);
    } else if (!raw) {
        *tc_out = tc;
    }
    free(name);
    return rc;
}

int cfg_parse_downstream_tls(cfg_ctx *c, const yn_node *ts, cfg_tls_server **out)
{
    const yn_node *tc;
    int rc = parse_transport_socket(c, ts, DOWNSTREAM_TYPE, &tc);
    if (rc || !tc)
        return rc;
    cfg_tls_server *t = calloc(1, sizeof *t);
    if (!t)
        return cfg_err(c, ts, "out of memory");
    *out = t;
    size_t m = cfg_push(c, "typed_config");
    rc = parse_downstream(c, tc, t);
    cfg_pop(c, m);
    return rc;
}

int cfg_parse_upstream_tls(cfg_ctx *c, const yn_node *ts, cfg_tls_client **out)
{
    const yn_node *tc;
    int rc = parse_transport_socket(c, ts, UPSTREAM_TYPE, &tc);
    if (rc || !tc)
        return rc;
    cfg_tls_client *t = calloc(1, sizeof *t);
    if (!t)
        return cfg_err(c, ts, "out of memory");
    *out = t;
    size_t m = cfg_push(c, "typed_config");
    rc = parse_upstream(c, tc, t);
    cfg_pop(c, m);
    return rc;
}

/* ---- filter_chain_match, listener_filters ---- */

static int check_server_name(cfg_ctx *c, const yn_node *n, char *s)
{
    for (char *p = s; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    const char *star = strchr(s, '*');
    if (!s[0] || (star && (star != s || s[1] != '.' || strchr(s + 1, '*') || !s[2])))
        return cfg_err(c, n, "invalid server name '%s' (exact name or \"*.suffix\")", s);
    return 0;
}

int cfg_parse_filter_chain_match(cfg_ctx *c, const yn_node *n, cfg_filter_chain_match *out)
{
    static const char *const h[] = {"server_names", "transport_protocol",
                                    "application_protocols", NULL};
    static const char *const u[] = {"destination_port", "prefix_ranges", "address_suffix",
                                    "suffix_len", "direct_source_prefix_ranges", "source_type",
                                    "source_prefix_ranges", "source_ports", NULL};
    static const cfg_fields f = {h, NULL, u};
    int rc;
    char *tp = NULL;
    if ((rc = cfg_check_map(c, n, &f)) != 0 ||
        (rc = get_strv(c, n, "server_names", &out->server_names, &out->n_server_names)) != 0 ||
        (rc = get_strv(c, n, "application_protocols", &out->application_protocols,
                       &out->n_application_protocols)) != 0 ||
        (rc = cfg_get_str(c, n, "transport_protocol", false, &tp)) != 0)
        return rc;
    for (size_t i = 0; i < out->n_server_names && !rc; i++) {
        size_t m = cfg_push(c, "server_names"), mi = cfg_push_idx(c, i);
        rc = check_server_name(c, cfg_get(n, "server_names")->items[i], out->server_names[i]);
        cfg_pop(c, mi);
        cfg_pop(c, m);
    }
    if (!rc && tp && tp[0]) {
        if (!strcmp(tp, "tls")) {
            out->transport_protocol = CFG_TP_TLS;
        } else if (!strcmp(tp, "raw_buffer")) {
            out->transport_protocol = CFG_TP_RAW_BUFFER;
        } else {
            size_t m = cfg_push(c, "transport_protocol");
            rc = cfg_err(c, cfg_get(n, "transport_protocol"),
                         "not supported yet: transport_protocol '%s' (supported: tls, "
                         "raw_buffer)", tp);
            cfg_pop(c, m);
        }
    }
    free(tp);
    return rc;
}

int cfg_parse_listener_filters(cfg_ctx *c, const yn_node *seq, bool *tls_inspector)
{
    static const char *const h[] = {"name", "typed_config", NULL};
    static const char *const u[] = {"config_discovery", "filter_disabled", NULL};
    static const cfg_fields f = {h, NULL, u};
    static const char *const ti_h[] = {"@type", NULL};
    static const char *const ti_ig[] = {"enable_ja3_fingerprinting", "enable_ja4_fingerprinting",
                                        "initial_read_buffer_size", NULL};
    static const cfg_fields tif = {ti_h, ti_ig, NULL};
    size_t n;
    int rc = cfg_expect_seq(c, seq, &n);
    for (size_t i = 0; i < n && !rc; i++) {
        size_t mi = cfg_push_idx(c, i);
        const yn_node *e = seq->items[i];
        char *name = NULL;
        if ((rc = cfg_check_map(c, e, &f)) == 0 &&
            (rc = cfg_get_str(c, e, "name", true, &name)) == 0) {
            const yn_node *tc = cfg_get(e, "typed_config");
            const yn_node *type = tc ? cfg_get(tc, "@type") : NULL;
            bool is_ti = !strcmp(name, TLS_INSPECTOR_NAME) ||
                         (type && type->kind == YN_SCALAR && !strcmp(type->str, TLS_INSPECTOR_TYPE));
            if (!is_ti) {
                size_t mn = cfg_push(c, "name");
                rc = cfg_err(c, cfg_get(e, "name"), "not supported yet: listener filter '%s' "
                                                    "(supported: %s)", name, TLS_INSPECTOR_NAME);
                cfg_pop(c, mn);
            } else if (tc) {
                size_t mt = cfg_push(c, "typed_config");
                if ((rc = check_typed(c, tc, TLS_INSPECTOR_TYPE)) == 0)
                    rc = cfg_check_map(c, tc, &tif);
                cfg_pop(c, mt);
            }
            if (!rc)
                *tls_inspector = true;
        }
        free(name);
        cfg_pop(c, mi);
    }
    return rc;
}
