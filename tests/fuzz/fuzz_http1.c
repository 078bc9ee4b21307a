/* libFuzzer target for the HTTP/1 downstream request path.
 *
 * Starts the real server in-process once (a direct_response route, a route
 * to a closed port, and a route to the server's own direct listener), then
 * sends each input over a loopback connection and reads until the proxy
 * closes or goes quiet.  Crashes, sanitizer reports and hangs are findings. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "proxy/log.h"
#include "proxy/server.h"

static uint16_t proxy_port;
static pf_server_opts opts = { .concurrency = 1, .drain_time_ms = 1000 };

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static void *server_thread(void *arg)
{
    pf_server_run(&opts, arg);
    return NULL;
}

/* libFuzzer's -timeout ticks SIGALRM every second: a connect() it
 * interrupts (EINTR) goes on in the background; wait for its outcome. */
static bool connect_interrupted(int fd)
{
    if (errno != EINTR)
        return false;
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    int err = 0;
    socklen_t len = sizeof err;
    while (poll(&p, 1, 5000) < 0 && errno == EINTR)
        ;
    return getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0 &&
           (p.revents & POLLOUT);
}

static int connect_proxy(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    /* A fresh source address from 127/8 per probe: connections the proxy
     * closes first sit in TIME_WAIT for a minute, and from one source
     * address they would use up the ephemeral ports after ~28k inputs. */
    static uint32_t next_src;
    struct sockaddr_in src = { .sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(0x7f000000u | (1 + next_src++ % 0xfffffe)) };
    if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
        close(fd);
        return -1;
    }
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(proxy_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && !connect_interrupted(fd)) {
        close(fd);
        return -1;
    }
    return fd;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    pf_log_level = PF_LOG_OFF;
    proxy_port = free_port();
    uint16_t direct_port = free_port(), dead_port = free_port();
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "static_resources:\n"
             "  listeners:\n"
             "  - name: fuzz\n"
             "    address: {socket_address: {address: 127.0.0.1, port_value: %u}}\n"
             "    filter_chains:\n"
             "    - filters:\n"
             "      - name: envoy.filters.network.http_connection_manager\n"
             "        typed_config:\n"
             "          \"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\n"
             "          stat_prefix: fuzz\n"
             "          max_request_headers_kb: 8\n"
             "          route_config:\n"
             "            virtual_hosts:\n"
             "            - name: all\n"
             "              domains: [\"*\"]\n"
             "              routes:\n"
             "              - match: {prefix: \"/direct\"}\n"
             "                direct_response: {status: 200, body: {inline_string: \"ok\"}}\n"
             "              - match: {prefix: \"/dead\"}\n"
             "                route: {cluster: dead, timeout: 0.5s}\n"
             "              - match: {prefix: \"/\"}\n"
             "                route: {cluster: self, timeout: 0.5s, prefix_rewrite: \"/direct/\"}\n"
             "          http_filters:\n"
             "          - name: envoy.filters.http.router\n"
             "            typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n"
             "  clusters:\n"
             "  - name: self\n"
             "    connect_timeout: 0.25s\n"
             "    load_assignment: {cluster_name: self, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %u}}}}]}]}\n"
             "  - name: dead\n"
             "    connect_timeout: 0.25s\n"
             "    load_assignment: {cluster_name: dead, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %u}}}}]}]}\n",
             proxy_port, proxy_port, dead_port);
    (void)direct_port;
    cfg_bootstrap *cfg;
    char err[CFG_ERR_MAX];
    if (cfg_load_string("fuzz.yaml", yaml, strlen(yaml), &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz config: %s\n", err);
        abort();
    }
    pthread_t t;
    pthread_create(&t, NULL, server_thread, cfg);
    pthread_detach(t);
    for (int i = 0; i < 500; i++) {         /* wait (bounded) for the listener */
        int fd = connect_proxy();
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        usleep(10000);
    }
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = connect_proxy();
    if (fd < 0) {
        perror("fuzz_http1: connect to the proxy");
        abort();
    }
    size_t off = 0;
    while (off < size) {
        ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    char buf[65536];
    struct pollfd p = { .fd = fd, .events = POLLIN };
    while (poll(&p, 1, 2000) > 0) {
        if (recv(fd, buf, sizeof buf, 0) <= 0)
            break;
    }
    close(fd);
    return 0;
}
