/* /config_dump: the loaded bootstrap rendered back as Envoy's
 * BootstrapConfigDump (what pilotfish understood, defaults filled in), and
 * with dynamic_resources the clusters / listeners from the CDS / LDS files as
 * Envoy's ClustersConfigDump / ListenersConfigDump dynamic entries. */
#include <stdio.h>
#include <string.h>

#include "admin/admin_http.h"
#include "config/dynamic_config.h"
#include "config/runtime_config.h"
#include "config/tls_config.h"
#include "proxy/server.h"

#define HCM_TYPE "type.googleapis.com/envoy.extensions.filters.network." \
                 "http_connection_manager.v3.HttpConnectionManager"
#define ROUTER_TYPE "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"

static void dur(sbuf *b, uint64_t ms)
{
    if (ms % 1000)
        sbuf_printf(b, "\"%llu.%03llus\"", (unsigned long long)(ms / 1000),
                    (unsigned long long)(ms % 1000));
    else
        sbuf_printf(b, "\"%llus\"", (unsigned long long)(ms / 1000));
}

static void sockaddr_json(sbuf *b, const cfg_socket_address *a)
{
    sbuf_puts(b, "{\"socket_address\":{\"address\":");
    admin_json_str(b, a->address ? a->address : "");
    sbuf_printf(b, ",\"port_value\":%u}}", a->port);
}

static void route_json(sbuf *b, const cfg_route *r)
{
    sbuf_puts(b, "{");
    if (r->name) {
        sbuf_puts(b, "\"name\":");
        admin_json_str(b, r->name);
        sbuf_puts(b, ",");
    }
    sbuf_puts(b, r->match_kind == CFG_MATCH_PREFIX ? "\"match\":{\"prefix\":"
                                                   : "\"match\":{\"path\":");
    admin_json_str(b, r->match_value ? r->match_value : "");
    sbuf_puts(b, "},");
    if (r->action == CFG_ACTION_DIRECT) {
        sbuf_printf(b, "\"direct_response\":{\"status\":%u", r->direct_status);
        if (r->direct_body) {
            sbuf_puts(b, ",\"body\":{\"inline_string\":");
            /* bodies may hold NULs: print up to the first one */
            admin_json_str(b, r->direct_body);
            sbuf_puts(b, "}");
        }
        sbuf_puts(b, "}}");
        return;
    }
    sbuf_puts(b, "\"route\":{");
    if (r->cluster) {
        sbuf_puts(b, "\"cluster\":");
        admin_json_str(b, r->cluster);
    } else {
        sbuf_puts(b, "\"weighted_clusters\":{\"clusters\":[");
        for (size_t i = 0; i < r->n_weighted; i++) {
            sbuf_puts(b, i ? ",{\"name\":" : "{\"name\":");
            admin_json_str(b, r->weighted[i].name);
            sbuf_printf(b, ",\"weight\":%u}", r->weighted[i].weight);
        }
        sbuf_printf(b, "],\"total_weight\":%u}", r->total_weight);
    }
    sbuf_puts(b, ",\"timeout\":");
    dur(b, r->timeout_ms);
    if (r->prefix_rewrite) {
        sbuf_puts(b, ",\"prefix_rewrite\":");
        admin_json_str(b, r->prefix_rewrite);
    }
    if (r->host_rewrite_literal) {
        sbuf_puts(b, ",\"host_rewrite_literal\":");
        admin_json_str(b, r->host_rewrite_literal);
    }
    sbuf_puts(b, "}}");
}

static void strv_json(sbuf *b, char **v, size_t n)
{
    sbuf_puts(b, "[");
    for (size_t i = 0; i < n; i++) {
        sbuf_puts(b, i ? "," : "");
        admin_json_str(b, v[i]);
    }
    sbuf_puts(b, "]");
}

/* transport_socket without key material (Envoy redacts secrets too). */
static void tls_common_json(sbuf *b, const cfg_tls_common *t)
{
    static const char *const vers[] = {"TLSv1_0", "TLSv1_1", "TLSv1_2", "TLSv1_3"};
    sbuf_printf(b, "\"common_tls_context\":{\"tls_params\":{\"tls_minimum_protocol_version\":"
                   "\"%s\",\"tls_maximum_protocol_version\":\"%s\"}",
                vers[(t->min_version - CFG_TLS_V1_0) & 3], vers[(t->max_version - CFG_TLS_V1_0) & 3]);
    if (t->n_certs) {
        sbuf_puts(b, ",\"tls_certificates\":[");
        for (size_t i = 0; i < t->n_certs; i++)
            sbuf_puts(b, i ? ",{\"private_key\":\"[redacted]\"}" : "{\"private_key\":\"[redacted]\"}");
        sbuf_puts(b, "]");
    }
    if (t->n_alpn) {
        sbuf_puts(b, ",\"alpn_protocols\":");
        strv_json(b, t->alpn, t->n_alpn);
    }
    sbuf_puts(b, "}");
}

static void chain_json(sbuf *b, const cfg_filter_chain *ch, bool match)
{
    static const char *const codecs[] = {"AUTO", "HTTP1", "HTTP2"};
    static const char *const tps[] = {"", "raw_buffer", "tls"};
    const cfg_hcm *h = &ch->hcm;
    sbuf_puts(b, "{");
    if (ch->name) {
        sbuf_puts(b, "\"name\":");
        admin_json_str(b, ch->name);
        sbuf_puts(b, ",");
    }
    const cfg_filter_chain_match *m = ch->match;
    if (match && m && (m->n_server_names || m->transport_protocol || m->n_application_protocols)) {
        sbuf_puts(b, "\"filter_chain_match\":{");
        const char *sep = "";
        if (m->n_server_names) {
            sbuf_puts(b, "\"server_names\":");
            strv_json(b, m->server_names, m->n_server_names);
            sep = ",";
        }
        if (m->transport_protocol) {
            sbuf_printf(b, "%s\"transport_protocol\":\"%s\"", sep, tps[m->transport_protocol]);
            sep = ",";
        }
        if (m->n_application_protocols) {
            sbuf_printf(b, "%s\"application_protocols\":", sep);
            strv_json(b, m->application_protocols, m->n_application_protocols);
        }
        sbuf_puts(b, "},");
    }
    if (ch->tls) {
        sbuf_puts(b, "\"transport_socket\":{\"name\":\"envoy.transport_sockets.tls\","
                     "\"typed_config\":{\"@type\":\"type.googleapis.com/envoy.extensions."
                     "transport_sockets.tls.v3.DownstreamTlsContext\",");
        tls_common_json(b, &ch->tls->common);
        sbuf_printf(b, ",\"require_client_certificate\":%s}},",
                    ch->tls->require_client_certificate ? "true" : "false");
    }
    sbuf_puts(b, "\"filters\":[{\"name\":"
                 "\"envoy.filters.network.http_connection_manager\",\"typed_config\":{"
                 "\"@type\":\"" HCM_TYPE "\",\"stat_prefix\":");
    admin_json_str(b, h->stat_prefix ? h->stat_prefix : "");
    sbuf_printf(b, ",\"codec_type\":\"%s\",\"max_request_headers_kb\":%u,\"route_config\":{",
                codecs[h->codec_type <= CFG_CODEC_HTTP2 ? h->codec_type : 0],
                h->max_request_headers_kb);
    if (h->route_config.name) {
        sbuf_puts(b, "\"name\":");
        admin_json_str(b, h->route_config.name);
        sbuf_puts(b, ",");
    }
    sbuf_puts(b, "\"virtual_hosts\":[");
    for (size_t i = 0; i < h->route_config.n_vhosts; i++) {
        const cfg_virtual_host *v = &h->route_config.vhosts[i];
        sbuf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        admin_json_str(b, v->name ? v->name : "");
        sbuf_puts(b, ",\"domains\":[");
        for (size_t j = 0; j < v->n_domains; j++) {
            sbuf_puts(b, j ? "," : "");
            admin_json_str(b, v->domains[j]);
        }
        sbuf_puts(b, "],\"routes\":[");
        for (size_t j = 0; j < v->n_routes; j++) {
            sbuf_puts(b, j ? "," : "");
            route_json(b, &v->routes[j]);
        }
        sbuf_puts(b, "]}");
    }
    sbuf_puts(b, "]},\"http_filters\":[{\"name\":\"envoy.filters.http.router\","
                 "\"typed_config\":{\"@type\":\"" ROUTER_TYPE "\"}}]}}]}");
}

static void listener_json(sbuf *b, const cfg_listener *l)
{
    size_t n = l->n_chains - (l->has_default ? 1 : 0);
    sbuf_puts(b, "{\"name\":");
    admin_json_str(b, l->name);
    sbuf_puts(b, ",\"address\":");
    sockaddr_json(b, &l->address);
    if (l->tls_inspector)
        sbuf_puts(b, ",\"listener_filters\":[{\"name\":\"envoy.filters.listener.tls_inspector\","
                     "\"typed_config\":{\"@type\":\"type.googleapis.com/envoy.extensions."
                     "filters.listener.tls_inspector.v3.TlsInspector\"}}]");
    sbuf_puts(b, ",\"filter_chains\":[");
    for (size_t i = 0; i < n; i++) {
        sbuf_puts(b, i ? "," : "");
        chain_json(b, &l->chains[i], true);
    }
    sbuf_puts(b, "]");
    if (l->has_default) {
        sbuf_puts(b, ",\"default_filter_chain\":");
        chain_json(b, &l->chains[n], false);
    }
    sbuf_puts(b, "}");
}

static void cluster_json(sbuf *b, const cfg_cluster *c)
{
    static const char *const types[] = {"STATIC", "STRICT_DNS", "LOGICAL_DNS"};
    sbuf_puts(b, "{\"name\":");
    admin_json_str(b, c->name);
    sbuf_printf(b, ",\"type\":\"%s\",\"connect_timeout\":",
                types[c->type <= CFG_CLUSTER_LOGICAL_DNS ? c->type : 0]);
    dur(b, c->connect_timeout_ms);
    sbuf_puts(b, ",\"lb_policy\":\"ROUND_ROBIN\"");
    if (c->type != CFG_CLUSTER_STATIC) {
        sbuf_puts(b, ",\"dns_refresh_rate\":");
        dur(b, c->dns_refresh_rate_ms);
    }
    sbuf_puts(b, ",\"load_assignment\":{\"cluster_name\":");
    admin_json_str(b, c->name);
    sbuf_puts(b, ",\"endpoints\":[{\"lb_endpoints\":[");
    for (size_t i = 0; i < c->n_endpoints; i++) {
        sbuf_puts(b, i ? ",{\"endpoint\":{\"address\":" : "{\"endpoint\":{\"address\":");
        sockaddr_json(b, &c->endpoints[i]);
        sbuf_puts(b, "}}");
    }
    sbuf_puts(b, "]}]}}");
}

static void runtime_json(sbuf *b, const cfg_runtime *rt)
{
    sbuf_puts(b, ",\"layered_runtime\":{\"layers\":[");
    for (size_t i = 0; i < rt->n_layers; i++) {
        const cfg_runtime_layer *l = &rt->layers[i];
        sbuf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        admin_json_str(b, l->name);
        if (l->kind == CFG_RUNTIME_ADMIN) {
            sbuf_puts(b, ",\"admin_layer\":{}}");
            continue;
        }
        /* flattened keys are valid Struct keys: Envoy accepts dotted keys */
        sbuf_puts(b, ",\"static_layer\":{");
        for (size_t j = 0; j < l->n_entries; j++) {
            sbuf_puts(b, j ? "," : "");
            admin_json_str(b, l->entries[j].key);
            sbuf_puts(b, ":");
            admin_json_str(b, l->entries[j].value);
        }
        sbuf_puts(b, "}}");
    }
    sbuf_puts(b, "]}");
}

static void config_source_json(sbuf *b, const cfg_xds_source *src)
{
    sbuf_puts(b, "{\"resource_api_version\":\"V3\",\"path_config_source\":{\"path\":");
    admin_json_str(b, src->path);
    if (src->watched_dir) {
        sbuf_puts(b, ",\"watched_directory\":{\"path\":");
        admin_json_str(b, src->watched_dir);
        sbuf_puts(b, "}");
    }
    sbuf_puts(b, "}}");
}

static void dynamic_json(sbuf *b, const cfg_dynamic *d)
{
    if (d->node_id || d->node_cluster) {
        sbuf_puts(b, ",\"node\":{\"id\":");
        admin_json_str(b, d->node_id ? d->node_id : "");
        sbuf_puts(b, ",\"cluster\":");
        admin_json_str(b, d->node_cluster ? d->node_cluster : "");
        sbuf_puts(b, "}");
    }
    if (!d->cds.set && !d->lds.set)
        return;
    sbuf_puts(b, ",\"dynamic_resources\":{");
    if (d->cds.set) {
        sbuf_puts(b, "\"cds_config\":");
        config_source_json(b, &d->cds);
    }
    if (d->lds.set) {
        sbuf_puts(b, d->cds.set ? ",\"lds_config\":" : "\"lds_config\":");
        config_source_json(b, &d->lds);
    }
    sbuf_puts(b, "}");
}

/* The CDS / LDS files' resources, with the version_info in use. */
static void dynamic_dumps(sbuf *b, const cfg_bootstrap *cfg)
{
    const cfg_dynamic *d = cfg->dynamic;
    const char *cv = d->cds.version_info ? d->cds.version_info : "";
    const char *lv = d->lds.version_info ? d->lds.version_info : "";
    if (d->cds.set) {
        sbuf_puts(b, ",{\"@type\":\"type.googleapis.com/envoy.admin.v3.ClustersConfigDump\","
                     "\"version_info\":");
        admin_json_str(b, cv);
        sbuf_puts(b, ",\"dynamic_active_clusters\":[");
        for (size_t i = 0; i < d->cds.n; i++) {
            sbuf_puts(b, i ? ",{\"version_info\":" : "{\"version_info\":");
            admin_json_str(b, cv);
            sbuf_puts(b, ",\"cluster\":");
            cluster_json(b, &cfg->clusters[d->cds.first + i]);
            sbuf_puts(b, "}");
        }
        sbuf_puts(b, "]}");
    }
    if (d->lds.set) {
        sbuf_puts(b, ",{\"@type\":\"type.googleapis.com/envoy.admin.v3.ListenersConfigDump\","
                     "\"version_info\":");
        admin_json_str(b, lv);
        sbuf_puts(b, ",\"dynamic_listeners\":[");
        for (size_t i = 0; i < d->lds.n; i++) {
            const cfg_listener *l = &cfg->listeners[d->lds.first + i];
            sbuf_puts(b, i ? ",{\"name\":" : "{\"name\":");
            admin_json_str(b, l->name);
            sbuf_puts(b, ",\"active_state\":{\"version_info\":");
            admin_json_str(b, lv);
            sbuf_puts(b, ",\"listener\":");
            listener_json(b, l);
            sbuf_puts(b, "}}");
        }
        sbuf_puts(b, "]}");
    }
}

void admin_h_config_dump(const admin_request *rq, admin_response *rs)
{
    const cfg_bootstrap *cfg = rq->srv->cfg;
    const cfg_dynamic *dyn = cfg->dynamic;
    /* The bootstrap holds the static resources; the files' follow them. */
    size_t n_listeners = dyn && dyn->lds.set ? dyn->lds.first : cfg->n_listeners;
    size_t n_clusters = dyn && dyn->cds.set ? dyn->cds.first : cfg->n_clusters;
    sbuf *b = &rs->body;
    rs->content_type = ADMIN_CT_JSON;
    sbuf_puts(b, "{\"configs\":[{\"@type\":\"type.googleapis.com/envoy.admin.v3."
                 "BootstrapConfigDump\",\"bootstrap\":{");
    if (cfg->has_admin) {
        sbuf_puts(b, "\"admin\":{\"address\":");
        sockaddr_json(b, &cfg->admin);
        sbuf_puts(b, "},");
    }
    sbuf_puts(b, "\"static_resources\":{\"listeners\":[");
    for (size_t i = 0; i < n_listeners; i++) {
        sbuf_puts(b, i ? "," : "");
        listener_json(b, &cfg->listeners[i]);
    }
    sbuf_puts(b, "],\"clusters\":[");
    for (size_t i = 0; i < n_clusters; i++) {
        sbuf_puts(b, i ? "," : "");
        cluster_json(b, &cfg->clusters[i]);
    }
    sbuf_puts(b, "]},\"stats_flush_interval\":");
    dur(b, cfg->stats.flush_interval_ms ? cfg->stats.flush_interval_ms : 5000);
    if (cfg->runtime)
        runtime_json(b, cfg->runtime);
    if (dyn)
        dynamic_json(b, dyn);
    sbuf_puts(b, "}}");
    if (dyn)
        dynamic_dumps(b, cfg);
    sbuf_puts(b, "]}\n");
}
