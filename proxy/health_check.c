#include "proxy/health_check.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "admin/stats.h"
#include "config/cluster_config.h"
#include "proxy/cluster.h"
#include "proxy/cluster_mgr.h"
#include "proxy/health_check_grpc.h"
#include "proxy/log.h"
#include "proxy/proxy_stats.h"
#include "proxy/server.h"

typedef struct hc_session hc_session;

/* One check's connection.  Detached from its session (session == NULL) when
 * the check ends; freed when its handle has closed. */
typedef struct hc_probe {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    hc_session *session;
    pf_hc_grpc *grpc;               /* gRPC checks: the HTTP/2 session, owned */
    char buf[512];
    size_t len;
} hc_probe;

/* One write of gRPC session bytes; freed in its callback. */
typedef struct hc_grpc_write {
    uv_write_t req;
    hc_probe *probe;
    uint8_t *data;                  /* owned */
} hc_grpc_write;

struct hc_session {
    pf_hc *hc;
    uint32_t slot;
    struct sockaddr_storage addr;   /* where checks go (health_check_config port applied) */
    uv_timer_t timer;               /* next check, or the running check's timeout */
    hc_probe *probe;                /* the running check, or NULL */
    uint32_t n_ok, n_fail;
    bool first_done, removed;
    hc_session *next;
};

struct pf_hc {
    pf_server *srv;
    size_t idx;
    const cfg_health_check *cfg;
    char *request;                  /* HTTP request bytes, owned */
    size_t request_len;
    hc_session *sessions;
    int n_open;                     /* session timers not yet closed */
    bool stopped, init_reported;
};

static void start_check(uv_timer_t *t);

static void maybe_free(pf_hc *hc)
{
    if (hc->stopped && hc->n_open == 0) {
        free(hc->request);
        free(hc);
    }
}

pf_hc *pf_hc_new(pf_server *srv, size_t idx)
{
    const cfg_cluster *cl = &srv->cfg->clusters[idx];
    if (!cl->lb || !cl->lb->n_hcs)
        return NULL;
    pf_hc *hc = calloc(1, sizeof *hc);
    if (!hc)
        return NULL;
    hc->srv = srv;
    hc->idx = idx;
    hc->cfg = &cl->lb->hcs[0];
    if (hc->cfg->kind == CFG_HC_HTTP) {
        size_t cap = 256 + strlen(hc->cfg->path) + strlen(hc->cfg->host ? hc->cfg->host : cl->name);
        for (size_t i = 0; i < hc->cfg->n_headers; i++)
            cap += strlen(hc->cfg->headers[i].name) + strlen(hc->cfg->headers[i].value) + 4;
        if (!(hc->request = malloc(cap))) {
            free(hc);
            return NULL;
        }
        /* Envoy sends the cluster name as the host unless one is configured. */
        int n = snprintf(hc->request, cap, "GET %s HTTP/1.1\r\nhost: %s\r\nuser-agent: Envoy/HC\r\n"
                         "connection: close\r\n", hc->cfg->path,
                         hc->cfg->host ? hc->cfg->host : cl->name);
        for (size_t i = 0; i < hc->cfg->n_headers; i++)
            n += snprintf(hc->request + n, cap - (size_t)n, "%s: %s\r\n", hc->cfg->headers[i].name,
                          hc->cfg->headers[i].value);
        n += snprintf(hc->request + n, cap - (size_t)n, "\r\n");
        hc->request_len = (size_t)n;
    }
    return hc;
}

static void on_probe_closed(uv_handle_t *h)
{
    hc_probe *p = h->data;
    pf_hc_grpc_free(p->grpc);
    free(p);
}

static void probe_end(hc_session *s)
{
    hc_probe *p = s->probe;
    if (!p)
        return;
    s->probe = NULL;
    p->session = NULL;
    uv_close((uv_handle_t *)&p->tcp, on_probe_closed);
}

/* Envoy's choice: before the cluster saw traffic, no_traffic_interval (or
 * no_traffic_healthy_interval for a healthy host); right after a flip, the
 * edge interval of the new state; else interval / unhealthy_interval. */
static uint64_t next_interval(hc_session *s, bool flipped)
{
    pf_hc *hc = s->hc;
    const cfg_health_check *c = hc->cfg;
    bool healthy = !(pf_cluster_mgr_flags(hc->srv, hc->idx, s->slot) & PF_HOST_FAILED_ACTIVE_HC);
    uint64_t t;
    if (stats_counter_value(hc->srv->stats, hc->srv->ps->clusters[hc->idx].rq_total) == 0)
        t = healthy ? c->no_traffic_healthy_interval_ms : c->no_traffic_interval_ms;
    else if (healthy)
        t = flipped ? c->healthy_edge_interval_ms : c->interval_ms;
    else
        t = flipped ? c->unhealthy_edge_interval_ms : c->unhealthy_interval_ms;
    uint64_t jitter = c->interval_jitter_ms ? (uint64_t)rand() % c->interval_jitter_ms : 0;
    if (c->interval_jitter_percent && t)
        jitter += (uint64_t)rand() % (t * c->interval_jitter_percent / 100 + 1);
    return t + jitter;
}

static void report_init(pf_hc *hc)
{
    if (hc->init_reported)
        return;
    for (hc_session *s = hc->sessions; s; s = s->next)
        if (!s->removed && !s->first_done)
            return;
    hc->init_reported = true;
    pf_cluster_mgr_init_done(hc->srv);
}

/* The check of s ended: counts, flips health, publishes, schedules the next. */
static void check_done(hc_session *s, bool ok, bool network)
{
    pf_hc *hc = s->hc;
    const pf_cluster_stats *cs = &hc->srv->ps->clusters[hc->idx];
    stats_shard *sh = stats_main_shard(hc->srv->stats);
    probe_end(s);
    stats_inc(sh, ok ? cs->hc_success : cs->hc_failure);
    if (!ok && network)
        stats_inc(sh, cs->hc_network_failure);
    uint16_t f = pf_cluster_mgr_flags(hc->srv, hc->idx, s->slot);
    bool pending = f & PF_HOST_PENDING_ACTIVE_HC, changed = false;
    if (ok) {
        s->n_fail = 0;
        if ((f & PF_HOST_FAILED_ACTIVE_HC) && (pending || ++s->n_ok >= hc->cfg->healthy_threshold)) {
            changed = pf_cluster_mgr_set_flags(hc->srv, hc->idx, s->slot, 0,
                                               PF_HOST_FAILED_ACTIVE_HC | PF_HOST_PENDING_ACTIVE_HC);
            s->n_ok = 0;
        }
    } else {
        s->n_ok = 0;
        if (!(f & PF_HOST_FAILED_ACTIVE_HC) && ++s->n_fail >= hc->cfg->unhealthy_threshold) {
            changed = pf_cluster_mgr_set_flags(hc->srv, hc->idx, s->slot, PF_HOST_FAILED_ACTIVE_HC, 0);
            s->n_fail = 0;
        }
    }
    if (pending)
        changed |= pf_cluster_mgr_set_flags(hc->srv, hc->idx, s->slot, 0, PF_HOST_PENDING_ACTIVE_HC);
    if (changed) {
        char a[INET6_ADDRSTRLEN] = "";
        const struct sockaddr_in *in = (const struct sockaddr_in *)&s->addr;
        if (s->addr.ss_family == AF_INET)
            inet_ntop(AF_INET, &in->sin_addr, a, sizeof a);
        pf_info("cluster '%s': host %s:%u %s (health check)", hc->srv->cfg->clusters[hc->idx].name,
                a, ntohs(in->sin_port), ok ? "healthy" : "unhealthy");
        pf_cluster_mgr_publish(hc->srv, hc->idx);
    }
    s->first_done = true;
    report_init(hc);
    uv_timer_start(&s->timer, start_check, next_interval(s, changed), 0);
}

static void on_timeout(uv_timer_t *t)
{
    hc_session *s = t->data;
    check_done(s, false, true);
}

static bool status_ok(const cfg_health_check *c, unsigned st)
{
    for (size_t i = 0; i < c->n_statuses; i++)
        if (st >= c->statuses[i].start && st < c->statuses[i].end)
            return true;
    return false;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    hc_probe *p = h->data;
    buf->base = p->buf + p->len;            /* gRPC: p->len stays 0 */
    buf->len = sizeof p->buf - 1 - p->len;
}

static void on_grpc_written(uv_write_t *w, int status)
{
    hc_grpc_write *gw = w->data;
    hc_probe *p = gw->probe;
    free(gw->data);
    free(gw);
    if (p->session && status < 0)
        check_done(p->session, false, true);
}

/* Writes whatever the HTTP/2 session has queued; false on failure. */
static bool grpc_flush(hc_probe *p)
{
    uint8_t *data;
    size_t len;
    if (pf_hc_grpc_output(p->grpc, &data, &len) != 0)
        return false;
    if (!len)
        return true;
    hc_grpc_write *gw = malloc(sizeof *gw);
    if (!gw) {
        free(data);
        return false;
    }
    gw->probe = p;
    gw->data = data;
    gw->req.data = gw;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    if (uv_write(&gw->req, (uv_stream_t *)&p->tcp, &b, 1, on_grpc_written) != 0) {
        free(data);
        free(gw);
        return false;
    }
    return true;
}

/* gRPC: bytes from the host go to the session; a finished call ends the check. */
static void grpc_read(hc_probe *p, hc_session *s, const uv_buf_t *buf, ssize_t n)
{
    if (n < 0) {
        check_done(s, false, true);
        return;
    }
    pf_hc_grpc_result r = pf_hc_grpc_recv(p->grpc, (const uint8_t *)buf->base, (size_t)n);
    if (r == PF_HC_GRPC_PENDING) {
        if (!grpc_flush(p))
            check_done(s, false, true);
        return;
    }
    check_done(s, r == PF_HC_GRPC_SERVING, r == PF_HC_GRPC_PROTOCOL_ERROR);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    hc_probe *p = st->data;
    hc_session *s = p->session;
    if (!s)
        return;
    if (p->grpc) {
        grpc_read(p, s, buf, n);
        return;
    }
    if (n < 0) {
        check_done(s, false, true);     /* closed before a status line */
        return;
    }
    p->len += (size_t)n;
    p->buf[p->len] = '\0';
    char *eol = strstr(p->buf, "\r\n");
    if (!eol && p->len < sizeof p->buf - 1)
        return;
    unsigned st_code = 0;
    bool ok = sscanf(p->buf, "HTTP/1.%*1[01] %3u", &st_code) == 1 && status_ok(s->hc->cfg, st_code);
    check_done(s, ok, false);
}

static void on_written(uv_write_t *w, int status)
{
    hc_probe *p = w->data;
    if (p->session && status < 0)
        check_done(p->session, false, true);
}

static void on_connect(uv_connect_t *req, int status)
{
    hc_probe *p = req->data;
    hc_session *s = p->session;
    if (!s)
        return;
    if (status < 0) {
        check_done(s, false, true);
        return;
    }
    if (s->hc->cfg->kind == CFG_HC_TCP) {
        check_done(s, true, false);
        return;
    }
    if (s->hc->cfg->kind == CFG_HC_GRPC) {
        /* Envoy's default authority is the cluster name. */
        p->grpc = pf_hc_grpc_new(s->hc->cfg, s->hc->srv->cfg->clusters[s->hc->idx].name);
        if (!p->grpc || !grpc_flush(p) ||
            uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read) != 0)
            check_done(s, false, true);
        return;
    }
    uv_buf_t b = uv_buf_init(s->hc->request, (unsigned)s->hc->request_len);
    p->wreq.data = p;
    if (uv_write(&p->wreq, (uv_stream_t *)&p->tcp, &b, 1, on_written) != 0 ||
        uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read) != 0)
        check_done(s, false, true);
}

static void start_check(uv_timer_t *t)
{
    hc_session *s = t->data;
    pf_hc *hc = s->hc;
    stats_inc(stats_main_shard(hc->srv->stats), hc->srv->ps->clusters[hc->idx].hc_attempt);
    hc_probe *p = calloc(1, sizeof *p);
    if (!p) {
        check_done(s, false, true);
        return;
    }
    uv_tcp_init(&hc->srv->loop, &p->tcp);
    p->tcp.data = p;
    p->creq.data = p;
    p->session = s;
    s->probe = p;
    uv_timer_start(&s->timer, on_timeout, hc->cfg->timeout_ms, 0);
    if (uv_tcp_connect(&p->creq, &p->tcp, (const struct sockaddr *)&s->addr, on_connect) != 0)
        check_done(s, false, true);
}

static void on_session_closed(uv_handle_t *h)
{
    hc_session *s = h->data;
    pf_hc *hc = s->hc;
    hc->n_open--;
    free(s);
    maybe_free(hc);
}

static void session_close(hc_session *s)
{
    s->removed = true;
    probe_end(s);
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_session_closed);
}

void pf_hc_sync(pf_hc *hc, const pf_hostset *hs)
{
    if (!hc || hc->stopped)
        return;
    /* Drop sessions of hosts that left. */
    for (hc_session **pp = &hc->sessions; *pp;) {
        hc_session *s = *pp;
        bool kept = false;
        for (size_t i = 0; i < hs->n && !kept; i++)
            kept = hs->slots[i] == s->slot;
        if (!kept) {
            *pp = s->next;
            session_close(s);
        } else {
            pp = &s->next;
        }
    }
    for (size_t i = 0; i < hs->n; i++) {
        bool known = false;
        for (hc_session *s = hc->sessions; s && !known; s = s->next)
            known = s->slot == hs->slots[i];
        if (known)
            continue;
        hc_session *s = calloc(1, sizeof *s);
        if (!s)
            continue;
        s->hc = hc;
        s->slot = hs->slots[i];
        s->addr = hs->addrs[i];
        if (hs->info[i].hc_port) {
            if (s->addr.ss_family == AF_INET)
                ((struct sockaddr_in *)&s->addr)->sin_port = htons(hs->info[i].hc_port);
            else
                ((struct sockaddr_in6 *)&s->addr)->sin6_port = htons(hs->info[i].hc_port);
        }
        uv_timer_init(&hc->srv->loop, &s->timer);
        s->timer.data = s;
        hc->n_open++;
        s->next = hc->sessions;
        hc->sessions = s;
        uv_timer_start(&s->timer, start_check, 0, 0);     /* first check at once */
    }
    report_init(hc);        /* no hosts: nothing to wait for */
}

void pf_hc_stop(pf_hc *hc)
{
    if (!hc)
        return;
    hc->stopped = true;
    while (hc->sessions) {
        hc_session *s = hc->sessions;
        hc->sessions = s->next;
        session_close(s);
    }
    maybe_free(hc);
}
