#!/usr/bin/env python3
"""TLS: downstream TLS 1.2/1.3, ALPN, SNI filter chain selection (exact and
wildcard server_names), RSA + ECDSA certificates in one context, mTLS,
session resumption, handshake failures counted and isolated, plaintext on a
tls_inspector listener (raw_buffer chain), no matching chain, and upstream
TLS to a Python `ssl` server (sni, trusted_ca, SAN; wrong CA -> 503 UF).

Every key and certificate is generated at test time with the openssl CLI
into a temporary directory (nothing is committed).
"""

import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pftest  # noqa: E402
from pftest import (HCM_TYPE, ROUTER_TYPE, LOCAL, TF, HttpConn, ClassProxyTestCase,  # noqa: E402
                    cluster, direct, free_port, match_prefix, route, sockaddr, tmpdir, vhost)

TLS_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
UP_TLS_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
INSPECTOR = {"name": "envoy.filters.listener.tls_inspector",
             "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters."
                                       "listener.tls_inspector.v3.TlsInspector"}}

CERTS = tmpdir("tls")


def _run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=30 * TF, **kw)


def _ossl(*args):
    r = _run(["openssl"] + list(args), cwd=CERTS)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), r.stderr.decode()))


def _path(name):
    return os.path.join(CERTS, name)


def make_ca(name):
    _ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
          "-keyout", name + ".key", "-out", name + ".crt", "-days", "2", "-subj",
          "/CN=" + name, "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign")


def make_cert(name, cn, san, ca="ca", rsa=False, client=False):
    if rsa:
        _ossl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
              "-out", name + ".key")
    else:
        _ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-out", name + ".key")
    _ossl("req", "-new", "-key", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn)
    with open(_path(name + ".ext"), "w") as f:
        f.write("subjectAltName=%s\n" % san)
        f.write("extendedKeyUsage=%s\n" % ("clientAuth" if client else "serverAuth"))
    _ossl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
          "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-extfile", name + ".ext")


def setUpModule():
    make_ca("ca")
    make_ca("otherca")
    make_cert("a_ec", "a-ecdsa", "DNS:a.example.com,DNS:default.test,DNS:mtls.example.com,"
              "DNS:only.example.com,IP:127.0.0.1")
    make_cert("a_rsa", "a-rsa", "DNS:a.example.com,DNS:default.test,IP:127.0.0.1", rsa=True)
    make_cert("b", "b-server", "DNS:b.example.com")
    make_cert("wild", "wild-server", "DNS:*.wild.example.com")
    make_cert("up", "upstream", "DNS:upstream.local")
    make_cert("client", "client", "URI:spiffe://test/client", client=True)
    make_cert("badclient", "badclient", "URI:spiffe://test/other", client=True)


def cert(name):
    return {"certificate_chain": {"filename": _path(name + ".crt")},
            "private_key": {"filename": _path(name + ".key")}}


def tls_socket(certs, alpn=None, **extra):
    ctc = {"tls_certificates": [cert(c) for c in certs]}
    if alpn:
        ctc["alpn_protocols"] = list(alpn)
    ctc.update(extra.pop("common", {}))
    tc = {"@type": TLS_TYPE, "common_tls_context": ctc}
    tc.update(extra)
    return {"name": "envoy.transport_sockets.tls", "typed_config": tc}


def hcm(prefix, body):
    return {"name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": HCM_TYPE, "stat_prefix": prefix,
                "route_config": {"virtual_hosts": [vhost("v", ["*"], [
                    route(match_prefix("/tls_up"), "tls_up"),
                    route(match_prefix("/tls_bad"), "tls_bad"),
                    route(match_prefix("/up"), "up"),
                    direct(match_prefix("/"), 200, body)])]},
                "http_filters": [{"name": "envoy.filters.http.router",
                                  "typed_config": {"@type": ROUTER_TYPE}}]}}


def chain(name, body, match=None, ts=None):
    c = {"name": name, "filters": [hcm(name, body)]}
    if match:
        c["filter_chain_match"] = match
    if ts:
        c["transport_socket"] = ts
    return c


def serve_https(ctx, handler):
    """A threaded HTTPS server on 127.0.0.1 with SSLContext ctx and the
    BaseHTTPRequestHandler class `handler`, serving in a daemon thread;
    returns (server, port).  Handler errors (clients going away) stay quiet."""
    class S(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass

    srv = S((LOCAL, 0), handler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, srv.server_address[1]


class TlsUpstream:
    """HTTPS upstream (Python ssl): answers 200 "tls-upstream sni=<sni>"."""

    def __init__(self):
        self.snis = []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(_path("up.crt"), _path("up.key"))
        ctx.sni_callback = lambda sock, name, c: self.snis.append(name)
        owner = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                body = ("tls-upstream sni=%s" % (owner.snis[-1] if owner.snis else "")).encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv, self.port = serve_https(ctx, H)

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def up_tls_cluster(name, port, ca):
    vc = {"trusted_ca": {"filename": _path(ca + ".crt")},
          "match_typed_subject_alt_names": [{"san_type": "DNS",
                                             "matcher": {"exact": "upstream.local"}}]}
    return cluster(name, [port], connect_timeout="2s", transport_socket={
        "name": "envoy.transport_sockets.tls",
        "typed_config": {"@type": UP_TLS_TYPE, "sni": "upstream.local",
                         "common_tls_context": {"validation_context": vc}}})


get_stats = pftest.stats


class TlsTest(ClassProxyTestCase):
    @classmethod
    def setup_upstreams(cls):
        cls.plain_up = cls.add_upstream("plain")
        cls.tls_up = TlsUpstream()
        cls.port2 = free_port()
        cls.port3 = free_port()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.tls_up.close()

    @classmethod
    def make_config(cls):
        mtls = tls_socket(["a_ec"], require_client_certificate=True, common={
            "validation_context": {
                "trusted_ca": {"filename": _path("ca.crt")},
                "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {
                    "exact": "spiffe://test/client"}}]}})
        l1 = {"name": "tls", "address": sockaddr(cls.port),
              "listener_filters": [INSPECTOR],
              "filter_chains": [
                  chain("a", "chain-a", {"server_names": ["a.example.com"]},
                        tls_socket(["a_ec", "a_rsa"], alpn=["h2", "http/1.1"])),
                  chain("b", "chain-b", {"server_names": ["b.example.com"]},
                        tls_socket(["b"], alpn=["http/1.1"])),
                  chain("w", "chain-w", {"server_names": ["*.wild.example.com"]},
                        tls_socket(["wild"])),
                  chain("m", "chain-m", {"server_names": ["mtls.example.com"]}, mtls),
                  chain("d", "chain-d", {"transport_protocol": "tls"},
                        tls_socket(["a_ec", "a_rsa"], alpn=["http/1.1"])),
                  chain("raw", "chain-raw", {"transport_protocol": "raw_buffer"}),
              ]}
        l2 = {"name": "noinspect", "address": sockaddr(cls.port2),
              "filter_chains": [chain("n", "chain-n", None, tls_socket(["a_ec"]))]}
        l3 = {"name": "strict", "address": sockaddr(cls.port3),
              "listener_filters": [INSPECTOR],
              "filter_chains": [chain("s", "chain-s", {"server_names": ["only.example.com"]},
                                      tls_socket(["a_ec"]))]}
        return pftest.bootstrap([l1, l2, l3], [
            cluster("up", [cls.plain_up.port]),
            up_tls_cluster("tls_up", cls.tls_up.port, "ca"),
            up_tls_cluster("tls_bad", cls.tls_up.port, "otherca"),
        ], cls.admin_port)

    # ---- helpers

    def curl(self, host, path="/", port=None, extra=()):
        port = port or self.port
        args = ["curl", "-sS", "-v", "--max-time", str(10 * TF), "--cacert", _path("ca.crt"),
                "--resolve", "%s:%d:127.0.0.1" % (host, port)] + list(extra) + [
                    "https://%s:%d%s" % (host, port, path)]
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        return _run(args, env=env)

    def s_client(self, *args, port=None, stdin=b""):
        port = port or self.port
        r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                            "-CAfile", _path("ca.crt")] + list(args),
                           input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=20 * TF)
        return r.returncode, (r.stdout + r.stderr).decode(errors="replace")

    def stat(self, name):
        return get_stats(self.admin_port).get(name, 0)

    def lst(self, port=None):
        return "listener.127.0.0.1_%d." % (port or self.port)

    # ---- downstream

    def test_tls13_default_and_alpn_http11(self):
        r = self.curl("a.example.com", extra=["--http1.1"])
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(r.stdout, b"chain-a")
        err = r.stderr.decode()
        self.assertIn("TLSv1.3", err)
        self.assertIn("ALPN: server accepted http/1.1", err)
        self.assertGreater(self.stat(self.lst() + "ssl.versions.TLSv1.3"), 0)
        self.assertGreater(self.stat(self.lst() + "ssl.handshake"), 0)

    def test_alpn_h2(self):
        r = self.curl("a.example.com", extra=["--http2"])
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertIn("ALPN: server accepted h2", r.stderr.decode())
        self.assertEqual(r.stdout, b"chain-a")

    def test_tls12(self):
        r = self.curl("a.example.com", extra=["--tlsv1.2", "--tls-max", "1.2", "--http1.1"])
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(r.stdout, b"chain-a")
        self.assertIn("TLSv1.2", r.stderr.decode())
        self.assertGreater(self.stat(self.lst() + "ssl.versions.TLSv1.2"), 0)

    def test_tls11_refused(self):
        rc, out = self.s_client("-servername", "a.example.com", "-tls1_1",
                                "-cipher", "DEFAULT@SECLEVEL=0")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("alert protocol version", out)

    def test_sni_selects_chain_and_certificate(self):
        for sni, cn, body in (("b.example.com", "b-server", b"chain-b"),
                              ("a.example.com", "a-ecdsa", b"chain-a")):
            rc, out = self.s_client("-servername", sni)
            self.assertEqual(rc, 0, out)
            self.assertIn("CN = %s" % cn, out)
            self.assertIn("Verify return code: 0 (ok)", out)
            r = self.curl(sni, extra=["--http1.1"])
            self.assertEqual(r.stdout, body, r.stderr.decode())

    def test_wildcard_server_names(self):
        r = self.curl("x.wild.example.com")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(r.stdout, b"chain-w")
        rc, out = self.s_client("-servername", "deep.x.wild.example.com")
        self.assertIn("CN = wild-server", out)
        # The bare parent is not covered by *.wild.example.com: chain d (no server_names).
        rc, out = self.s_client("-servername", "wild.example.com")
        self.assertIn("CN = a-ecdsa", out)

    def test_no_sni_uses_catch_all_chain(self):
        r = _run(["curl", "-sS", "--cacert", _path("ca.crt"), "--http1.1",
                  "https://127.0.0.1:%d/" % self.port])
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(r.stdout, b"chain-d")

    def test_rsa_and_ecdsa_in_one_context(self):
        rc, out = self.s_client("-servername", "a.example.com", "-tls1_2",
                                "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
        self.assertEqual(rc, 0, out)
        self.assertIn("CN = a-rsa", out)
        rc, out = self.s_client("-servername", "a.example.com", "-tls1_2",
                                "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
        self.assertEqual(rc, 0, out)
        self.assertIn("CN = a-ecdsa", out)
        self.assertGreater(self.stat(self.lst() + "ssl.ciphers.ECDHE-RSA-AES128-GCM-SHA256"), 0)

    def test_mtls(self):
        before = self.stat(self.lst() + "ssl.fail_verify_no_cert")
        r = self.curl("mtls.example.com")
        self.assertNotEqual(r.returncode, 0)
        self.assertNotEqual(r.stdout, b"chain-m")
        pftest.wait_until(lambda: self.stat(self.lst() + "ssl.fail_verify_no_cert") > before,
                          5 * TF, what="fail_verify_no_cert")
        r = self.curl("mtls.example.com", extra=["--cert", _path("client.crt"),
                                                 "--key", _path("client.key")])
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(r.stdout, b"chain-m")
        before = self.stat(self.lst() + "ssl.fail_verify_san")
        r = self.curl("mtls.example.com", extra=["--cert", _path("badclient.crt"),
                                                 "--key", _path("badclient.key")])
        self.assertNotEqual(r.stdout, b"chain-m")
        pftest.wait_until(lambda: self.stat(self.lst() + "ssl.fail_verify_san") > before,
                          5 * TF, what="fail_verify_san")

    def test_session_resumption(self):
        sess = os.path.join(CERTS, "sess.pem")
        for proto in ("-tls1_2", "-tls1_3"):
            if os.path.exists(sess):
                os.unlink(sess)
            before = self.stat(self.lst() + "ssl.session_reused")
            req = b"GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"
            rc, out = self.s_client("-servername", "b.example.com", proto, "-sess_out", sess,
                                    "-ign_eof", stdin=req)
            self.assertEqual(rc, 0, out)
            self.assertIn("chain-b", out)
            rc, out = self.s_client("-servername", "b.example.com", proto, "-sess_in", sess,
                                    "-ign_eof", stdin=req)
            self.assertEqual(rc, 0, out)
            self.assertIn("Reused", out, proto)
            self.assertGreater(self.stat(self.lst() + "ssl.session_reused"), before)

    def test_handshake_failure_counted_and_isolated(self):
        ctx = ssl.create_default_context(cafile=_path("ca.crt"))
        healthy = ctx.wrap_socket(socket.create_connection((LOCAL, self.port)),
                                  server_hostname="a.example.com")
        healthy.settimeout(10 * TF)
        req = b"GET / HTTP/1.1\r\nhost: a\r\n\r\n"
        healthy.sendall(req)
        self.assertIn(b"chain-a", healthy.recv(65536))
        before = self.stat(self.lst() + "ssl.connection_error")
        for _ in range(3):
            bad = socket.create_connection((LOCAL, self.port))
            bad.settimeout(10 * TF)
            # A TLS record header with a garbage handshake message.
            bad.sendall(b"\x16\x03\x01\x00\x08\x01\x00\x00\x04garb")
            data = b""
            try:
                while True:
                    d = bad.recv(4096)
                    if not d:
                        break
                    data += d
            except OSError:
                pass
            bad.close()
            self.assertNotIn(b"HTTP/1.1", data)
        pftest.wait_until(lambda: self.stat(self.lst() + "ssl.connection_error") >= before + 3,
                          5 * TF, what="connection_error")
        healthy.sendall(req)
        self.assertIn(b"chain-a", healthy.recv(65536))
        healthy.close()

    def test_plaintext_on_inspector_listener(self):
        with HttpConn(self.port) as c:
            r = c.get("/")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, b"chain-raw")
            r = c.get("/up/x")
            self.assertEqual(r.status, 200)

    def test_listener_without_inspector(self):
        r = self.curl("default.test", port=self.port2)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(r.stdout, b"chain-n")
        self.assertGreater(self.stat(self.lst(self.port2) + "ssl.handshake"), 0)

    def test_no_filter_chain_match(self):
        before = self.stat(self.lst(self.port3) + "no_filter_chain_match")
        r = self.curl("other.example.com", port=self.port3)
        self.assertNotEqual(r.returncode, 0)
        with HttpConn(self.port3) as c:      # plaintext: no raw_buffer chain either
            try:
                c.get("/")
                self.fail("plaintext should not be served")
            except (OSError, pftest.Incomplete):
                pass
        pftest.wait_until(
            lambda: self.stat(self.lst(self.port3) + "no_filter_chain_match") >= before + 2,
            5 * TF, what="no_filter_chain_match")
        r = self.curl("only.example.com", port=self.port3)
        self.assertEqual(r.stdout, b"chain-s", r.stderr.decode())

    def test_upstream_tls(self):
        with HttpConn(self.port) as c:
            r = c.get("/tls_up/a")
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.body, b"tls-upstream sni=upstream.local")
            r = c.get("/tls_up/b")          # pooled connection reused
            self.assertEqual(r.status, 200)
        self.assertGreater(self.stat("cluster.tls_up.ssl.handshake"), 0)

    def test_upstream_tls_wrong_ca(self):
        with HttpConn(self.port) as c:
            r = c.get("/tls_bad")
            self.assertEqual(r.status, 503)
            self.assertIn(b"connection failure", r.body)
        self.assertGreater(self.stat("cluster.tls_bad.ssl.connection_error"), 0)
        self.assertGreater(self.stat("cluster.tls_bad.ssl.fail_verify_error"), 0)


class TlsConfigErrorTest(pftest.ProxyTestCase):
    def validate(self, cfg):
        d = tmpdir("cfg")
        p = os.path.join(d, "c.yaml")
        with open(p, "w") as f:
            f.write(pftest.to_yaml(cfg))
        r = pftest.run_binary(["--mode", "validate", "-c", p])
        return r.returncode, (r.stdout + r.stderr).decode()

    def test_missing_key_file(self):
        ts = tls_socket(["a_ec"])
        ts["typed_config"]["common_tls_context"]["tls_certificates"][0]["private_key"] = {
            "filename": _path("nope.key")}
        l = {"name": "x", "address": sockaddr(free_port()),
             "filter_chains": [chain("c", "x", None, ts)]}
        rc, out = self.validate(pftest.bootstrap([l], [cluster("up", [1]), cluster("tls_up", [1]),
                                                       cluster("tls_bad", [1])]))
        self.assertNotEqual(rc, 0)
        self.assertIn("private_key.filename: cannot read", out)
        self.assertIn("filter_chains[0].transport_socket.typed_config.common_tls_context."
                      "tls_certificates[0]", out)

    def test_key_mismatch(self):
        ts = tls_socket(["a_ec"])
        ts["typed_config"]["common_tls_context"]["tls_certificates"][0]["private_key"] = {
            "filename": _path("b.key")}
        l = {"name": "x", "address": sockaddr(free_port()),
             "filter_chains": [chain("c", "x", None, ts)]}
        rc, out = self.validate(pftest.bootstrap([l], [cluster("up", [1]), cluster("tls_up", [1]),
                                                       cluster("tls_bad", [1])]))
        self.assertNotEqual(rc, 0)
        self.assertIn("does not match", out)


if __name__ == "__main__":
    pftest.main()
