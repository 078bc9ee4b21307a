#!/usr/bin/env python3
"""pilotfish.health (filters/lua/lib/pilotfish/health.lua): cross-cloud
health-check translation through the real binary.

Fake probes with each prober's User-Agent (Google Cloud GoogleHC/1.0, AWS
ELB-HealthChecker/2.0, Azure Front Door / Traffic Manager, kubelet, Consul),
an Azure Load Balancer probe recognised by source address only, and generic
probes on configured paths are answered from ONE canonical check:

  GrpcCheckTest    a gRPC grpc.health.v1.Health/Check (a Python grpcio
                   server that flips between SERVING and NOT_SERVING and
                   counts the checks it receives) over an HTTP/2 cluster;
                   the per-worker cache (200 probes -> 1 check); admin
                   POST /healthcheck/fail: load balancers and readiness see
                   503, liveness stays 200; normal traffic passes untouched.
  HttpCheckTest    an HTTP GET to the service's health path while the
                   service answers, fails (500) and goes down (reset), and
                   the "pilotfish" kind (the cluster has a healthy host).
  HealthConfigTest bad options are configuration errors.
"""

import collections
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pftest  # noqa: E402
from pftest import (  # noqa: E402
    LOCAL, TF, BufSock, ClassProxyTestCase, HttpConn, ProxyTestCase, bootstrap,
    build_request, cluster, echo_handler, free_port, listener, main, match_prefix,
    read_response, route, run_binary, to_yaml, vhost, wait_until)

LUA_TYPE = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"
HPO_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
HPO_TYPE = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

# User-Agent -> the prober name pilotfish.health reports in x-pilotfish-probe.
CLOUD_AGENTS = [
    ("GoogleHC/1.0", "gcp"),
    ("ELB-HealthChecker/2.0", "aws-elb"),
    ("Edge Health Probe", "azure-front-door"),
    ("Azure Traffic Manager Endpoint Monitor", "azure-traffic-manager"),
    ("Consul Health Check", "consul"),
]
KUBE_AGENT = "kube-probe/1.29"
AZURE_LB_SOURCE = "127.0.0.2"       # stands in for 168.63.129.16


def h2_cluster(name, ports):
    return cluster(name, ports, connect_timeout="1s", typed_extension_protocol_options={
        HPO_KEY: {"@type": HPO_TYPE,
                  "explicit_http_config": {"http2_protocol_options": {}}}})


def lua_bootstrap(port, admin_port, code, clusters, app_cluster="app"):
    lst = listener("main", port, [vhost("svc", ["*"], [
        route(match_prefix("/"), app_cluster)])])
    hcm = lst["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["http_filters"].insert(0, {"name": "health", "typed_config": {
        "@type": LUA_TYPE, "default_source_code": {"inline_string": code}}})
    return bootstrap([lst], clusters, admin_port)


# --------------------------------------------------------------------------
# A grpc.health.v1.Health server whose answers the test controls


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _parse_service(msg):
    """HealthCheckRequest.service (field 1) from raw protobuf bytes."""
    i = 0
    while i < len(msg):
        tag = msg[i]
        i += 1
        if tag == 0x0A:
            n, shift = 0, 0
            while True:
                b = msg[i]
                i += 1
                n |= (b & 0x7F) << shift
                shift += 7
                if b < 0x80:
                    break
            if tag >> 3 == 1:
                return msg[i:i + n].decode()
            i += n
        else:
            break
    return ""


class HealthServer:
    """grpcio server with a hand-written generic handler for
    grpc.health.v1.Health/Check (raw bytes in and out, no generated code).
    status[service]: 1 SERVING, 2 NOT_SERVING, 3 SERVICE_UNKNOWN, None ->
    NOT_FOUND error (the health protocol's answer for an unknown service)."""

    def __init__(self, services):
        import grpc  # python3-grpcio (installed by tests/interop/build.sh)
        from concurrent import futures
        self.grpc = grpc
        self.lock = threading.Lock()
        self.status = dict(services)
        self.calls = collections.Counter()

        def check(request, context):
            svc = _parse_service(request)
            with self.lock:
                self.calls[svc] += 1
                st = self.status.get(svc)
            if st is None:
                context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
            return b"\x08" + _varint(st) if st else b""

        handler = grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(check)})
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self.server.add_generic_rpc_handlers((handler,))
        self.port = self.server.add_insecure_port("%s:0" % LOCAL)
        self.server.start()

    def set(self, service, status):
        with self.lock:
            if status is None:
                self.status.pop(service, None)
            else:
                self.status[service] = status

    def count(self, service):
        with self.lock:
            return self.calls[service]

    def close(self):
        self.server.stop(0)


# --------------------------------------------------------------------------
# Probing helpers


class OneWorker:
    """Runs the class proxy with one worker: the cache is per worker, so with
    one worker every probe sees the same cached result and the check counts
    are exact."""

    @classmethod
    def setUpClass(cls):
        orig = pftest.Proxy.__init__

        def one_worker(self, *a, **kw):
            kw.setdefault("concurrency", 1)
            orig(self, *a, **kw)
        pftest.Proxy.__init__ = one_worker
        try:
            super().setUpClass()
        finally:
            pftest.Proxy.__init__ = orig


class ProbeMixin:
    def probe(self, ua=None, path="/", host="svc", method="GET", source=None, headers=()):
        hdrs = ([("User-Agent", ua)] if ua else []) + list(headers)
        if source is None:
            with HttpConn(self.port) as c:
                return c.request(method, path, headers=hdrs, host=host)
        s = socket.socket()
        try:
            s.settimeout(10 * TF)
            s.bind((source, 0))
            s.connect((LOCAL, self.port))
            s.sendall(build_request(method, path, hdrs, host=host))
            return read_response(BufSock(s), method)
        finally:
            s.close()

    def admin_post(self, path):
        with HttpConn(self.admin_port) as c:
            r = c.request("POST", path, host="127.0.0.1")
        self.assertEqual(r.status, 200, r)

    def assertAnswer(self, r, status, body, prober=None):
        self.assertEqual((r.status, r.body.decode()), (status, body), r)
        self.assertEqual(r.headers.get("cache-control"), "no-store", r)
        if prober is not None:
            self.assertEqual(r.headers.get("x-pilotfish-probe"), prober, r)

    def all_probes(self, **kw):
        """(label, response, prober) for every load balancer / readiness probe."""
        out = [(ua, self.probe(ua, **kw), name) for ua, name in CLOUD_AGENTS]
        out.append(("kubelet readiness", self.probe(KUBE_AGENT, path="/ready", **kw), "kubelet"))
        out.append(("azure lb", self.probe(None, source=AZURE_LB_SOURCE, **kw),
                    "azure-load-balancer"))
        out.append(("generic", self.probe("curl/8.0", path="/healthz", **kw), "generic"))
        return out


GRPC_SCRIPT = r"""
local H = require("pilotfish.health")
local fast = H.new({check = {kind = "grpc", cluster = "app_grpc", service = "my.Service",
                             timeout_ms = 500},
                    cache_ms = 100, paths = {"/healthz", "/ready"},
                    liveness_paths = {"/livez"}, sources = {"127.0.0.2"}})
local cached = H.new({check = {kind = "grpc", cluster = "app_grpc", service = "cached.Service",
                               timeout_ms = 500},
                      cache_ms = 600000, paths = {"/healthz"}})
function envoy_on_request(h)
  if (h:headers():get(":authority") or ""):find("^cached") then
    cached:handle(h)
  else
    fast:handle(h)
  end
end
"""


class GrpcCheckTest(OneWorker, ProbeMixin, ClassProxyTestCase):

    @classmethod
    def setup_upstreams(cls):
        cls.hs = HealthServer({"my.Service": 1, "cached.Service": 1})
        cls.app = cls.add_upstream("app")

    @classmethod
    def make_config(cls):
        return lua_bootstrap(cls.port, cls.admin_port, GRPC_SCRIPT, [
            cluster("app", [cls.app.port]), h2_cluster("app_grpc", [cls.hs.port])])

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.hs.close()

    def wait_answer(self, status, body, **kw):
        def ok():
            r = self.probe("GoogleHC/1.0", **kw)
            return r if (r.status, r.body.decode()) == (status, body) else None
        return wait_until(ok, 10 * TF, what="probe answer %d %r" % (status, body))

    def test_every_prober_serving(self):
        self.hs.set("my.Service", 1)
        self.wait_answer(200, "OK")
        for label, r, name in self.all_probes():
            with self.subTest(prober=label):
                self.assertAnswer(r, 200, "OK", name)
        r = self.probe(KUBE_AGENT, path="/livez")
        self.assertAnswer(r, 200, "OK", "kubelet")
        # Front Door probes with HEAD by default: status only
        r = self.probe("Edge Health Probe", method="HEAD")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"", r)

    def test_flip_not_serving_and_back(self):
        self.hs.set("my.Service", 2)
        try:
            self.wait_answer(503, "UNAVAILABLE: NOT_SERVING")
            for label, r, name in self.all_probes():
                with self.subTest(prober=label):
                    self.assertAnswer(r, 503, "UNAVAILABLE: NOT_SERVING", name)
            # liveness follows the check (liveness = "check"); only drain is ignored
            self.assertAnswer(self.probe(KUBE_AGENT, path="/livez"), 503,
                              "UNAVAILABLE: NOT_SERVING", "kubelet")
            self.hs.set("my.Service", 3)
            self.wait_answer(503, "UNAVAILABLE: SERVICE_UNKNOWN")
            self.hs.set("my.Service", None)     # unknown service: NOT_FOUND error
            self.wait_answer(503, "UNAVAILABLE: gRPC health check: grpc-status 5")
        finally:
            self.hs.set("my.Service", 1)
        self.wait_answer(200, "OK")
        for label, r, name in self.all_probes():
            with self.subTest(prober=label):
                self.assertAnswer(r, 200, "OK", name)

    def test_cache_bounds_checks(self):
        r = self.probe("GoogleHC/1.0", host="cached")
        self.assertAnswer(r, 200, "OK", "gcp")
        self.assertEqual(self.hs.count("cached.Service"), 1)
        uas = [ua for ua, _ in CLOUD_AGENTS] + [KUBE_AGENT]
        errors = []

        def storm(k):
            try:
                with HttpConn(self.port) as c:
                    for i in range(25):
                        r = c.get("/", headers=[("User-Agent", uas[(k + i) % len(uas)])],
                                  host="cached")
                        if (r.status, r.body) != (200, b"OK"):
                            errors.append(r)
            except Exception as e:      # noqa: BLE001 (reported below)
                errors.append(e)
        threads = [threading.Thread(target=storm, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60 * TF)
        self.assertEqual(errors, [])
        # 201 probes inside the cache window: the service saw one check
        self.assertEqual(self.hs.count("cached.Service"), 1)

    def test_normal_traffic_passes_untouched(self):
        n = len(self.app.requests)
        with HttpConn(self.port) as c:
            r = c.request("POST", "/api/orders?x=1", headers=[
                ("User-Agent", "Mozilla/5.0"), ("X-Custom", "kept")], body=b"payload")
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.headers.get("x-pilotfish-probe"), r)
        echo = r.json()
        self.assertEqual(echo["upstream"], "app")
        self.assertEqual(echo["target"], "/api/orders?x=1")
        self.assertEqual(echo["body"], "payload")
        hdrs = dict((k.lower(), v) for k, v in echo["headers"])
        self.assertEqual(hdrs.get("x-custom"), "kept")
        self.assertEqual(hdrs.get("user-agent"), "Mozilla/5.0")
        self.assertEqual(len(self.app.requests), n + 1)
        # a path that is not a probe path, from an ordinary client
        with HttpConn(self.port) as c:
            r = c.get("/healthz-not-really", headers=[("User-Agent", "curl/8.0")])
        self.assertEqual(r.json()["path"], "/healthz-not-really")

    def test_z_drain(self):
        self.hs.set("my.Service", 1)
        self.wait_answer(200, "OK")
        self.admin_post("/healthcheck/fail")
        try:
            for label, r, name in self.all_probes():
                with self.subTest(prober=label):
                    self.assertAnswer(r, 503, "UNAVAILABLE: draining", name)
            # the cached instance's fresh result does not hide the drain
            self.assertAnswer(self.probe("ELB-HealthChecker/2.0", host="cached"), 503,
                              "UNAVAILABLE: draining", "aws-elb")
            # kubelet liveness stays 200: a draining pod is not killed
            self.assertAnswer(self.probe(KUBE_AGENT, path="/livez"), 200, "OK", "kubelet")
            self.assertAnswer(self.probe("curl/8.0", path="/livez"), 200, "OK", "generic")
            # gRPC health probes get UNAVAILABLE while draining
            with HttpConn(self.port) as c:
                r = c.request("POST", "/grpc.health.v1.Health/Check", headers=[
                    ("Content-Type", "application/grpc"), ("TE", "trailers")],
                    body=b"\x00\x00\x00\x00\x00")
            self.assertEqual((r.status, r.headers.get("grpc-status")), (200, "14"), r)
            # normal traffic still flows while the load balancers fail over
            with HttpConn(self.port) as c:
                r = c.get("/api", headers=[("User-Agent", "Mozilla/5.0")])
            self.assertEqual(r.json()["upstream"], "app")
        finally:
            self.admin_post("/healthcheck/ok")
        for label, r, name in self.all_probes():
            with self.subTest(prober=label, after="healthcheck/ok"):
                self.assertAnswer(r, 200, "OK", name)


# --------------------------------------------------------------------------
# HTTP canonical check and the "pilotfish" kind

HTTP_SCRIPT = r"""
local H = require("pilotfish.health")
local http = H.new({check = {kind = "http", cluster = "app", path = "/internal/health",
                             timeout_ms = 1000},
                    cache_ms = 50, paths = {"/healthz"}, liveness_paths = {"/livez"},
                    sources = {"127.0.0.2", "10.1.0.0/16"}})
local own = H.new({check = {kind = "pilotfish", cluster = "app"}, cache_ms = 0,
                   paths = {"/healthz"}})
local none = H.new({check = {kind = "pilotfish", cluster = "empty"}, cache_ms = 0,
                    paths = {"/healthz"}})
function envoy_on_request(h)
  local host = h:headers():get(":authority") or ""
  if host:find("^own") then own:handle(h)
  elseif host:find("^none") then none:handle(h)
  else http:handle(h) end
end
"""


class HttpCheckTest(OneWorker, ProbeMixin, ClassProxyTestCase):

    @classmethod
    def setup_upstreams(cls):
        cls.mode = "up"
        cls.health_hits = 0

        def handler(req, resp):
            if req.path == "/internal/health":
                cls.health_hits += 1
                if cls.mode == "up":
                    resp.send(200, "fine")
                elif cls.mode == "error":
                    resp.send(500, "broken")
                else:
                    req.read_body()
                    resp.reset()
                return
            echo_handler(req, resp)
        cls.app = cls.add_upstream("app", handler)

    @classmethod
    def make_config(cls):
        return lua_bootstrap(cls.port, cls.admin_port, HTTP_SCRIPT, [
            cluster("app", [cls.app.port]), cluster("empty", [])])

    def wait_answer(self, status, body_prefix, ua="ELB-HealthChecker/2.0"):
        def ok():
            r = self.probe(ua)
            return r if r.status == status and r.body.decode().startswith(body_prefix) else None
        return wait_until(ok, 10 * TF, what="probe answer %d %r" % (status, body_prefix))

    def test_http_service_up_error_down(self):
        type(self).mode = "up"
        self.wait_answer(200, "OK")
        for label, r, name in self.all_probes():
            with self.subTest(prober=label, mode="up"):
                self.assertAnswer(r, 200, "OK", name)
        try:
            type(self).mode = "error"
            self.wait_answer(503, "UNAVAILABLE: HTTP 500")
            for label, r, name in self.all_probes():
                with self.subTest(prober=label, mode="error"):
                    self.assertAnswer(r, 503, "UNAVAILABLE: HTTP 500", name)
            type(self).mode = "reset"        # the service goes down
            r = self.wait_answer(503, "UNAVAILABLE: HTTP 503")
            self.assertEqual(r.headers.get("x-pilotfish-probe"), "aws-elb")
            r = self.probe(KUBE_AGENT, path="/livez")
            self.assertEqual(r.status, 503, r)
        finally:
            type(self).mode = "up"
        self.wait_answer(200, "OK")

    def test_http_cache_bounds_checks(self):
        type(self).mode = "up"
        self.wait_answer(200, "OK")
        before = type(self).health_hits
        start = time.monotonic()
        with HttpConn(self.port) as c:
            for i in range(50):
                r = c.get("/", headers=[("User-Agent", "GoogleHC/1.0")])
                self.assertEqual(r.status, 200, r)
        elapsed_ms = (time.monotonic() - start) * 1000
        hits = type(self).health_hits - before
        # cache_ms = 50: at most one check per started 50 ms window (+1 refresh)
        self.assertLessEqual(hits, int(elapsed_ms / 50) + 2, (hits, elapsed_ms))
        self.assertLess(hits, 50)

    def test_source_cidr(self):
        type(self).mode = "up"
        self.wait_answer(200, "OK")
        # 127.0.0.3 is neither listed nor in 10.1.0.0/16: passes through
        r = self.probe(None, path="/x", source="127.0.0.3")
        self.assertEqual(r.json()["path"], "/x")
        r = wait_until(lambda: (lambda r: r if r.status == 200 else None)(
            self.probe(None, path="/x", source=AZURE_LB_SOURCE)), 10 * TF, what="azure lb 200")
        self.assertAnswer(r, 200, "OK", "azure-load-balancer")

    def test_pilotfish_kind(self):
        self.assertAnswer(self.probe("GoogleHC/1.0", host="own"), 200, "OK", "gcp")
        r = self.probe("GoogleHC/1.0", host="none")
        self.assertAnswer(r, 503, "UNAVAILABLE: 0/0 healthy hosts in empty", "gcp")


# --------------------------------------------------------------------------
# Option validation


class HealthConfigTest(ProbeMixin, ProxyTestCase):
    BAD = [
        ('{check = {kind = "tcp", cluster = "app"}}', 'check.kind must be "grpc", "http" or'),
        ('{check = {kind = "grpc"}}', "check.cluster must name a cluster"),
        ('{check = {kind = "http", cluster = "app"}}', "check.path must be a path"),
        ('{check = {kind = "grpc", cluster = "app"}, cache_ms = -1}',
         "cache_ms must be a non-negative integer"),
        ('{check = {kind = "grpc", cluster = "app"}, paths = {"healthz"}}',
         "paths[1] must be a path starting with '/'"),
        ('{check = {kind = "grpc", cluster = "app"}, cach_ms = 5}', "unknown option cach_ms"),
        ('{check = {kind = "grpc", cluster = "app"}, sources = {"not-an-ip"}}',
         "sources[1]: 'not-an-ip' is not an IP address or IPv4 CIDR"),
    ]

    def test_bad_options_are_config_errors(self):
        for opts, msg in self.BAD:
            with self.subTest(opts=opts):
                code = ('local h = require("pilotfish.health").new(%s)\n'
                        'function envoy_on_request(x) h:handle(x) end\n' % opts)
                cfg = lua_bootstrap(free_port(), None, code, [cluster("app", [free_port()])])
                d = pftest.tmpdir("hcfg")
                path = os.path.join(d, "cfg.yaml")
                with open(path, "w") as f:
                    f.write(to_yaml(cfg))
                r = run_binary(["-c", path, "--mode", "validate"])
                out = (r.stdout + r.stderr).decode(errors="replace")
                self.assertNotEqual(r.returncode, 0, out)
                self.assertIn("pilotfish.health: " + msg, out)

    def test_good_options_validate(self):
        code = ('local h = require("pilotfish.health").new({check = {kind = "grpc", '
                'cluster = "app", service = "my.Service", timeout_ms = 500}, cache_ms = 1000, '
                'paths = {"/healthz", "/ready"}, liveness_paths = {"/livez"}})\n'
                'function envoy_on_request(x) h:handle(x) end\n')
        cfg = lua_bootstrap(free_port(), None, code, [cluster("app", [free_port()])])
        d = pftest.tmpdir("hcfg")
        path = os.path.join(d, "cfg.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(cfg))
        r = run_binary(["-c", path, "--mode", "validate"])
        self.assertEqual(r.returncode, 0, (r.stdout + r.stderr).decode(errors="replace"))


if __name__ == "__main__":
    main()
