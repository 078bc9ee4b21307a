"""route.request_mirror_policies through the real binary: the shadow cluster
gets a copy of the request (headers and body) with "-shadow" appended to the
host, runtime_fraction decides which requests are mirrored, and a dead or
stuck shadow never changes or delays the client's answer.  The Envoy example
route-mirror/envoy.yaml is run with its addresses rewritten to loopback."""

import os
import threading
import unittest

import yaml

import pftest
from pftest import (HttpConn, ProxyTestCase, cluster, free_port, match_prefix, route,
                    simple_bootstrap, wait_until)

EXAMPLE = "/work/shared/envoy-examples/route-mirror/envoy.yaml"


stat = pftest.stat


def post(port, path):
    with HttpConn(port) as c:
        return c.request("POST", path, host="127.0.0.1")


def held(release):
    """An upstream handler that answers only once `release` is set."""
    def handler(req, resp):
        req.read_body()
        release.wait(30)
        resp.send(200, b"shadow\n")
    return handler


def recorder(req, resp):
    req.read_body()
    resp.send(200, b"ok\n")


class MirrorExampleTest(ProxyTestCase):
    """The Envoy example, with loopback addresses."""

    def setUp(self):
        self.ups = {n: self.start_upstream(n, recorder)
                    for n in ("service1", "service1-mirror", "service2", "service2-mirror")}
        with open(EXAMPLE) as f:
            cfg = yaml.safe_load(f)
        self.port, self.adm = free_port(), free_port()
        cfg["static_resources"]["listeners"][0]["address"]["socket_address"].update(
            address="127.0.0.1", port_value=self.port)
        for c in cfg["static_resources"]["clusters"]:
            ep = c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
            ep["address"]["socket_address"].update(address="127.0.0.1",
                                                   port_value=self.ups[c["name"]].port)
        cfg["admin"] = {"address": {"socket_address": {"address": "127.0.0.1",
                                                        "port_value": self.adm}}}
        self.start_proxy(cfg)

    def test_example_validates(self):
        r = pftest.run_binary(["--mode", "validate", "-c", EXAMPLE], timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_cluster_mirror_gets_shadow_host_and_body(self):
        body = os.urandom(100 * 1024)       # several chunks of the kept body
        with HttpConn(self.port) as c:
            r = c.request("POST", "/service/1/a?x=1", body=body, host="example.com:8080",
                          headers=[("x-test", "one")])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"ok\n")
        main = self.ups["service1"].wait_requests(1)[0]
        self.assertEqual(main.headers.get("host"), "example.com:8080")
        shadow = self.ups["service1-mirror"].wait_requests(1)[0]
        self.assertEqual(shadow.headers.get("host"), "example.com-shadow:8080")
        self.assertEqual(shadow.method, "POST")
        self.assertEqual(shadow.target, "/service/1/a?x=1")
        self.assertEqual(shadow.headers.get("x-test"), "one")
        self.assertEqual(shadow.wait_body(), body)
        wait_until(lambda: stat(self.adm, "cluster.service1-mirror.upstream_rq_200") == 1, 5,
                   what="shadow response counted on the mirror cluster")

    def test_cluster_header_mirror(self):
        with HttpConn(self.port) as c:
            self.assertEqual(c.get("/service/2/none").status, 200)
            # The shadow is started when the request is complete, before the
            # main answer: its cluster's request counter is final by now.
            self.assertEqual(stat(self.adm, "cluster.service2-mirror.upstream_rq_total"), 0)
            self.assertEqual(c.get("/service/2/unknown",
                                   headers=[("x-mirror-cluster", "nosuch")]).status, 200)
            r = c.get("/service/2/yes", headers=[("x-mirror-cluster", "service2-mirror")])
        self.assertEqual(r.status, 200)
        shadow = self.ups["service2-mirror"].wait_requests(1)[0]
        self.assertEqual(shadow.path, "/service/2/yes")
        self.assertEqual(shadow.headers.get("host"), "example.com-shadow")
        self.assertEqual(stat(self.adm, "cluster.service2-mirror.upstream_rq_total"), 1)
        self.assertEqual(len(self.ups["service2"].requests), 3)


class MirrorPolicyTest(ProxyTestCase):

    def proxy(self, mirror_endpoints, policy, main_handler=recorder, shadow_handler=recorder):
        self.main = self.start_upstream("main", main_handler)
        self.shadow = None
        if mirror_endpoints is None:
            self.shadow = self.start_upstream("shadow", shadow_handler)
            mirror_endpoints = [self.shadow.port]
        port, adm = free_port(), free_port()
        mp = {"cluster": "mirror"}
        mp.update(policy)
        r = route(match_prefix("/"), "app", request_mirror_policies=[mp])
        b = simple_bootstrap(port, adm, [r], [cluster("app", [self.main.port]),
                                              cluster("mirror", mirror_endpoints)])
        b["layered_runtime"] = {"layers": [{"name": "admin", "admin_layer": {}}]}
        self.start_proxy(b)
        return port, adm

    def test_runtime_fraction_zero_mirrors_nothing(self):
        port, adm = self.proxy(None, {"runtime_fraction": {
            "default_value": {"numerator": 0, "denominator": "HUNDRED"},
            "runtime_key": "mirror.pct"}})
        with HttpConn(port) as c:
            for _ in range(50):
                self.assertEqual(c.get("/x").status, 200)
        self.assertEqual(stat(adm, "cluster.mirror.upstream_rq_total"), 0)
        self.assertEqual(len(self.shadow.requests), 0)
        # The runtime key overrides the default: now every request is mirrored.
        self.assertEqual(post(adm, "/runtime_modify?mirror.pct=100").status, 200)
        with HttpConn(port) as c:
            for _ in range(5):
                self.assertEqual(c.get("/y").status, 200)
        self.assertEqual(len(self.shadow.wait_requests(5)), 5)
        self.assertEqual(stat(adm, "cluster.mirror.upstream_rq_total"), 5)

    def test_shadow_host_goes_before_the_port(self):
        port, _ = self.proxy(None, {})
        hosts = ["[::1]:8080", "[::1]", "svc.local:80", "svc.local"]
        with HttpConn(port) as c:
            for h in hosts:
                self.assertEqual(c.get("/x", host=h).status, 200)
        seen = [r.headers.get("host") for r in self.shadow.wait_requests(4)]
        self.assertEqual(sorted(seen), sorted(["[::1]-shadow:8080", "[::1]-shadow",
                                               "svc.local-shadow:80", "svc.local-shadow"]))

    def test_chunked_body_mirrored(self):
        port, _ = self.proxy(None, {})
        parts = [b"a" * 1000, b"b" * 20000, b"c" * 7]
        with HttpConn(port) as c:
            r = c.request("POST", "/chunked", body=parts, chunked=True)
        self.assertEqual(r.status, 200)
        self.assertEqual(self.main.wait_requests(1)[0].wait_body(), b"".join(parts))
        self.assertEqual(self.shadow.wait_requests(1)[0].wait_body(), b"".join(parts))

    def test_disable_host_suffix(self):
        port, _ = self.proxy(None, {"disable_shadow_host_suffix_append": True,
                                    "trace_sampled": False})
        with HttpConn(port) as c:
            self.assertEqual(c.get("/x", host="svc.local").status, 200)
        self.assertEqual(self.shadow.wait_requests(1)[0].headers.get("host"), "svc.local")

    def test_dead_shadow_cluster_does_not_affect_client(self):
        port, adm = self.proxy([free_port()], {})
        with HttpConn(port) as c:
            for i in range(10):
                r = c.request("POST", "/x", body=b"payload %d" % i)
                self.assertEqual((r.status, r.body), (200, b"ok\n"))
        self.assertEqual(len(self.main.requests), 10)
        wait_until(lambda: stat(adm, "cluster.mirror.upstream_cx_connect_fail") == 10, 5,
                   what="shadow connect failures counted on the mirror cluster")
        self.assertEqual(stat(adm, "cluster.app.upstream_rq_200"), 10)

    def test_main_response_does_not_wait_for_shadow(self):
        release = threading.Event()
        self.addCleanup(release.set)
        port, adm = self.proxy(None, {}, shadow_handler=held(release))
        with HttpConn(port) as c:
            r = c.request("POST", "/x", body=b"abc")
            self.assertEqual(r.status, 200)
            # The shadow holds its request unanswered, yet the client has its
            # answer and the connection serves the next request.
            self.assertEqual(c.get("/y").status, 200)
        shadow = self.shadow.wait_requests(2)
        self.assertEqual(shadow[0].wait_body(), b"abc")
        self.assertEqual(stat(adm, "cluster.mirror.upstream_rq_200"), 0)
        release.set()
        wait_until(lambda: stat(adm, "cluster.mirror.upstream_rq_200") == 2, 5,
                   what="shadow answers arrive later")

    def test_body_over_buffer_limit_abandons_shadow(self):
        port, adm = self.proxy(None, {})
        body = b"z" * (1024 * 1024 + 1)
        with HttpConn(port) as c:
            r = c.request("POST", "/big", body=body)
        self.assertEqual(r.status, 200)
        self.assertEqual(self.main.wait_requests(1)[0].body_len, len(body))
        self.assertEqual(stat(adm, "cluster.app.retry_or_shadow_abandoned"), 1)
        self.assertEqual(stat(adm, "cluster.mirror.upstream_rq_total"), 0)

    def test_most_specific_policy_list_applies(self):
        self.main = self.start_upstream("main", recorder)
        ups = {n: self.start_upstream(n, recorder) for n in ("m_rc", "m_vh", "m_route")}
        port, adm = free_port(), free_port()
        vh = pftest.vhost("svc", ["svc"], [
            route(match_prefix("/own"), "app",
                  request_mirror_policies=[{"cluster": "m_route"}]),
            route(match_prefix("/"), "app")])
        vh["request_mirror_policies"] = [{"cluster": "m_vh"}]
        other = pftest.vhost("other", ["*"], [route(match_prefix("/"), "app")])
        lst = pftest.listener("main", port, [vh, other])
        lst["filter_chains"][0]["filters"][0]["typed_config"]["route_config"][
            "request_mirror_policies"] = [{"cluster": "m_rc"}]
        self.start_proxy(pftest.bootstrap(
            [lst], [cluster("app", [self.main.port])] +
            [cluster(n, [u.port]) for n, u in ups.items()], adm))
        with HttpConn(port) as c:
            for path, host in (("/own", "svc"), ("/x", "svc"), ("/y", "elsewhere")):
                self.assertEqual(c.get(path, host=host).status, 200)
        # Never merged: each request went to exactly one mirror list.
        self.assertEqual([r.path for r in ups["m_route"].wait_requests(1)], ["/own"])
        self.assertEqual([r.path for r in ups["m_vh"].wait_requests(1)], ["/x"])
        self.assertEqual([r.path for r in ups["m_rc"].wait_requests(1)], ["/y"])
        for n in ups:
            self.assertEqual(stat(adm, "cluster.%s.upstream_rq_total" % n), 1)

    def test_config_errors_are_located(self):
        d = pftest.tmpdir("bad")
        for policy, msg in [
                ({"cluster": "nosuch"}, r"request_mirror_policies\[0\]\.cluster: .*nosuch"),
                ({}, r"request_mirror_policies\[0\]: .*cluster"),
                ({"cluster": "app", "cluster_header": "x"}, r"request_mirror_policies\[0\]"),
                ({"cluster": "app", "runtime_fraction": {"runtime_key": "k"}},
                 r"request_mirror_policies\[0\]\.runtime_fraction: .*default_value")]:
            r = route(match_prefix("/"), "app", request_mirror_policies=[policy])
            path = os.path.join(d, "bad.yaml")
            with open(path, "w") as f:
                f.write(pftest.to_yaml(simple_bootstrap(free_port(), free_port(), [r],
                                                        [cluster("app", [free_port()])])))
            res = pftest.run_binary(["--mode", "validate", "-c", path], timeout=30)
            self.assertNotEqual(res.returncode, 0)
            self.assertRegex((res.stdout + res.stderr).decode(), r"bad\.yaml:\d+:\d+: .*" + msg)


if __name__ == "__main__":
    pftest.main()
