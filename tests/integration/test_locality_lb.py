#!/usr/bin/env python3
"""Locality weighted load balancing (common_lb_config.locality_weighted_lb_config)
through the binary: the split between two localities of one priority follows
their load_balancing_weight, and moves when a locality's hosts fail health
checks (effective weight = weight x min(1, 1.4 x healthy / total), Envoy).
Also runs Envoy's locality-load-balancing example with its hostnames rewritten
to loopback: priority 0 takes everything, then its failure spreads the load
over the two localities of priority 1."""

import collections
import copy
import os
import threading

import yaml

import pftest
from pftest import HttpConn, ProxyTestCase, bootstrap, listener, sockaddr, vhost

HC = {"timeout": "0.5s", "interval": "0.1s", "no_traffic_interval": "0.1s",
      "unhealthy_threshold": 1, "healthy_threshold": 1,
      "http_health_check": {"path": "/healthz"}}


class Switchable:
    """An upstream that answers 503 to everything while .down is set."""

    def __init__(self, test, name):
        self.down = threading.Event()
        self.up = test.start_upstream(name, handler=self.handle)

    def handle(self, req, resp):
        if self.down.is_set():
            resp.send(503, b"down")
        else:
            resp.send(200, b"ok")


class LocalityWeightTest(ProxyTestCase):

    def setUp(self):
        self.hosts = {n: Switchable(self, n) for n in ("a1", "a2", "b1", "b2")}
        self.port, self.admin_port = pftest.free_port(), pftest.free_port()

        def lle(zone, weight, names):
            return {"locality": {"region": "r", "zone": zone}, "load_balancing_weight": weight,
                    "lb_endpoints": [{"endpoint": {"address": sockaddr(self.hosts[n].up.port)}}
                                     for n in names]}
        cl = {"name": "svc", "type": "STATIC", "connect_timeout": "0.25s",
              "lb_policy": "ROUND_ROBIN",
              "common_lb_config": {"locality_weighted_lb_config": {}},
              "health_checks": [HC],
              "load_assignment": {"cluster_name": "svc", "endpoints": [
                  lle("a", 1, ["a1", "a2"]), lle("b", 3, ["b1", "b2"])]}}
        routes = [{"match": {"prefix": "/"}, "route": {"cluster": "svc"}}]
        self.proxy = self.start_proxy(bootstrap(
            [listener("main", self.port, [vhost("svc", ["*"], routes)])], [cl], self.admin_port))
        self.wait_healthy(4)

    def wait_healthy(self, n):
        pftest.wait_until(lambda: "cluster.svc.membership_healthy: %d\n" % n in pftest.http_get(
            self.admin_port, "/stats").body.decode(), 10, what="%d healthy hosts" % n)

    def split(self, n):
        c = collections.Counter()
        with HttpConn(self.port) as conn:
            for _ in range(n):
                r = conn.get("/")
                self.assertEqual(r.status, 200, r.body)
                c[r.headers.get("x-upstream-name")[0]] += 1
        return c["a"] / n, c["b"] / n

    def test_split_follows_weights_and_health(self):
        a, b = self.split(2000)
        self.assertAlmostEqual(a, 0.25, delta=0.03)
        self.assertAlmostEqual(b, 0.75, delta=0.03)
        # Half of b fails: availability 70% -> effective weights 1 : 2.1.
        self.hosts["b1"].down.set()
        self.wait_healthy(3)
        a, b = self.split(2000)
        self.assertAlmostEqual(a, 1 / 3.1, delta=0.03)
        self.assertAlmostEqual(b, 2.1 / 3.1, delta=0.03)
        text = pftest.http_get(self.admin_port, "/clusters").body.decode()
        self.assertIn("svc::127.0.0.1:%d::health_flags::/failed_active_hc"
                      % self.hosts["b1"].up.port, text)
        self.assertIn("svc::127.0.0.1:%d::zone::b" % self.hosts["b1"].up.port, text)
        # All of b fails: a takes everything; b back: the 1:3 split returns.
        self.hosts["b2"].down.set()
        self.wait_healthy(2)
        self.assertEqual(self.split(200), (1.0, 0.0))
        self.hosts["b1"].down.clear()
        self.hosts["b2"].down.clear()
        self.wait_healthy(4)
        a, b = self.split(2000)
        self.assertAlmostEqual(a, 0.25, delta=0.03)


def example_path():
    p = os.path.join(pftest.SOURCE_DIR, "..", "shared", "envoy-examples",
                     "locality-load-balancing", "envoy.yaml")
    if os.path.exists(p):
        return p
    return os.path.join(pftest.SOURCE_DIR, "tests", "unit", "data", "envoy-examples",
                        "locality-load-balancing-envoy.yaml")


class LocalityExampleTest(ProxyTestCase):
    """Envoy's examples/locality-load-balancing/envoy.yaml, hosts on loopback."""

    def setUp(self):
        with open(example_path()) as f:
            cfg = yaml.safe_load(f)
        cfg = copy.deepcopy(cfg)
        self.port, self.admin_port = pftest.free_port(), pftest.free_port()
        cfg["admin"]["address"]["socket_address"].update(address="127.0.0.1",
                                                         port_value=self.admin_port)
        lst = cfg["static_resources"]["listeners"][0]["address"]["socket_address"]
        lst.update(address="127.0.0.1", port_value=self.port)
        cl = cfg["static_resources"]["clusters"][0]
        # Faster checks than the example's 2s, so the test is quick.
        cl["health_checks"][0].update(interval="0.1s", no_traffic_interval="0.1s",
                                      no_traffic_healthy_interval="0.1s", timeout="0.5s")
        self.hosts = {}
        for lle in cl["load_assignment"]["endpoints"]:
            for lbe in lle["lb_endpoints"]:
                ep = lbe["endpoint"]
                name = ep["hostname"]
                s = self.hosts[name] = Switchable(self, name)
                ep["address"]["socket_address"].update(address="127.0.0.1", port_value=s.up.port)
                ep["health_check_config"]["port_value"] = s.up.port
        self.assertEqual(sorted(self.hosts), ["backend-local-1", "backend-local-2",
                                              "backend-remote-1", "backend-remote-2"])
        self.start_proxy(cfg)
        self.wait_healthy(4)

    def wait_healthy(self, n):
        pftest.wait_until(lambda: "cluster.backend.membership_healthy: %d\n" % n in
                          pftest.http_get(self.admin_port, "/stats").body.decode(), 10,
                          what="%d healthy hosts" % n)

    def names(self, n):
        c = collections.Counter()
        with HttpConn(self.port) as conn:
            for _ in range(n):
                r = conn.get("/")
                self.assertEqual(r.status, 200, r.body)
                c[r.headers.get("x-upstream-name")] += 1
        return c

    def test_priority_then_localities(self):
        self.assertEqual(self.names(50), {"backend-local-1": 50})
        self.hosts["backend-local-1"].down.set()
        self.wait_healthy(3)
        # Priority 1 holds two localities of weight 1 each.
        self.assertEqual(self.names(100), {"backend-local-2": 50, "backend-remote-1": 50})
        self.hosts["backend-local-1"].down.clear()
        self.wait_healthy(4)
        self.assertEqual(self.names(20), {"backend-local-1": 20})


if __name__ == "__main__":
    pftest.main()
