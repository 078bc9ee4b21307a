#!/usr/bin/env python3
"""Upstream protocol and TLS choices of a cluster:

* HttpProtocolOptions auto_config: ALPN picks HTTP/2 or HTTP/1.1 per host.
  Against the Go interop server (TLS, ALPN h2 + http/1.1) requests go over
  HTTP/2 and share the probe connection; against Python `ssl` servers that
  offer only http/1.1, or no ALPN at all, they go over HTTP/1.1.  Bodies
  sent while the protocol is being learnt arrive intact.
* use_downstream_protocol_config: HTTP/2 downstream -> HTTP/2 upstream,
  HTTP/1.1 -> HTTP/1.1 (Go h2c server, which reports the protocol).
* auto_sni: SNI from the request's host, connections pooled per SNI.
* Upstream TLS session resumption (UpstreamTlsContext max_session_keys,
  default 1; 0 turns it off): cluster.<name>.ssl.session_reused.
* auto_config without TLS is a located config error.
"""

import concurrent.futures
import hashlib
import os
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pftest  # noqa: E402
import test_tls  # noqa: E402
from pftest import (LOCAL, TF, ClassProxyTestCase, HttpConn, ProxyTestCase,  # noqa: E402
                    bootstrap, cluster, curl, listener, match_prefix, route, vhost)
from test_upstream_h2 import EchoServer  # noqa: E402

UP_TLS_TYPE = test_tls.UP_TLS_TYPE
HPO = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
HPO_TYPE = "type.googleapis.com/" + HPO


def setUpModule():
    test_tls.setUpModule()      # CA + certificates (up.crt: DNS:upstream.local)


class PyTlsUpstream:
    """HTTPS upstream on Python `ssl`: GET answers "py <proto> sni=<sni>",
    POST echoes the body.  alpn: the protocols it offers (None: no ALPN).
    keep_alive False answers HTTP/1.0-style (one request per connection)."""

    def __init__(self, alpn=None, keep_alive=True):
        self.snis = []
        self.connections = 0
        self.lock = threading.Lock()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(test_tls._path("up.crt"), test_tls._path("up.key"))
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        owner = self

        def on_sni(sock, name, c):
            sock.pf_sni = name
            with owner.lock:
                owner.snis.append(name)
        ctx.sni_callback = on_sni

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def setup(self):
                with owner.lock:
                    owner.connections += 1
                super().setup()

            def answer(self, body):
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.send_header("x-alpn", str(self.connection.selected_alpn_protocol()))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self.answer(("py %s sni=%s" % (self.request_version, getattr(
                    self.connection, "pf_sni", None))).encode())

            def do_POST(self):
                n = int(self.headers.get("content-length", "0"))
                self.answer(self.rfile.read(n))

            def log_message(self, *a):
                pass

        self.srv, self.port = test_tls.serve_https(ctx, H)

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def tls_transport(sni="upstream.local", **extra):
    vc = {"trusted_ca": {"filename": test_tls._path("ca.crt")}}
    tc = {"@type": UP_TLS_TYPE, "common_tls_context": {"validation_context": vc}}
    if sni:
        tc["sni"] = sni
    tc.update(extra)
    return {"name": "envoy.transport_sockets.tls", "typed_config": tc}


def hpo(**opts):
    return {HPO: dict({"@type": HPO_TYPE}, **opts)}


def auto_cluster(name, port, **tls_extra):
    return cluster(name, [port], connect_timeout="2s",
                   transport_socket=tls_transport(**tls_extra),
                   typed_extension_protocol_options=hpo(auto_config={
                       "http_protocol_options": {}, "http2_protocol_options": {}}))


class UpstreamProtocolTest(ClassProxyTestCase):
    proxy_kwargs = {"concurrency": 1}   # one pool per host: connection counts are exact

    @classmethod
    def setup_upstreams(cls):
        # Go: TLS with ALPN h2 + http/1.1; and an h2c instance for
        # use_downstream_protocol_config.
        cls.go_tls = EchoServer("go-tls", ["-tls-cert", test_tls._path("up.crt"),
                                           "-tls-key", test_tls._path("up.key")])
        cls.go_h2c = EchoServer("go-h2c")
        cls.py_h1 = PyTlsUpstream(alpn=["http/1.1"])
        cls.py_none = PyTlsUpstream(alpn=None)
        cls.py_sni = PyTlsUpstream(alpn=None)
        cls.py_close = PyTlsUpstream(alpn=None, keep_alive=False)
        cls.py_close_nokeys = PyTlsUpstream(alpn=None, keep_alive=False)

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            for u in (cls.go_tls, cls.go_h2c):
                u.stop()
            for u in (cls.py_h1, cls.py_none, cls.py_sni, cls.py_close, cls.py_close_nokeys):
                u.close()

    @classmethod
    def make_config(cls):
        routes = [
            route(match_prefix("/auto_h2"), "auto_h2"),
            route(match_prefix("/auto_h1"), "auto_h1"),
            route(match_prefix("/auto_none"), "auto_none"),
            route(match_prefix("/downstream"), "downstream"),
            route(match_prefix("/sni"), "sni"),
            route(match_prefix("/resume"), "resume"),
            route(match_prefix("/noresume"), "noresume"),
        ]
        clusters = [
            auto_cluster("auto_h2", cls.go_tls.http_port),
            auto_cluster("auto_h1", cls.py_h1.port),
            auto_cluster("auto_none", cls.py_none.port),
            cluster("downstream", [cls.go_h2c.http_port], connect_timeout="2s",
                    typed_extension_protocol_options=hpo(use_downstream_protocol_config={
                        "http_protocol_options": {}, "http2_protocol_options": {}})),
            cluster("sni", [cls.py_sni.port], connect_timeout="2s",
                    transport_socket=tls_transport(sni=None),
                    typed_extension_protocol_options=hpo(
                        explicit_http_config={"http_protocol_options": {}},
                        upstream_http_protocol_options={"auto_sni": True})),
            cluster("resume", [cls.py_close.port], connect_timeout="2s",
                    transport_socket=tls_transport()),
            cluster("noresume", [cls.py_close_nokeys.port], connect_timeout="2s",
                    transport_socket=tls_transport(max_session_keys=0)),
        ]
        return bootstrap([listener("l", cls.port, [vhost("v", ["*"], routes)])], clusters,
                         admin_port=cls.admin_port)

    def stat(self, name):
        return test_tls.get_stats(self.admin_port).get(name, 0)

    def test_auto_config_h2_host_multiplexes_on_the_probe(self):
        # Concurrent first requests wait for the one probe connection, then
        # share it over HTTP/2; POST bodies queued meanwhile arrive intact.
        bodies = [pftest.pattern_bytes(1000 * i + 1, i) for i in range(12)]

        def post(body):
            with HttpConn(self.port) as c:
                return c.request("POST", "/auto_h2/x", body=body)

        with concurrent.futures.ThreadPoolExecutor(12) as ex:
            rs = list(ex.map(post, bodies))
        for body, r in zip(bodies, rs):
            self.assertEqual(r.status, 200, r.body[:200])
            self.assertEqual(r.headers.get("x-echo-proto"), "HTTP/2.0")
            self.assertEqual(hashlib.sha256(r.body).digest(), hashlib.sha256(body).digest())
        self.assertEqual(self.stat("cluster.auto_h2.upstream_cx_total"), 1)
        self.assertEqual(self.stat("cluster.auto_h2.upstream_cx_http2_total"), 1)
        self.assertEqual(self.stat("cluster.auto_h2.upstream_cx_http1_total"), 0)
        r = pftest.http_get(self.port, "/auto_h2/again")
        self.assertEqual(r.headers.get("x-echo-proto"), "HTTP/2.0")
        self.assertEqual(self.stat("cluster.auto_h2.upstream_cx_total"), 1)

    def test_auto_config_http11_host(self):
        def get(i):
            with HttpConn(self.port) as c:
                return c.get("/auto_h1/%d" % i)

        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            rs = list(ex.map(get, range(4)))
        for r in rs:
            self.assertEqual(r.status, 200, r.body)
            self.assertTrue(r.body.startswith(b"py HTTP/1.1"), r.body)
            self.assertEqual(r.headers.get("x-alpn"), "http/1.1")
        r = pftest.http_get(self.port, "/auto_h1/post-probe")
        self.assertEqual(r.status, 200)
        with HttpConn(self.port) as c:
            r = c.request("POST", "/auto_h1/p", body=b"x" * 70000)
        self.assertEqual(r.body, b"x" * 70000)
        self.assertGreaterEqual(self.stat("cluster.auto_h1.upstream_cx_http1_total"), 1)
        self.assertEqual(self.stat("cluster.auto_h1.upstream_cx_http2_total"), 0)

    def test_auto_config_host_without_alpn_gets_http11(self):
        with HttpConn(self.port) as c:
            r = c.request("POST", "/auto_none/p", body=b"hello")
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.body, b"hello")
            self.assertEqual(r.headers.get("x-alpn"), "None")
            r = c.get("/auto_none/again")
            self.assertTrue(r.body.startswith(b"py HTTP/1.1"), r.body)

    def test_use_downstream_protocol_config(self):
        r = curl(["-i", "--http2-prior-knowledge",
                  "http://%s:%d/downstream/a" % (LOCAL, self.port)])
        self.assertIn(b"x-echo-proto: HTTP/2.0", r.stdout, r.stderr)
        r = curl(["-i", "--http1.1", "http://%s:%d/downstream/b" % (LOCAL, self.port)])
        self.assertIn(b"x-echo-proto: HTTP/1.1", r.stdout, r.stderr)

    def test_auto_sni_pools_per_sni(self):
        with HttpConn(self.port) as c:
            for host in ("a.example.com", "b.example.com:8080", "a.example.com"):
                r = c.get("/sni", host=host)
                self.assertEqual(r.status, 200, r.body)
                self.assertEqual(r.body.decode().split("sni=")[1], host.split(":")[0],
                                 (self.py_sni.snis, self.stat("cluster.sni.upstream_cx_total")))
        # a, b, then a again on a's pooled connection.
        self.assertEqual(self.stat("cluster.sni.upstream_cx_total"), 2)
        self.assertEqual(sorted(self.py_sni.snis), ["a.example.com", "b.example.com"])

    def test_session_resumption(self):
        for i in range(3):      # the upstream closes after each answer
            r = pftest.http_get(self.port, "/resume/%d" % i)
            self.assertEqual(r.status, 200, r.body)
        pftest.wait_until(lambda: self.stat("cluster.resume.ssl.handshake") >= 3, 5 * TF,
                          what="3 handshakes")
        self.assertGreaterEqual(self.stat("cluster.resume.ssl.session_reused"), 2)

    def test_max_session_keys_zero_never_resumes(self):
        for i in range(3):
            r = pftest.http_get(self.port, "/noresume/%d" % i)
            self.assertEqual(r.status, 200, r.body)
        pftest.wait_until(lambda: self.stat("cluster.noresume.ssl.handshake") >= 3, 5 * TF,
                          what="3 handshakes")
        self.assertEqual(self.stat("cluster.noresume.ssl.session_reused"), 0)


class AutoConfigDeadHostTest(ProxyTestCase):
    def test_probe_connect_failure_is_503_uf(self):
        port, admin = pftest.free_port(), pftest.free_port()
        dead = pftest.free_port()
        cfg = bootstrap([listener("l", port, [vhost("v", ["*"], [
            route(match_prefix("/"), "auto")])])], [auto_cluster("auto", dead)],
            admin_port=admin)
        self.start_proxy(cfg)
        for _ in range(2):
            r = pftest.http_get(port, "/x")
            self.assertEqual(r.status, 503)
            self.assertIn(b"connection failure", r.body)


class AutoConfigErrorTest(ProxyTestCase):
    def validate(self, clusters):
        cfg = bootstrap([listener("l", pftest.free_port(), [vhost("v", ["*"], [
            route(match_prefix("/"), clusters[0]["name"])])])], clusters)
        rc, out = test_tls.TlsConfigErrorTest.validate(self, cfg)
        self.assertNotEqual(rc, 0, out)
        self.assertRegex(out, r"\.yaml:\d+:\d+: ")
        return out

    def test_auto_config_needs_tls(self):
        out = self.validate([cluster("c", [1], typed_extension_protocol_options=hpo(
            auto_config={"http2_protocol_options": {}}))])
        self.assertIn("auto_config needs a transport socket that negotiates ALPN", out)

    def test_one_protocol_config_required(self):
        out = self.validate([cluster("c", [1], typed_extension_protocol_options=hpo(
            explicit_http_config={"http2_protocol_options": {}}, auto_config={}))])
        self.assertIn("only one of 'explicit_http_config' and 'auto_config'", out)
        out = self.validate([cluster("c", [1], typed_extension_protocol_options=hpo())])
        self.assertIn("missing required field: one of", out)

    def test_http3_not_supported(self):
        out = self.validate([cluster("c", [1], transport_socket=tls_transport(),
                                     typed_extension_protocol_options=hpo(
                                         auto_config={"http3_protocol_options": {}}))])
        self.assertIn("http3_protocol_options", out)


if __name__ == "__main__":
    pftest.main()
