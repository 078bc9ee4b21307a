/* /clusters and /listeners, text and ?format=json, in Envoy's shapes. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/admin_http.h"
#include "config/cluster_config.h"
#include "proxy/cluster.h"
#include "proxy/server.h"

#define MAX_HOSTS_SHOWN 4096

static bool want_json(const admin_request *rq, admin_response *rs, const char *path)
{
    const char *f = admin_query(rq, "format");
    if (!f || strcmp(f, "text") == 0)
        return false;
    if (strcmp(f, "json") == 0)
        return true;
    rs->status = 400;
    sbuf_printf(&rs->body, "usage: %s?format=(text|json)\n", path);
    return false;
}

static void ip_port(const struct sockaddr_storage *ss, char *ip, size_t iplen, unsigned *port)
{
    ip[0] = '\0';
    *port = 0;
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, (socklen_t)iplen);
        *port = ntohs(a->sin6_port);
    } else if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, (socklen_t)iplen);
        *port = ntohs(a->sin_port);
    }
}

/* DNS clusters with one endpoint: the name Envoy shows as hostname. */
static const char *hostname_of(const cfg_cluster *c)
{
    if (c->type != CFG_CLUSTER_STATIC && c->n_endpoints == 1)
        return c->endpoints[0].address;
    return "";
}

/* Envoy's health_flags: "healthy" or "/failed_active_hc/failed_outlier_check/..." */
static void health_flags(unsigned f, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!f) {
        snprintf(buf, len, "healthy");
        return;
    }
    size_t n = 0;
    if (f & PF_HOST_FAILED_ACTIVE_HC)
        n += (size_t)snprintf(buf + n, len - n, "/failed_active_hc");
    if ((f & PF_HOST_FAILED_OUTLIER) && n < len)
        n += (size_t)snprintf(buf + n, len - n, "/failed_outlier_check");
    if ((f & PF_HOST_PENDING_ACTIVE_HC) && n < len)
        snprintf(buf + n, len - n, "/pending_active_hc");
}

static const cfg_cb_thresholds *thresholds(const cfg_cluster *c, int p)
{
    return c->lb ? &c->lb->cb[p] : &cfg_cluster_lb_defaults.cb[p];
}

static void clusters_text(pf_server *srv, sbuf *b, pf_admin_host_stats *hs)
{
    static const char *const prio[] = {"default", "high"};
    for (size_t i = 0; i < srv->cfg->n_clusters; i++) {
        const cfg_cluster *c = &srv->cfg->clusters[i];
        const char *n = c->name;
        sbuf_printf(b, "%s::observability_name::%s\n", n, n);
        for (int p = 0; p < 2; p++) {
            const cfg_cb_thresholds *t = thresholds(c, p);
            sbuf_printf(b, "%s::%s_priority::max_connections::%u\n", n, prio[p], t->max_connections);
            sbuf_printf(b, "%s::%s_priority::max_pending_requests::%u\n", n, prio[p],
                        t->max_pending_requests);
            sbuf_printf(b, "%s::%s_priority::max_requests::%u\n", n, prio[p], t->max_requests);
            sbuf_printf(b, "%s::%s_priority::max_retries::%u\n", n, prio[p], t->max_retries);
        }
        sbuf_printf(b, "%s::added_via_api::false\n", n);
        size_t nh = pf_server_cluster_hosts(srv, i, hs, MAX_HOSTS_SHOWN);
        if (nh > MAX_HOSTS_SHOWN)
            nh = MAX_HOSTS_SHOWN;
        for (size_t h = 0; h < nh; h++) {
            char a[80];
            admin_fmt_addr(&hs[h].addr, a, sizeof a);
            const pf_admin_host_stats *s = &hs[h];
            sbuf_printf(b, "%s::%s::cx_active::%llu\n", n, a, (unsigned long long)s->cx_active);
            sbuf_printf(b, "%s::%s::cx_connect_fail::%llu\n", n, a,
                        (unsigned long long)s->cx_connect_fail);
            sbuf_printf(b, "%s::%s::cx_total::%llu\n", n, a, (unsigned long long)s->cx_total);
            sbuf_printf(b, "%s::%s::rq_active::%llu\n", n, a, (unsigned long long)s->rq_active);
            sbuf_printf(b, "%s::%s::rq_error::%llu\n", n, a, (unsigned long long)s->rq_error);
            sbuf_printf(b, "%s::%s::rq_success::%llu\n", n, a, (unsigned long long)s->rq_success);
            sbuf_printf(b, "%s::%s::rq_timeout::%llu\n", n, a, (unsigned long long)s->rq_timeout);
            sbuf_printf(b, "%s::%s::rq_total::%llu\n", n, a, (unsigned long long)s->rq_total);
            sbuf_printf(b, "%s::%s::hostname::%s\n", n, a, hostname_of(c));
            char hf[96];
            health_flags(s->flags, hf, sizeof hf);
            sbuf_printf(b, "%s::%s::health_flags::%s\n", n, a, hf);
            sbuf_printf(b, "%s::%s::weight::%u\n", n, a, s->weight);
            sbuf_printf(b, "%s::%s::region::%s\n", n, a, s->region);
            sbuf_printf(b, "%s::%s::zone::%s\n", n, a, s->zone);
            sbuf_printf(b, "%s::%s::sub_zone::%s\n", n, a, s->sub_zone);
            sbuf_printf(b, "%s::%s::canary::false\n", n, a);
            sbuf_printf(b, "%s::%s::priority::%u\n", n, a, s->priority);
            sbuf_printf(b, "%s::%s::success_rate::-1\n", n, a);
            sbuf_printf(b, "%s::%s::local_origin_success_rate::-1\n", n, a);
        }
    }
}

/* proto3 JSON: zero values are left out, uint64 values are strings. */
static void metric(sbuf *b, bool *first, const char *name, uint64_t v, bool gauge)
{
    sbuf_puts(b, *first ? "{" : ",{");
    *first = false;
    if (gauge)
        sbuf_puts(b, "\"type\":\"GAUGE\",");
    if (v)
        sbuf_printf(b, "\"value\":\"%llu\",", (unsigned long long)v);
    sbuf_printf(b, "\"name\":\"%s\"}", name);
}

static void clusters_json(pf_server *srv, sbuf *b, pf_admin_host_stats *hs)
{
    sbuf_puts(b, "{\"cluster_statuses\":[");
    for (size_t i = 0; i < srv->cfg->n_clusters; i++) {
        const cfg_cluster *c = &srv->cfg->clusters[i];
        sbuf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        admin_json_str(b, c->name);
        size_t nh = pf_server_cluster_hosts(srv, i, hs, MAX_HOSTS_SHOWN);
        if (nh > MAX_HOSTS_SHOWN)
            nh = MAX_HOSTS_SHOWN;
        if (nh)
            sbuf_puts(b, ",\"host_statuses\":[");
        for (size_t h = 0; h < nh; h++) {
            char ip[64];
            unsigned port;
            ip_port(&hs[h].addr, ip, sizeof ip, &port);
            const pf_admin_host_stats *s = &hs[h];
            sbuf_printf(b, "%s{\"address\":{\"socket_address\":{\"address\":\"%s\","
                           "\"port_value\":%u}},\"stats\":[", h ? "," : "", ip, port);
            bool first = true;
            metric(b, &first, "cx_connect_fail", s->cx_connect_fail, false);
            metric(b, &first, "cx_total", s->cx_total, false);
            metric(b, &first, "rq_error", s->rq_error, false);
            metric(b, &first, "rq_success", s->rq_success, false);
            metric(b, &first, "rq_timeout", s->rq_timeout, false);
            metric(b, &first, "rq_total", s->rq_total, false);
            metric(b, &first, "cx_active", s->cx_active, true);
            metric(b, &first, "rq_active", s->rq_active, true);
            /* proto3 JSON: false booleans and zero values are left out. */
            sbuf_puts(b, "],\"health_status\":{");
            if (s->flags & PF_HOST_FAILED_ACTIVE_HC)
                sbuf_puts(b, "\"failed_active_health_check\":true,");
            if (s->flags & PF_HOST_FAILED_OUTLIER)
                sbuf_puts(b, "\"failed_outlier_check\":true,");
            if (s->flags & PF_HOST_PENDING_ACTIVE_HC)
                sbuf_puts(b, "\"pending_active_hc\":true,");
            sbuf_printf(b, "\"eds_health_status\":\"HEALTHY\"},\"weight\":%u", s->weight);
            if (s->priority)
                sbuf_printf(b, ",\"priority\":%u", s->priority);
            const char *hn = hostname_of(c);
            if (hn[0]) {
                sbuf_puts(b, ",\"hostname\":");
                admin_json_str(b, hn);
            }
            sbuf_puts(b, ",\"locality\":{");
            bool lf = true;
            const char *lk[3] = {"region", "zone", "sub_zone"};
            const char *lv[3] = {s->region, s->zone, s->sub_zone};
            for (int k = 0; k < 3; k++) {
                if (!lv[k][0])
                    continue;
                sbuf_printf(b, "%s\"%s\":", lf ? "" : ",", lk[k]);
                admin_json_str(b, lv[k]);
                lf = false;
            }
            sbuf_puts(b, "}}");
        }
        if (nh)
            sbuf_puts(b, "]");
        const cfg_cb_thresholds *t0 = thresholds(c, 0), *t1 = thresholds(c, 1);
        sbuf_printf(b, ",\"circuit_breakers\":{\"thresholds\":["
                       "{\"max_connections\":%u,\"max_pending_requests\":%u,"
                       "\"max_requests\":%u,\"max_retries\":%u},"
                       "{\"priority\":\"HIGH\",\"max_connections\":%u,"
                       "\"max_pending_requests\":%u,\"max_requests\":%u,\"max_retries\":%u}]},"
                       "\"observability_name\":",
                    t0->max_connections, t0->max_pending_requests, t0->max_requests,
                    t0->max_retries, t1->max_connections, t1->max_pending_requests,
                    t1->max_requests, t1->max_retries);
        admin_json_str(b, c->name);
        sbuf_puts(b, "}");
    }
    sbuf_puts(b, "]}\n");
}

void admin_h_clusters(const admin_request *rq, admin_response *rs)
{
    bool json = want_json(rq, rs, "/clusters");
    if (rs->status != 200)
        return;
    pf_admin_host_stats *hs = calloc(MAX_HOSTS_SHOWN, sizeof *hs);
    if (!hs) {
        rs->body.oom = true;
        return;
    }
    if (json) {
        rs->content_type = ADMIN_CT_JSON;
        clusters_json(rq->srv, &rs->body, hs);
    } else {
        clusters_text(rq->srv, &rs->body, hs);
    }
    free(hs);
}

static bool is_v6(const char *ip)
{
    return strchr(ip, ':') != NULL;
}

void admin_h_listeners(const admin_request *rq, admin_response *rs)
{
    bool json = want_json(rq, rs, "/listeners");
    if (rs->status != 200)
        return;
    const cfg_bootstrap *cfg = rq->srv->cfg;
    sbuf *b = &rs->body;
    if (json) {
        rs->content_type = ADMIN_CT_JSON;
        sbuf_puts(b, "{\"listener_statuses\":[");
    }
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const cfg_listener *l = &cfg->listeners[i];
        if (json) {
            sbuf_puts(b, i ? ",{\"name\":" : "{\"name\":");
            admin_json_str(b, l->name);
            sbuf_puts(b, ",\"local_address\":{\"socket_address\":{\"address\":");
            admin_json_str(b, l->address.address);
            sbuf_printf(b, ",\"port_value\":%u}}}", l->address.port);
        } else if (is_v6(l->address.address)) {
            sbuf_printf(b, "%s::[%s]:%u\n", l->name, l->address.address, l->address.port);
        } else {
            sbuf_printf(b, "%s::%s:%u\n", l->name, l->address.address, l->address.port);
        }
    }
    if (json)
        sbuf_puts(b, "]}\n");
}
