#!/usr/bin/python3
"""Instructions per proxied request, counted by valgrind's callgrind: noise-free
on a shared machine (the count does not depend on what else runs).

    bench/instructions.py pilotfish [path/to/pilotfish]
    bench/instructions.py pilotfish-lua [path/to/pilotfish]   (a header-adding Lua filter)
    bench/instructions.py haproxy
    bench/instructions.py pilotfish-routes1 | pilotfish-routes1000 | pilotfish-mixed1000 | pilotfish-weighted100
        routing cost (bench/results/routes.md): one route, 1,000 mixed routes with the
        request matching the last, one route weighted over 100 clusters

Each proxy runs single-threaded under callgrind in front of the Python test
upstream; one keep-alive client sends N1 and then N2 requests in two runs, and
(total(N2) - total(N1)) / (N2 - N1) cancels start-up and shut-down costs.
Kernel time is not counted (both proxies make similar syscalls per request)."""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import pftest  # noqa: E402
from pftest import HttpConn, cluster, free_port, match_prefix, route, simple_bootstrap  # noqa: E402

N1, N2 = 500, 2500


def haproxy_cmd(tmp, port, up_port):
    cfg = os.path.join(tmp, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write("global\n    nbthread 1\n    maxconn 4096\ndefaults\n    mode http\n"
                "    option http-keep-alive\n    http-reuse always\n    timeout connect 1s\n"
                "    timeout client 30s\n    timeout server 30s\n"
                "frontend bench\n    bind 127.0.0.1:%d\n    default_backend upstream\n"
                "backend upstream\n    server u1 127.0.0.1:%d\n" % (port, up_port))
    return ["haproxy", "-db", "-f", cfg], 10          # SIGUSR1: soft stop


LUA_FILTER = {
    "name": "envoy.filters.http.lua",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
        "default_source_code": {"inline_string":
            "function envoy_on_request(h) h:headers():add('x-lua', '1') end\n"}}}


# Routing variants send this header; in routes1000 only the last route matches it.
TENANT = ("x-tenant", "t999")


def many_routes(n, weighted_every=0):
    """n routes mixing the three matchers Envoy evaluates in order: a prefix
    (/svc<i>/), an exact path (/exact<i>) and a header on prefix "/"
    (x-tenant: t<i>); the last one is a header route, so a request for /bench
    with TENANT walks all of them and compares the header n/3 times.
    weighted_every k: every k-th route, the last included, splits 90/10 between
    a stable and a canary cluster instead of naming one."""
    rs = []
    for i in range(n):
        kind = (i - n + 1) % 3          # the last route is kind 0 (header)
        if kind == 0:
            m = {"prefix": "/", "headers": [{"name": TENANT[0],
                                             "string_match": {"exact": "t%d" % i}}]}
        elif kind == 1:
            m = match_prefix("/svc%d/" % i)
        else:
            m = {"path": "/exact%d" % i}
        if weighted_every and (n - 1 - i) % weighted_every == 0:
            rs.append(route(m, weighted=[("up", 90), ("canary", 10)]))
        else:
            rs.append(route(m, "up"))
    return rs


def routing_config(variant, up_port):
    """(routes, clusters) for a routing variant."""
    if variant == "routes1000":
        return many_routes(1000), [cluster("up", [up_port])]
    if variant == "mixed1000":      # 1,000 routes, 100 of them weighted canaries
        return many_routes(1000, 10), [cluster("up", [up_port]), cluster("canary", [up_port])]
    if variant == "weighted100":
        names = ["up%d" % i for i in range(100)]
        return ([route(match_prefix("/"), weighted=[(n, 1) for n in names])],
                [cluster(n, [up_port]) for n in names])
    return [route(match_prefix("/"), "up")], [cluster("up", [up_port])]


def pilotfish_cmd(tmp, port, up_port, binary, lua=False, variant=None):
    cfg = os.path.join(tmp, "pilotfish.yaml")
    routes, clusters = routing_config(variant, up_port)
    b = simple_bootstrap(port, free_port(), routes, clusters)
    if lua:
        hcm = b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        hcm["http_filters"].insert(0, LUA_FILTER)
    with open(cfg, "w") as f:
        f.write(pftest.to_yaml(b))
    return [binary, "-c", cfg, "--concurrency", "1", "-l", "error", "--drain-time-s", "1"], 15


def total_instructions(kind, n, binary):
    tmp = tempfile.mkdtemp(prefix="pf-instr-")
    up = pftest.Upstream("up")
    port = free_port()
    variant = kind[len("pilotfish-"):] if kind.startswith("pilotfish-") else None
    cmd, stop_sig = (haproxy_cmd(tmp, port, up.port) if kind == "haproxy"
                     else pilotfish_cmd(tmp, port, up.port, binary, lua=kind == "pilotfish-lua",
                                        variant=variant))
    headers = [TENANT] if variant in ("routes1", "routes1000", "mixed1000", "weighted100") else []
    out = os.path.join(tmp, "callgrind.out")
    p = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + cmd,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pftest.wait_until(lambda: not pftest.port_is_free(port), 120, what="proxy listening")
        with HttpConn(port, timeout=60) as c:
            for i in range(n):
                r = c.get("/bench", headers=headers)
                assert r.status == 200, "request %d: %r" % (i, r)
    finally:
        p.send_signal(stop_sig)
        p.wait(180)
        up.close()
    with open(out) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("no totals in " + out)


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else "pilotfish"
    binary = sys.argv[2] if len(sys.argv) > 2 else "build/pilotfish"
    a, b = total_instructions(kind, N1, binary), total_instructions(kind, N2, binary)
    print("%s: %.0f instructions per request" % (kind, (b - a) / (N2 - N1)))


if __name__ == "__main__":
    main()
