#include "proxy/grpc.h"

#include <string.h>

bool grpc_is_request(const pf_stream *s)
{
    pf_hdr *ct = pf_hdrs_get_lit(&s->req_hdrs, "content-type");
    return ct && ct->value.n >= 16 && strncmp(ct->value.p, "application/grpc", 16) == 0 &&
           (ct->value.n == 16 || ct->value.p[16] == '+' || ct->value.p[16] == ';');
}

int grpc_status_for_local_reply(int http_status, uint32_t response_flags)
{
    if (response_flags & PF_RF_UT)
        return GRPC_DEADLINE_EXCEEDED;
    switch (http_status) {
    case 400: return GRPC_INTERNAL;
    case 401: return GRPC_UNAUTHENTICATED;
    case 403: return GRPC_PERMISSION_DENIED;
    case 404: return GRPC_UNIMPLEMENTED;
    case 429: case 502: case 503: case 504: return GRPC_UNAVAILABLE;
    default: return GRPC_UNKNOWN;
    }
}

pf_str grpc_encode_message(pf_arena *a, const char *msg, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = pf_arena_alloc(a, n * 3 + 1);
    if (!out)
        return PF_STR("");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)msg[i];
        if (ch >= 0x20 && ch <= 0x7e && ch != '%') {
            out[k++] = (char)ch;
        } else {
            out[k++] = '%';
            out[k++] = hex[ch >> 4];
            out[k++] = hex[ch & 15];
        }
    }
    return (pf_str){ out, k };
}

uint64_t grpc_timeout_ms(const pf_stream *s)
{
    pf_hdr *h = pf_hdrs_get_lit(&s->req_hdrs, "grpc-timeout");
    if (!h || h->value.n < 2 || h->value.n > 9)     /* at most 8 digits + unit */
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i + 1 < h->value.n; i++) {
        char ch = h->value.p[i];
        if (ch < '0' || ch > '9')
            return 0;
        v = v * 10 + (uint64_t)(ch - '0');
    }
    uint64_t ns_per_unit;
    switch (h->value.p[h->value.n - 1]) {
    case 'H': ns_per_unit = 3600000000000ull; break;
    case 'M': ns_per_unit = 60000000000ull; break;
    case 'S': ns_per_unit = 1000000000ull; break;
    case 'm': ns_per_unit = 1000000ull; break;
    case 'u': ns_per_unit = 1000ull; break;
    case 'n': ns_per_unit = 1ull; break;
    default: return 0;
    }
    uint64_t ms = (v * ns_per_unit + 999999) / 1000000;
    return ms ? ms : 1;
}
