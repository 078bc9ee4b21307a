#include "proxy/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>

size_t pf_addr_format(const struct sockaddr_storage *ss, bool with_port, char *out, size_t outn)
{
    char ip[INET6_ADDRSTRLEN];
    int n;
    if (!ss || !outn)
        return 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        if (!inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip))
            return 0;
        n = with_port ? snprintf(out, outn, "%s:%u", ip, ntohs(a->sin_port))
                      : snprintf(out, outn, "%s", ip);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        if (!inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip))
            return 0;
        n = with_port ? snprintf(out, outn, "[%s]:%u", ip, ntohs(a->sin6_port))
                      : snprintf(out, outn, "%s", ip);
    } else {
        return 0;
    }
    return n < 0 || (size_t)n >= outn ? 0 : (size_t)n;
}
