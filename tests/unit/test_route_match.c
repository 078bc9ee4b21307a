/* Virtual host and route selection in Envoy's order. */
#include <string.h>

#include "proxy/route_match.h"
#include "tests/unit/pftest.h"

static pf_str S(const char *s) { return (pf_str){ s, strlen(s) }; }

int main(void)
{
    char *d_exact[] = { "api.example.com" };
    char *d_suffix[] = { "*.example.com" };
    char *d_longer_suffix[] = { "*.b.example.com" };
    char *d_prefix[] = { "api.*" };
    char *d_any[] = { "*" };
    char *d_port[] = { "host:8080" };
    cfg_route r_any[] = { { .match_kind = CFG_MATCH_PREFIX, .match_value = "/" } };
    cfg_virtual_host vh[] = {
        { .name = "any", .domains = d_any, .n_domains = 1, .routes = r_any, .n_routes = 1 },
        { .name = "prefix", .domains = d_prefix, .n_domains = 1 },
        { .name = "suffix", .domains = d_suffix, .n_domains = 1 },
        { .name = "longer", .domains = d_longer_suffix, .n_domains = 1 },
        { .name = "exact", .domains = d_exact, .n_domains = 1 },
        { .name = "port", .domains = d_port, .n_domains = 1 },
    };
    cfg_route_config rc = { .vhosts = vh, .n_vhosts = 6 };

    CHECK(strcmp(route_find_vhost(&rc, S("api.example.com"))->name, "exact") == 0);
    CHECK(strcmp(route_find_vhost(&rc, S("API.Example.COM"))->name, "exact") == 0);
    CHECK(strcmp(route_find_vhost(&rc, S("x.example.com"))->name, "suffix") == 0);
    CHECK(strcmp(route_find_vhost(&rc, S("x.b.example.com"))->name, "longer") == 0);
    CHECK(strcmp(route_find_vhost(&rc, S("api.other.org"))->name, "prefix") == 0);
    CHECK(strcmp(route_find_vhost(&rc, S("example.com"))->name, "any") == 0);
    CHECK(strcmp(route_find_vhost(&rc, S(".example.com"))->name, "any") == 0);
    CHECK(strcmp(route_find_vhost(&rc, S("host:8080"))->name, "port") == 0);
    CHECK(strcmp(route_find_vhost(&rc, S("host:9090"))->name, "any") == 0);

    cfg_route routes[] = {
        { .name = "exact", .match_kind = CFG_MATCH_PATH, .match_value = "/exact" },
        { .name = "api", .match_kind = CFG_MATCH_PREFIX, .match_value = "/api/" },
    };
    cfg_virtual_host v = { .routes = routes, .n_routes = 2 };
    CHECK(strcmp(route_find(&v, S("/exact"))->name, "exact") == 0);
    CHECK(strcmp(route_find(&v, S("/exact?x=1"))->name, "exact") == 0);
    CHECK(route_find(&v, S("/exactly")) == NULL);
    CHECK(strcmp(route_find(&v, S("/api/v1"))->name, "api") == 0);
    CHECK(route_find(&v, S("/api")) == NULL);
    CHECK(route_find(&v, S("/")) == NULL);
    return TEST_DONE();
}
