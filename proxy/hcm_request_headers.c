/* The connection manager's own request headers (Envoy's
 * ConnectionManagerUtility::mutateRequestHeaders, the parts we do), applied
 * once per request before the HTTP filters:
 *
 *   x-envoy-internal from the client is always removed.
 *   use_remote_address: true
 *     the trusted client address is the xff_num_trusted_hops-th address
 *     from the right of the incoming x-forwarded-for (when N > 0 and it is
 *     a valid IP), else the connection's peer; the peer is appended to
 *     x-forwarded-for (a loopback peer: our local address instead — Envoy
 *     uses the node's address there, we the socket's, which differ only on
 *     loopback); x-forwarded-proto is overwritten from the connection unless
 *     a trusted hop set it.  A request without x-forwarded-for from an
 *     internal address (RFC 1918, loopback, fd00::/8) is internal and gets
 *     x-envoy-internal: true; any other is an edge request and gets
 *     x-envoy-external-address: <trusted client address>.
 *   use_remote_address: false (default)
 *     x-forwarded-for passes untouched; x-forwarded-proto is added if absent.
 *   add_user_agent: true
 *     x-envoy-downstream-service-cluster: <--service-cluster>, user-agent:
 *     <--service-cluster> when absent or empty, and
 *     x-envoy-downstream-service-node: <--service-node> when one was given.
 *     As Envoy, the values are set even when --service-cluster is empty.
 *
 * Not done (yet): removing the other x-envoy-* request headers of external
 * requests (Envoy's cleanInternalHeaders). */
#include "proxy/hcm.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "proxy/addr.h"
#include "proxy/local_info.h"
#include "proxy/sock.h"

typedef struct xff_addr {
    char text[INET6_ADDRSTRLEN];
    struct sockaddr_storage ss;
    bool ok;
} xff_addr;

static bool parse_ip(const char *p, size_t n, xff_addr *out)
{
    if (n == 0 || n >= sizeof out->text)
        return false;
    memcpy(out->text, p, n);
    out->text[n] = '\0';
    memset(&out->ss, 0, sizeof out->ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&out->ss;
    if (inet_pton(AF_INET, out->text, &a4->sin_addr) == 1)
        a4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, out->text, &a6->sin6_addr) == 1)
        a6->sin6_family = AF_INET6;
    else
        return false;
    return out->ok = true;
}

/* Envoy's getLastAddressFromXFF: the address `skip` entries from the
 * right end of the list, if there are that many and it is an IP. */
static bool xff_from_right(pf_str v, uint32_t skip, xff_addr *out)
{
    const char *end = v.p + v.n;
    for (;;) {
        const char *comma = end;
        while (comma > v.p && comma[-1] != ',')
            comma--;
        if (skip == 0) {
            const char *b = comma, *e = end;
            while (b < e && (*b == ' ' || *b == '\t'))
                b++;
            while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            return parse_ip(b, (size_t)(e - b), out);
        }
        if (comma == v.p)
            return false;
        end = comma - 1;
        skip--;
    }
}

static bool is_internal(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr);
        return (a >> 24) == 10 || (a >> 20) == (172u << 4 | 1) || (a >> 16) == (192u << 8 | 168) ||
               (a >> 24) == 127;
    }
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || a->s6_addr[0] == 0xfd;
    }
    return false;
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    return ss->ss_family == AF_INET6 &&
           IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static pf_str arena_text(pf_stream *s, const char *p)
{
    pf_str out = { NULL, 0 };
    pf_arena_dup(&s->arena, &out, p, strlen(p));
    return out;
}

static void append_xff(pf_stream *s, pf_hdr *xff, const struct sockaddr_storage *addr)
{
    char ip[INET6_ADDRSTRLEN + 8];
    if (!pf_addr_format(addr, false, ip, sizeof ip))
        return;
    if (!xff || xff->value.n == 0) {
        if (xff)
            xff->value = arena_text(s, ip);
        else
            pf_hdrs_add(&s->req_hdrs, &s->arena, PF_STR("x-forwarded-for"), arena_text(s, ip));
        return;
    }
    size_t n = xff->value.n, k = strlen(ip);
    char *v = pf_arena_alloc(&s->arena, n + 2 + k);
    if (!v)
        return;
    memcpy(v, xff->value.p, n);
    memcpy(v + n, ", ", 2);
    memcpy(v + n + 2, ip, k);
    xff->value = (pf_str){ v, n + 2 + k };
}

static void add_user_agent(pf_stream *s)
{
    pf_str cluster = pf_local_service_cluster(), node = pf_local_service_node();
    pf_hdrs_remove_lit(&s->req_hdrs, "x-envoy-downstream-service-cluster");
    pf_hdrs_add(&s->req_hdrs, &s->arena, PF_STR("x-envoy-downstream-service-cluster"), cluster);
    pf_hdr *ua = pf_hdrs_get_lit(&s->req_hdrs, "user-agent");
    if (!ua)
        pf_hdrs_add(&s->req_hdrs, &s->arena, PF_STR("user-agent"), cluster);
    else if (ua->value.n == 0)
        ua->value = cluster;
    if (node.n) {
        pf_hdrs_remove_lit(&s->req_hdrs, "x-envoy-downstream-service-node");
        pf_hdrs_add(&s->req_hdrs, &s->arena, PF_STR("x-envoy-downstream-service-node"), node);
    }
}

/* use_remote_address: true (see the top of the file). */
static void remote_address_headers(pf_stream *s)
{
    const cfg_hcm_options *o = &s->hcm->opts;
    pf_hdr *xff = pf_hdrs_get_lit(&s->req_hdrs, "x-forwarded-for");
    bool trusted_checks = xff == NULL;
    xff_addr client = { .ok = false };
    if (o->xff_num_trusted_hops && xff)
        xff_from_right(xff->value, o->xff_num_trusted_hops - 1, &client);
    if (!client.ok) {
        char ip[INET6_ADDRSTRLEN + 8];
        size_t n = pf_addr_format(s->downstream_remote, false, ip, sizeof ip);
        parse_ip(ip, n, &client);
    }
    const struct sockaddr_storage *peer = s->downstream_remote;
    append_xff(s, xff, is_loopback(peer) && s->downstream_local ? s->downstream_local : peer);
    pf_hdr *proto = pf_hdrs_get_lit(&s->req_hdrs, "x-forwarded-proto");
    if (o->xff_num_trusted_hops == 0 || !proto) {
        pf_hdrs_remove_lit(&s->req_hdrs, "x-forwarded-proto");
        pf_hdrs_add(&s->req_hdrs, &s->arena, PF_STR("x-forwarded-proto"), s->scheme);
    }
    pf_hdrs_remove_lit(&s->req_hdrs, "x-envoy-external-address");
    if (trusted_checks && client.ok && is_internal(&client.ss))
        pf_hdrs_add(&s->req_hdrs, &s->arena, PF_STR("x-envoy-internal"), PF_STR("true"));
    else if (client.ok)
        pf_hdrs_add(&s->req_hdrs, &s->arena, PF_STR("x-envoy-external-address"),
                    arena_text(s, client.text));
}

void hcm__request_headers(pf_stream *s)
{
    const cfg_hcm_options *o = &s->hcm->opts;
    if (s->hcm_headers_done)
        return;
    s->hcm_headers_done = true;
    pf_hdrs_remove_lit(&s->req_hdrs, "x-envoy-internal");
    if (o->use_remote_address && s->downstream_remote)
        remote_address_headers(s);
    else if (!pf_hdrs_get_lit(&s->req_hdrs, "x-forwarded-proto"))
        pf_hdrs_add(&s->req_hdrs, &s->arena, PF_STR("x-forwarded-proto"), s->scheme);
    if (o->add_user_agent)
        add_user_agent(s);
}
