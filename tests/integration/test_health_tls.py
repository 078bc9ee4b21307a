#!/usr/bin/env python3
"""Active health checks over the cluster's TLS transport socket (Envoy's
health checkers use the cluster's transport socket: SNI, validation, client
certificate, ALPN).

HTTP: two mTLS Python `ssl` upstreams; the check carries the cluster's SNI
and client certificate, the hosts become healthy, a 503 or a stopped server
marks one /failed_active_hc and traffic leaves it.  gRPC: grpcio servers with
TLS credentials flip SERVING / NOT_SERVING.  A wrong trusted CA fails every
check as a network failure and counts cluster.<name>.ssl.* on the main
thread.  Certificates come from test_tls's helpers (generated at test time).
"""

import collections
import os
import ssl
import sys
from http.server import BaseHTTPRequestHandler

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pftest  # noqa: E402
import test_tls  # noqa: E402
from pftest import LOCAL, TF, HttpConn, ProxyTestCase, bootstrap, cluster, listener, vhost  # noqa: E402
from test_grpc_health import NOT_SERVING, SERVING, WHO, GrpcHost  # noqa: E402
from test_tls import UP_TLS_TYPE, _path, get_stats  # noqa: E402
from test_upstream_h2 import h2_cluster  # noqa: E402


def setUpModule():
    test_tls.make_ca("ca")
    test_tls.make_ca("otherca")
    test_tls.make_cert("up", "upstream", "DNS:upstream.local")
    test_tls.make_cert("client", "client", "URI:spiffe://test/client", client=True)


def upstream_tls(ca, alpn=None):
    """The cluster's transport socket: SNI upstream.local, the CA and SAN to
    verify, a client certificate."""
    ctc = {"validation_context": {
               "trusted_ca": {"filename": _path(ca + ".crt")},
               "match_typed_subject_alt_names": [{"san_type": "DNS",
                                                  "matcher": {"exact": "upstream.local"}}]},
           "tls_certificates": [test_tls.cert("client")]}
    if alpn:
        ctc["alpn_protocols"] = alpn
    return {"name": "envoy.transport_sockets.tls",
            "typed_config": {"@type": UP_TLS_TYPE, "sni": "upstream.local",
                             "common_tls_context": ctc}}


class HcTlsUpstream:
    """mTLS HTTP/1.1 upstream: /healthz answers self.status, anything else
    200 with its name.  Records the SNI, Host and negotiated ALPN of the
    health checks."""

    def __init__(self, name, alpn=None):
        self.name = name
        self.status = 200
        self.snis, self.hc_hosts, self.alpns = [], [], []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if alpn:
            ctx.set_alpn_protocols(alpn)
        ctx.load_cert_chain(_path("up.crt"), _path("up.key"))
        ctx.load_verify_locations(_path("ca.crt"))
        ctx.verify_mode = ssl.CERT_REQUIRED       # the check must present the client cert
        ctx.sni_callback = lambda sock, sni, c: self.snis.append(sni)
        owner = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                if self.path == "/healthz":
                    owner.hc_hosts.append(self.headers.get("host"))
                    owner.alpns.append(self.connection.selected_alpn_protocol())
                    code, body = owner.status, b"hc"
                else:
                    code, body = 200, owner.name.encode()
                self.send_response(code)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv, self.port = test_tls.serve_https(ctx, H)
        self.closed = False

    def close(self):
        if not self.closed:
            self.closed = True
            self.srv.shutdown()
            self.srv.server_close()


HC_TIMING = {"timeout": "1s", "interval": "0.1s", "no_traffic_interval": "0.1s",
             "unhealthy_threshold": 1, "healthy_threshold": 1}


class HealthTlsCase(ProxyTestCase):
    def start(self, clusters):
        self.port, self.admin_port = pftest.free_port(), pftest.free_port()
        routes = [{"match": {"prefix": "/"}, "route": {"cluster": "backend"}}]
        self.start_proxy(bootstrap([listener("main", self.port, [vhost("v", ["*"], routes)])],
                                   clusters, self.admin_port))

    def admin(self, path):
        return pftest.http_get(self.admin_port, path).body.decode()

    def stat(self, name):
        return get_stats(self.admin_port).get(name, 0)

    def wait_healthy(self, n):
        pftest.wait_until(lambda: "cluster.backend.health_check.healthy: %d\n" % n in
                          self.admin("/stats"), 10 * TF, what="%d healthy hosts" % n)

    def flags(self, port):
        prefix = "backend::127.0.0.1:%d::health_flags::" % port
        for line in self.admin("/clusters").splitlines():
            if line.startswith(prefix):
                return line[len(prefix):]
        self.fail("no health_flags line for %s" % prefix)


class HttpHealthTlsTest(HealthTlsCase):
    def setUp(self):
        self.a, self.b = HcTlsUpstream("A"), HcTlsUpstream("B")
        self.addCleanup(self.a.close)
        self.addCleanup(self.b.close)
        hc = dict(HC_TIMING, http_health_check={"path": "/healthz"})
        self.start([cluster("backend", [self.a.port, self.b.port], connect_timeout="2s",
                            transport_socket=upstream_tls("ca"), health_checks=[hc])])

    def names(self, n):
        with HttpConn(self.port) as c:
            return collections.Counter(c.get("/x").body.decode() for _ in range(n))

    def test_healthy_then_503_then_stopped(self):
        self.wait_healthy(2)
        self.assertEqual(self.flags(self.a.port), "healthy")
        # The check spoke TLS with the cluster's SNI and client certificate.
        self.assertEqual(self.a.snis[0], "upstream.local")
        self.assertEqual(self.a.hc_hosts[0], "backend")
        self.assertGreater(self.stat("cluster.backend.ssl.handshake"), 0)
        self.assertEqual(self.stat("cluster.backend.health_check.network_failure"), 0)
        self.assertEqual(set(self.names(20)), {"A", "B"})
        # Each host's checks resume its last TLS session.
        pftest.wait_until(lambda: self.stat("cluster.backend.ssl.session_reused") > 0,
                          10 * TF, what="a resumed health-check session")

        self.a.status = 503
        self.wait_healthy(1)
        self.assertEqual(self.flags(self.a.port), "/failed_active_hc")
        self.assertEqual(self.names(20), {"B": 20})
        # A 503 is a failed check, not a network failure.
        self.assertEqual(self.stat("cluster.backend.health_check.network_failure"), 0)

        self.a.status = 200
        self.wait_healthy(2)
        self.assertEqual(set(self.names(20)), {"A", "B"})

        self.b.close()
        self.wait_healthy(1)
        self.assertEqual(self.flags(self.b.port), "/failed_active_hc")
        self.assertGreater(self.stat("cluster.backend.health_check.network_failure"), 0)
        self.assertEqual(self.names(20), {"A": 20})


class WrongCaHealthTlsTest(HealthTlsCase):
    def setUp(self):
        self.a = HcTlsUpstream("A")
        self.addCleanup(self.a.close)
        hc = dict(HC_TIMING, http_health_check={"path": "/healthz"})
        self.start([cluster("backend", [self.a.port], connect_timeout="2s",
                            transport_socket=upstream_tls("otherca"), health_checks=[hc])])

    def test_wrong_ca_fails_checks(self):
        pftest.wait_until(lambda: self.stat("cluster.backend.health_check.network_failure") >= 2,
                          10 * TF, what="network failures")
        self.assertEqual(self.flags(self.a.port), "/failed_active_hc")
        self.assertEqual(self.stat("cluster.backend.health_check.success"), 0)
        self.assertGreater(self.stat("cluster.backend.ssl.connection_error"), 0)
        self.assertGreater(self.stat("cluster.backend.ssl.fail_verify_error"), 0)
        self.assertEqual(self.a.hc_hosts, [])          # no request went out


class TcpHealthTlsTest(HealthTlsCase):
    def test_tcp_check_passes_after_the_handshake(self):
        # Connecting is not enough on a TLS cluster: the handshake must pass.
        a = HcTlsUpstream("A")
        self.addCleanup(a.close)
        hc = dict(HC_TIMING, tcp_health_check={})
        self.start([
            cluster("backend", [a.port], transport_socket=upstream_tls("ca"), health_checks=[hc]),
            cluster("bad", [a.port], transport_socket=upstream_tls("otherca"),
                    health_checks=[hc])])
        self.wait_healthy(1)
        pftest.wait_until(lambda: self.stat("cluster.bad.health_check.network_failure") >= 1,
                          10 * TF, what="network failures")
        self.assertEqual(self.stat("cluster.bad.health_check.healthy"), 0)
        self.assertEqual(self.stat("cluster.bad.health_check.success"), 0)
        self.assertGreater(self.stat("cluster.backend.ssl.handshake"), 0)


class AlpnHealthTlsTest(HealthTlsCase):
    def test_alpn_offered(self):
        # The server prefers hc-proto, then http/1.1.  An HTTP check offers
        # http/1.1 (the cluster sets no alpn_protocols); tls_options'
        # alpn_protocols replace that.
        plain = HcTlsUpstream("P", alpn=["hc-proto", "http/1.1"])
        opts = HcTlsUpstream("O", alpn=["hc-proto", "http/1.1"])
        self.addCleanup(plain.close)
        self.addCleanup(opts.close)
        hc = dict(HC_TIMING, http_health_check={"path": "/healthz"})
        self.start([
            cluster("backend", [plain.port], transport_socket=upstream_tls("ca"),
                    health_checks=[hc]),
            cluster("opts", [opts.port], transport_socket=upstream_tls("ca"),
                    health_checks=[dict(hc, tls_options={"alpn_protocols": ["hc-proto"]})])])
        pftest.wait_until(lambda: plain.alpns and opts.alpns, 10 * TF, what="checks")
        self.assertEqual(plain.alpns[0], "http/1.1")
        self.assertEqual(opts.alpns[0], "hc-proto")

    def test_bad_alpn_is_a_located_error(self):
        hc = dict(HC_TIMING, http_health_check={"path": "/healthz"},
                  tls_options={"alpn_protocols": ["h2", ""]})
        d = pftest.tmpdir("cfg")
        path = os.path.join(d, "c.yaml")
        with open(path, "w") as f:
            f.write(pftest.to_yaml(bootstrap([], [cluster("backend", [1], health_checks=[hc])])))
        r = pftest.run_binary(["--mode", "validate", "-c", path])
        out = (r.stdout + r.stderr).decode()
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(out, r"c\.yaml:\d+:\d+: static_resources\.clusters\[0\]\.health_checks"
                              r"\[0\]\.tls_options\.alpn_protocols\[1\]: an ALPN protocol is 1 to "
                              r"255 bytes long")


def grpc_tls_creds():
    with open(_path("up.key"), "rb") as k, open(_path("up.crt"), "rb") as c:
        return grpc.ssl_server_credentials([(k.read(), c.read())])


def grpc_tls_cluster(ports, alpn):
    hc = dict(HC_TIMING, grpc_health_check={"service_name": "pilotfish.Svc"})
    return h2_cluster("backend", ports, transport_socket=upstream_tls("ca", alpn),
                      health_checks=[hc])


class GrpcHealthTlsTest(HealthTlsCase):
    def setUp(self):
        creds = grpc_tls_creds()
        self.a, self.b = GrpcHost("A", creds), GrpcHost("B", creds)
        self.addCleanup(self.a.close)
        self.addCleanup(self.b.close)
        # No alpn_protocols: grpcio refuses a connection without h2, so the
        # traffic below also proves the HTTP/2 cluster offers h2 by default.
        self.start([grpc_tls_cluster([self.a.port, self.b.port], None)])
        self.channel = grpc.insecure_channel("%s:%d" % (LOCAL, self.port))
        self.addCleanup(self.channel.close)
        self.call = self.channel.unary_unary(WHO)

    def who(self, n):
        return collections.Counter(self.call(b"", timeout=5).decode() for _ in range(n))

    def test_flip_serving_not_serving(self):
        self.wait_healthy(2)
        self.assertEqual(self.a.checks[0][0], "pilotfish.Svc")
        self.assertGreater(self.stat("cluster.backend.ssl.handshake"), 0)
        self.assertEqual(set(self.who(20)), {"A", "B"})
        pftest.wait_until(lambda: self.stat("cluster.backend.ssl.session_reused") > 0,
                          10 * TF, what="a resumed health-check session")

        self.a.set(NOT_SERVING)
        self.wait_healthy(1)
        self.assertEqual(self.flags(self.a.port), "/failed_active_hc")
        self.assertEqual(self.who(20), {"B": 20})
        self.assertEqual(self.stat("cluster.backend.health_check.network_failure"), 0)

        self.a.set(SERVING)
        self.wait_healthy(2)
        self.assertEqual(self.flags(self.a.port), "healthy")
        self.assertEqual(set(self.who(20)), {"A", "B"})


class GrpcHealthTlsNoAlpnTest(HealthTlsCase):
    def test_check_offers_h2(self):
        # grpcio refuses TLS connections that did not negotiate h2; the
        # cluster sets no alpn_protocols, so the check offers h2 itself.
        a = GrpcHost("A", grpc_tls_creds())
        self.addCleanup(a.close)
        self.start([grpc_tls_cluster([a.port], None)])
        self.wait_healthy(1)
        self.assertEqual(a.checks[0][0], "pilotfish.Svc")


if __name__ == "__main__":
    pftest.main()
