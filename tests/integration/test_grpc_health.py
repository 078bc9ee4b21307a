#!/usr/bin/env python3
"""grpc_health_check through the binary, against real grpcio servers
(python3-grpcio, raw-bytes generic handlers: no generated code).

Two hosts serve grpc.health.v1.Health/Check and a tiny "who answered"
method.  Host A flips SERVING -> NOT_SERVING -> SERVING: its health flag in
admin /clusters follows, and gRPC traffic through pilotfish leaves it and
comes back.  The check carries service_name and initial_metadata."""

import collections
import threading
from concurrent import futures

import grpc

import pftest
from pftest import LOCAL, ProxyTestCase, bootstrap, listener, vhost
from test_upstream_h2 import h2_cluster

SERVING, NOT_SERVING = 1, 2
WHO = "/pilotfish.test.Who/Name"


def _parse_service(req):
    """HealthCheckRequest.service (field 1) from the raw message."""
    if len(req) >= 2 and req[0] == 0x0A:
        return req[2:2 + req[1]].decode()
    return ""


class GrpcHost:
    """grpcio server: Health/Check answers self.status; Who/Name its name."""

    def __init__(self, name):
        self.name = name
        self.status = SERVING
        self.lock = threading.Lock()
        self.checks = []                # (service, metadata dict) per Check

        def check(request, context):
            with self.lock:
                self.checks.append((_parse_service(request), dict(context.invocation_metadata())))
                return b"\x08" + bytes([self.status])

        def who(request, context):
            return self.name.encode()

        health = grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(check)})
        whos = grpc.method_handlers_generic_handler(
            "pilotfish.test.Who", {"Name": grpc.unary_unary_rpc_method_handler(who)})
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers((health, whos))
        self.port = self.server.add_insecure_port("%s:0" % LOCAL)
        self.server.start()

    def set(self, status):
        with self.lock:
            self.status = status

    def close(self):
        self.server.stop(0)


class GrpcHealthTest(ProxyTestCase):

    def setUp(self):
        self.a, self.b = GrpcHost("A"), GrpcHost("B")
        self.addCleanup(self.a.close)
        self.addCleanup(self.b.close)
        self.port, self.admin_port = pftest.free_port(), pftest.free_port()
        hc = {"timeout": "1s", "interval": "0.1s", "no_traffic_interval": "0.1s",
              "unhealthy_threshold": 1, "healthy_threshold": 1,
              "grpc_health_check": {
                  "service_name": "pilotfish.Svc", "authority": "hc.example",
                  "initial_metadata": [{"header": {"key": "X-HC-Token", "value": "t1"}}]}}
        cl = h2_cluster("backend", [self.a.port, self.b.port], health_checks=[hc])
        routes = [{"match": {"prefix": "/"}, "route": {"cluster": "backend"}}]
        self.start_proxy(bootstrap([listener("main", self.port, [vhost("v", ["*"], routes)])],
                                   [cl], self.admin_port))
        self.channel = grpc.insecure_channel("%s:%d" % (LOCAL, self.port))
        self.addCleanup(self.channel.close)
        self.call = self.channel.unary_unary(WHO)
        self.wait_healthy(2)

    def admin(self, path):
        return pftest.http_get(self.admin_port, path).body.decode()

    def wait_healthy(self, n):
        pftest.wait_until(lambda: "cluster.backend.health_check.healthy: %d\n" % n in
                          self.admin("/stats"), 10, what="%d healthy hosts" % n)

    def flags(self, host):
        prefix = "backend::127.0.0.1:%d::health_flags::" % host.port
        for line in self.admin("/clusters").splitlines():
            if line.startswith(prefix):
                return line[len(prefix):]
        self.fail("no health_flags line for %s" % prefix)

    def who(self, n):
        return collections.Counter(self.call(b"", timeout=5).decode() for _ in range(n))

    def test_flip_serving_not_serving_serving(self):
        service, md = self.a.checks[0]
        self.assertEqual(service, "pilotfish.Svc")
        self.assertEqual(md.get("x-hc-token"), "t1")
        self.assertEqual(self.flags(self.a), "healthy")
        self.assertEqual(set(self.who(40)), {"A", "B"})

        self.a.set(NOT_SERVING)
        self.wait_healthy(1)
        self.assertEqual(self.flags(self.a), "/failed_active_hc")
        self.assertEqual(self.flags(self.b), "healthy")
        self.assertEqual(self.who(40), {"B": 40})
        stats = self.admin("/stats")
        self.assertNotIn("cluster.backend.health_check.failure: 0\n", stats)
        # A NOT_SERVING answer is a failed check, not a network failure.
        self.assertIn("cluster.backend.health_check.network_failure: 0\n", stats)

        self.a.set(SERVING)
        self.wait_healthy(2)
        self.assertEqual(self.flags(self.a), "healthy")
        self.assertEqual(set(self.who(40)), {"A", "B"})


if __name__ == "__main__":
    pftest.main()
