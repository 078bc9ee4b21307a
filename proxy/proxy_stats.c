#include "proxy/proxy_stats.h"

#include <stdio.h>
#include <string.h>

#include "config/cluster_config.h"
#include "config/tls_config.h"
#include "proxy/tls.h"
#include "filters/filter.h"
#include <stdlib.h>

#define NAME_MAX_LEN 512

typedef stat_id (*register_fn)(stats_store *, const char *);

static stat_id reg(stats_store *st, register_fn fn, const char *prefix, const char *name)
{
    char full[NAME_MAX_LEN * 2];
    snprintf(full, sizeof full, "%s.%s", prefix, name);
    return fn(st, full);
}

static void register_xx(stats_store *st, const char *prefix, const char *stem, stat_id out[5])
{
    char name[64];
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "%s_%dxx", stem, i + 1);
        out[i] = reg(st, stats_counter, prefix, name);
    }
}

/* <scope>.ssl.*: the fixed names up front, ciphers and curves as lazy
 * counters (shown once used, as Envoy creates them on first use). */
static void register_tls(stats_store *st, const char *scope, pf_tls_stats *ts)
{
    static const char *const versions[PF_TLS_N_VERSIONS] = {"TLSv1", "TLSv1.1", "TLSv1.2",
                                                            "TLSv1.3"};
    static const char *const curves[PF_TLS_N_CURVES] = {"X25519", "P-256", "P-384", "P-521",
                                                        "X448"};
    char p[NAME_MAX_LEN], name[128];
    snprintf(p, sizeof p, "%s.ssl", scope);
    ts->registered = true;
    ts->handshake = reg(st, stats_counter, p, "handshake");
    ts->connection_error = reg(st, stats_counter, p, "connection_error");
    ts->session_reused = reg(st, stats_counter, p, "session_reused");
    ts->no_certificate = reg(st, stats_counter, p, "no_certificate");
    ts->fail_verify_no_cert = reg(st, stats_counter, p, "fail_verify_no_cert");
    ts->fail_verify_error = reg(st, stats_counter, p, "fail_verify_error");
    ts->fail_verify_san = reg(st, stats_counter, p, "fail_verify_san");
    ts->fail_verify_cert_hash = reg(st, stats_counter, p, "fail_verify_cert_hash");
    for (int i = 0; i < PF_TLS_N_VERSIONS; i++) {
        snprintf(name, sizeof name, "versions.%s", versions[i]);
        ts->versions[i] = reg(st, stats_counter_lazy, p, name);
    }
    for (int i = 0; i < PF_TLS_N_CURVES; i++) {
        snprintf(name, sizeof name, "curves.%s", curves[i]);
        ts->curves[i] = reg(st, stats_counter_lazy, p, name);
    }
    size_t n;
    const char *const *ciphers = pf_tls_cipher_names(&n);
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "ciphers.%s", ciphers[i]);
        stat_id id = reg(st, stats_counter_lazy, p, name);
        if (i == 0)
            ts->ciphers_base = id;
    }
}

static void register_listener(stats_store *st, const cfg_listener *l, const cfg_hcm *hcm,
                              pf_listener_stats *ls)
{
    char p[NAME_MAX_LEN];
    /* Envoy names a listener's stats by its address: listener.0.0.0.0_10000.* */
    snprintf(p, sizeof p, "listener.%s_%u", l->address.address, l->address.port);
    ls->l_cx_total = reg(st, stats_counter, p, "downstream_cx_total");
    ls->l_cx_active = reg(st, stats_gauge, p, "downstream_cx_active");
    ls->no_filter_chain_match = reg(st, stats_counter, p, "no_filter_chain_match");
    for (size_t i = 0; i < l->n_chains; i++)
        if (l->chains[i].tls) {
            register_tls(st, p, &ls->ssl);
            break;
        }

    snprintf(p, sizeof p, "http.%s", hcm->stat_prefix);
    ls->cx_total = reg(st, stats_counter, p, "downstream_cx_total");
    ls->cx_http1_total = reg(st, stats_counter, p, "downstream_cx_http1_total");
    ls->cx_active = reg(st, stats_gauge, p, "downstream_cx_active");
    ls->cx_length_ms = reg(st, stats_histogram, p, "downstream_cx_length_ms");
    ls->cx_protocol_error = reg(st, stats_counter, p, "downstream_cx_protocol_error");
    ls->rq_total = reg(st, stats_counter, p, "downstream_rq_total");
    ls->rq_http1_total = reg(st, stats_counter, p, "downstream_rq_http1_total");
    ls->rq_active = reg(st, stats_gauge, p, "downstream_rq_active");
    ls->rq_time = reg(st, stats_histogram, p, "downstream_rq_time");
    register_xx(st, p, "downstream_rq", ls->rq_xx);
    ls->rq_timeout = reg(st, stats_counter, p, "downstream_rq_timeout");
    ls->rx_bytes_total = reg(st, stats_counter, p, "downstream_cx_rx_bytes_total");
    ls->tx_bytes_total = reg(st, stats_counter, p, "downstream_cx_tx_bytes_total");
    ls->no_route = reg(st, stats_counter, p, "no_route");
    ls->upstream_rq_header_size_431 = reg(st, stats_counter, p, "downstream_rq_too_large");
    ls->cx_http2_total = reg(st, stats_counter, p, "downstream_cx_http2_total");
    ls->rq_http2_total = reg(st, stats_counter, p, "downstream_rq_http2_total");
    ls->rq_idle_timeout = reg(st, stats_counter, p, "downstream_rq_idle_timeout");
    ls->rq_too_many_premature_resets =
        reg(st, stats_counter, p, "downstream_rq_too_many_premature_resets");
    ls->rq_header_timeout = reg(st, stats_counter, p, "downstream_rq_header_timeout");
    ls->rq_max_duration_reached = reg(st, stats_counter, p, "downstream_rq_max_duration_reached");
    ls->cx_idle_timeout = reg(st, stats_counter, p, "downstream_cx_idle_timeout");
    ls->cx_max_duration_reached = reg(st, stats_counter, p, "downstream_cx_max_duration_reached");
}

/* http2.*: Envoy roots the downstream HTTP/2 codec stats there. */
static void register_codec_hdrs(stats_store *st, const char *p, pf_codec_hdr_stats *h)
{
    h->dropped_underscores = reg(st, stats_counter, p, "dropped_headers_with_underscores");
    h->rejected_underscores =
        reg(st, stats_counter, p, "requests_rejected_with_underscores_in_headers");
}

static void register_http2(stats_store *st, pf_http2_stats *h)
{
    static const char p[] = "http2";
    h->header_overflow = reg(st, stats_counter, p, "header_overflow");
    h->headers_cb_no_stream = reg(st, stats_counter, p, "headers_cb_no_stream");
    h->inbound_empty_frames_flood = reg(st, stats_counter, p, "inbound_empty_frames_flood");
    h->inbound_priority_frames_flood = reg(st, stats_counter, p, "inbound_priority_frames_flood");
    h->inbound_window_update_frames_flood =
        reg(st, stats_counter, p, "inbound_window_update_frames_flood");
    h->outbound_control_flood = reg(st, stats_counter, p, "outbound_control_flood");
    h->outbound_flood = reg(st, stats_counter, p, "outbound_flood");
    h->rx_messaging_error = reg(st, stats_counter, p, "rx_messaging_error");
    h->rx_reset = reg(st, stats_counter, p, "rx_reset");
    h->too_many_header_frames = reg(st, stats_counter, p, "too_many_header_frames");
    h->trailers = reg(st, stats_counter, p, "trailers");
    h->tx_reset = reg(st, stats_counter, p, "tx_reset");
    h->goaway_sent = reg(st, stats_counter, p, "goaway_sent");
    h->streams_active = reg(st, stats_gauge, p, "streams_active");
}

static void register_breakers(stats_store *st, const char *p, const cfg_cluster *c,
                              pf_cluster_stats *cs)
{
    static const char *const prio[2] = {"default", "high"};
    static const char *const open[4] = {"cx_open", "rq_pending_open", "rq_open",
                                        "rq_retry_open"};
    static const char *const rem[4] = {"remaining_cx", "remaining_pending", "remaining_rq",
                                       "remaining_retries"};
    const cfg_cluster_lb *lb = c->lb ? c->lb : &cfg_cluster_lb_defaults;
    for (int i = 0; i < 2; i++) {
        char cb[NAME_MAX_LEN + 32];
        snprintf(cb, sizeof cb, "%s.circuit_breakers.%s", p, prio[i]);
        cs->cb_track[i] = lb->cb[i].track_remaining;
        for (int j = 0; j < 4; j++) {
            cs->cb_open[i][j] = reg(st, stats_gauge, cb, open[j]);
            if (cs->cb_track[i])
                cs->cb_remaining[i][j] = reg(st, stats_gauge, cb, rem[j]);
        }
    }
}

static void register_cluster(stats_store *st, const cfg_cluster *c, pf_cluster_stats *cs)
{
    char p[NAME_MAX_LEN], name[64];
    snprintf(p, sizeof p, "cluster.%s", c->name);
    cs->rq_total = reg(st, stats_counter, p, "upstream_rq_total");
    cs->rq_active = reg(st, stats_gauge, p, "upstream_rq_active");
    cs->rq_time = reg(st, stats_histogram, p, "upstream_rq_time");
    register_xx(st, p, "upstream_rq", cs->rq_xx);
    /* Per-code counters (upstream_rq_200 ...) are registered for every code
     * so workers never register names; output hides them until used. */
    for (int code = 100; code < 600; code++) {
        snprintf(name, sizeof name, "upstream_rq_%d", code);
        stat_id id = reg(st, stats_counter_lazy, p, name);
        if (code == 100)
            cs->rq_code_base = id;
    }
    cs->cx_total = reg(st, stats_counter, p, "upstream_cx_total");
    cs->cx_http1_total = reg(st, stats_counter, p, "upstream_cx_http1_total");
    cs->cx_http2_total = reg(st, stats_counter, p, "upstream_cx_http2_total");
    cs->cx_active = reg(st, stats_gauge, p, "upstream_cx_active");
    cs->cx_connect_fail = reg(st, stats_counter, p, "upstream_cx_connect_fail");
    cs->cx_connect_timeout = reg(st, stats_counter, p, "upstream_cx_connect_timeout");
    cs->cx_connect_ms = reg(st, stats_histogram, p, "upstream_cx_connect_ms");
    cs->cx_destroy = reg(st, stats_counter, p, "upstream_cx_destroy");
    cs->cx_destroy_remote = reg(st, stats_counter, p, "upstream_cx_destroy_remote");
    cs->cx_destroy_local = reg(st, stats_counter, p, "upstream_cx_destroy_local");
    cs->rq_timeout = reg(st, stats_counter, p, "upstream_rq_timeout");
    cs->rq_retry = reg(st, stats_counter, p, "upstream_rq_retry");
    cs->rq_retry_success = reg(st, stats_counter, p, "upstream_rq_retry_success");
    cs->rq_retry_limit_exceeded = reg(st, stats_counter, p, "upstream_rq_retry_limit_exceeded");
    cs->rq_per_try_timeout = reg(st, stats_counter, p, "upstream_rq_per_try_timeout");
    cs->rq_pending_total = reg(st, stats_counter, p, "upstream_rq_pending_total");
    cs->rq_rx_reset = reg(st, stats_counter, p, "upstream_rq_rx_reset");
    cs->rq_tx_reset = reg(st, stats_counter, p, "upstream_rq_tx_reset");
    cs->cx_rx_bytes_total = reg(st, stats_counter, p, "upstream_cx_rx_bytes_total");
    cs->cx_tx_bytes_total = reg(st, stats_counter, p, "upstream_cx_tx_bytes_total");
    cs->cx_protocol_error = reg(st, stats_counter, p, "upstream_cx_protocol_error");
    cs->membership_healthy = reg(st, stats_gauge, p, "membership_healthy");
    cs->membership_total = reg(st, stats_gauge, p, "membership_total");
    cs->membership_change = reg(st, stats_counter, p, "membership_change");
    cs->no_healthy_host = reg(st, stats_counter, p, "upstream_cx_none_healthy");
    cs->lb_healthy_panic = reg(st, stats_counter, p, "lb_healthy_panic");
    if (c->tls)
        register_tls(st, p, &cs->ssl);
    cs->rq_pending_overflow = reg(st, stats_counter, p, "upstream_rq_pending_overflow");
    cs->rq_pending_active = reg(st, stats_gauge, p, "upstream_rq_pending_active");
    cs->cx_overflow = reg(st, stats_counter, p, "upstream_cx_overflow");
    cs->rq_retry_overflow = reg(st, stats_counter, p, "upstream_rq_retry_overflow");
    cs->retry_or_shadow_abandoned = reg(st, stats_counter, p, "retry_or_shadow_abandoned");
    register_breakers(st, p, c, cs);
    if (c->lb && c->lb->n_hcs) {
        char h[NAME_MAX_LEN + 16];
        snprintf(h, sizeof h, "%s.health_check", p);
        cs->has_hc = true;
        cs->hc_attempt = reg(st, stats_counter, h, "attempt");
        cs->hc_success = reg(st, stats_counter, h, "success");
        cs->hc_failure = reg(st, stats_counter, h, "failure");
        cs->hc_passive_failure = reg(st, stats_counter, h, "passive_failure");
        cs->hc_network_failure = reg(st, stats_counter, h, "network_failure");
        cs->hc_verify_cluster = reg(st, stats_counter, h, "verify_cluster");
        cs->hc_healthy = reg(st, stats_gauge, h, "healthy");
        cs->hc_degraded = reg(st, stats_gauge, h, "degraded");
    }
    if (c->lb && c->lb->outlier.enabled) {
        char o[NAME_MAX_LEN + 24];
        snprintf(o, sizeof o, "%s.outlier_detection", p);
        cs->has_od = true;
        cs->od_ejections_active = reg(st, stats_gauge, o, "ejections_active");
        cs->od_ejections_total = reg(st, stats_counter, o, "ejections_total");
        cs->od_ejections_overflow = reg(st, stats_counter, o, "ejections_overflow");
        cs->od_enforced_total = reg(st, stats_counter, o, "ejections_enforced_total");
        cs->od_enforced_5xx = reg(st, stats_counter, o, "ejections_enforced_consecutive_5xx");
        cs->od_detected_5xx = reg(st, stats_counter, o, "ejections_detected_consecutive_5xx");
        cs->od_ejections_consecutive_5xx = reg(st, stats_counter, o, "ejections_consecutive_5xx");
        cs->od_enforced_gw =
            reg(st, stats_counter, o, "ejections_enforced_consecutive_gateway_failure");
        cs->od_detected_gw =
            reg(st, stats_counter, o, "ejections_detected_consecutive_gateway_failure");
        cs->od_enforced_local =
            reg(st, stats_counter, o, "ejections_enforced_consecutive_local_origin_failure");
        cs->od_detected_local =
            reg(st, stats_counter, o, "ejections_detected_consecutive_local_origin_failure");
    }
}

pf_proxy_stats *pf_proxy_stats_new(stats_store *st, const cfg_bootstrap *cfg)
{
    pf_proxy_stats *ps = calloc(1, sizeof *ps);
    if (!ps)
        goto fail;
    ps->listeners = calloc(cfg->n_listeners + 1, sizeof *ps->listeners);
    ps->chains = calloc(cfg->n_hcms + 1, sizeof *ps->chains);
    ps->clusters = calloc(cfg->n_clusters + 1, sizeof *ps->clusters);
    ps->n_chains = cfg->n_hcms;
    if (!ps->listeners || !ps->clusters || !ps->chains)
        goto fail;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const cfg_listener *l = &cfg->listeners[i];
        for (size_t j = 0; j < l->n_chains; j++) {
            register_listener(st, l, &l->chains[j].hcm, &ps->chains[l->chains[j].hcm.index]);
            ps->chains[l->chains[j].hcm.index].filter_errors =
                pf_filter_stats_register(st, &l->chains[j].hcm);
            ps->has_lua |= ps->chains[l->chains[j].hcm.index].filter_errors != NULL;
        }
        ps->listeners[i] = ps->chains[l->chains[0].hcm.index];
    }
    for (size_t i = 0; i < cfg->n_clusters; i++)
        register_cluster(st, &cfg->clusters[i], &ps->clusters[i]);
    register_http2(st, &ps->http2);
    register_codec_hdrs(st, "http1", &ps->http1_hdrs);
    register_codec_hdrs(st, "http2", &ps->http2_hdrs);
    pf_server_stats *s = &ps->server;
    s->live = stats_gauge(st, "server.live");
    s->uptime = stats_gauge(st, "server.uptime");
    s->concurrency = stats_gauge(st, "server.concurrency");
    s->memory_allocated = stats_gauge(st, "server.memory_allocated");
    s->memory_heap_size = stats_gauge(st, "server.memory_heap_size");
    s->total_connections = stats_gauge(st, "server.total_connections");
    s->version = stats_gauge(st, "server.version");
    if (ps->has_lua)
        ps->lua_memory = stats_gauge(st, "lua.memory_allocated_bytes");
    return ps;
fail:
    pf_proxy_stats_free(ps);
    return NULL;
}

void pf_proxy_stats_free(pf_proxy_stats *ps)
{
    if (!ps)
        return;
    free(ps->listeners);
    if (ps->chains)
        for (size_t i = 0; i < ps->n_chains; i++)
            free(ps->chains[i].filter_errors);
    free(ps->chains);
    free(ps->clusters);
    free(ps);
}
