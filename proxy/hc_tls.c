#include "proxy/hc_tls.h"

#include "config/tls_config.h"
#include "proxy/tls.h"

SSL *pf_hc_tls_new(const cfg_cluster *cl, size_t ci, const cfg_health_check *hc,
                   pf_tls_fail *fail, void **session_slot)
{
    SSL_CTX *ctx = cl->tls ? pf_tls_cluster_ctx(pf_tls_store_get(), ci) : NULL;
    SSL *ssl = ctx ? pf_tls_mem_new(ctx, false, fail) : NULL;
    if (!ssl)
        return NULL;
    /* The cluster's sni only: auto_sni takes a request's host, and a check
     * has none (Envoy's checkers pass no server name override either). */
    if ((cl->tls->sni && !SSL_set_tlsext_host_name(ssl, cl->tls->sni)) ||
        pf_tls_session_slot(ssl, cl, session_slot) != 0)
        goto bad;
    if (hc->alpn_len) {
        /* tls_options.alpn_protocols: checks offer these instead. */
        if (SSL_set_alpn_protos(ssl, hc->alpn_wire, (unsigned)hc->alpn_len) != 0)
            goto bad;
    } else if (!cl->tls->common.n_alpn) {
        /* No alpn_protocols: offer what the check's codec speaks (a gRPC
         * server may insist on h2), never the h2 + http/1.1 an auto_config
         * cluster's context offers, which could pick a codec the check lacks. */
        static const unsigned char h2[] = "\x02h2", h11[] = "\x08http/1.1";
        int rc = hc->kind == CFG_HC_GRPC   ? SSL_set_alpn_protos(ssl, h2, sizeof h2 - 1)
                 : hc->kind == CFG_HC_HTTP ? SSL_set_alpn_protos(ssl, h11, sizeof h11 - 1)
                                           : SSL_set_alpn_protos(ssl, NULL, 0);
        if (rc != 0)
            goto bad;
    }
    return ssl;
bad:
    SSL_free(ssl);
    return NULL;
}
