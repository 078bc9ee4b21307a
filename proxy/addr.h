/* Socket addresses as Envoy prints them: "1.2.3.4:80", "[::1]:80", or
 * without the port. */
#ifndef PF_ADDR_H
#define PF_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Writes ss into out (NUL-terminated); returns the length, or 0 when ss is
 * NULL, not IPv4/IPv6, or does not fit. */
size_t pf_addr_format(const struct sockaddr_storage *ss, bool with_port, char *out, size_t outn);

#endif
