/* /config_dump: the loaded bootstrap rendered back as Envoy's
 * BootstrapConfigDump (what pilotfish understood, defaults filled in). */
#include <stdio.h>
#include <string.h>

#include "admin/admin_http.h"
#include "config/runtime_config.h"
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

static void listener_json(sbuf *b, const cfg_listener *l)
{
    static const char *const codecs[] = {"AUTO", "HTTP1", "HTTP2"};
    const cfg_hcm *h = &l->hcm;
    sbuf_puts(b, "{\"name\":");
    admin_json_str(b, l->name);
    sbuf_puts(b, ",\"address\":");
    sockaddr_json(b, &l->address);
    sbuf_puts(b, ",\"filter_chains\":[{\"filters\":[{\"name\":"
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
                 "\"typed_config\":{\"@type\":\"" ROUTER_TYPE "\"}}]}}]}]}");
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

void admin_h_config_dump(const admin_request *rq, admin_response *rs)
{
    const cfg_bootstrap *cfg = rq->srv->cfg;
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
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        sbuf_puts(b, i ? "," : "");
        listener_json(b, &cfg->listeners[i]);
    }
    sbuf_puts(b, "],\"clusters\":[");
    for (size_t i = 0; i < cfg->n_clusters; i++) {
        sbuf_puts(b, i ? "," : "");
        cluster_json(b, &cfg->clusters[i]);
    }
    sbuf_puts(b, "]},\"stats_flush_interval\":");
    dur(b, cfg->stats.flush_interval_ms ? cfg->stats.flush_interval_ms : 5000);
    if (cfg->runtime)
        runtime_json(b, cfg->runtime);
    sbuf_puts(b, "}}]}\n");
}
