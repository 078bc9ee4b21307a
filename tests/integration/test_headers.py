"""Envoy request/response header behaviour."""

import re

import pftest
from pftest import (ClassProxyTestCase, HttpConn, Headers, cluster, direct, match_path,
                    match_prefix, route, simple_bootstrap)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


class HeadersTest(ClassProxyTestCase):

    @classmethod
    def setup_upstreams(cls):
        cls.up = cls.add_upstream("up")

    @classmethod
    def make_config(cls):
        return simple_bootstrap(cls.port, cls.admin_port, [
            direct(match_prefix("/direct"), 200, "direct\n"),
            route(match_path("/timeout500"), "up", timeout="0.5s"),
            route(match_prefix("/"), "up"),
        ], [cluster("up", [cls.up.port])])

    def echo(self, path="/h", headers=None, **kw):
        with HttpConn(self.port) as c:
            r = c.get(path, headers=headers, **kw)
        self.assertEqual(r.status, 200, r)
        return r, Headers((k, v) for k, v in r.json()["headers"])

    def test_request_id_generated(self):
        _, h = self.echo()
        rid = h.get_all("x-request-id")
        self.assertEqual(len(rid), 1, "upstream x-request-id: %r" % rid)
        self.assertRegex(rid[0], UUID_RE)
        _, h2 = self.echo()
        self.assertNotEqual(h2.get("x-request-id"), rid[0], "x-request-id not unique")

    def test_request_id_preserved(self):
        _, h = self.echo(headers=[("X-Request-Id", "my-own-id-123")])
        self.assertEqual(h.get_all("x-request-id"), ["my-own-id-123"])

    def test_forwarded_proto(self):
        _, h = self.echo()
        self.assertEqual(h.get_all("x-forwarded-proto"), ["http"])

    def test_expected_rq_timeout_default(self):
        _, h = self.echo("/default-timeout")
        self.assertEqual(h.get("x-envoy-expected-rq-timeout-ms"), "15000")

    def test_expected_rq_timeout_route(self):
        _, h = self.echo("/timeout500")
        self.assertEqual(h.get("x-envoy-expected-rq-timeout-ms"), "500")

    def test_upstream_service_time(self):
        r, _ = self.echo()
        v = r.headers.get("x-envoy-upstream-service-time")
        self.assertIsNotNone(v, "no x-envoy-upstream-service-time in %r" % list(r.headers))
        self.assertRegex(v, r"^\d+$")

    def test_server_header(self):
        r, _ = self.echo()
        self.assertTrue(r.headers.has("server"), "no server header on proxied response")
        with HttpConn(self.port) as c:
            r = c.get("/direct")
        self.assertTrue(r.headers.has("server"), "no server header on direct response")

    def test_end_to_end_headers_forwarded(self):
        _, h = self.echo(headers=[("X-Custom", "v1"), ("X-Multi", "a"), ("X-Multi", "b"),
                                  ("Accept", "*/*")])
        self.assertEqual(h.get("x-custom"), "v1")
        multi = h.get_all("x-multi")
        self.assertIn(multi, (["a", "b"], ["a,b"], ["a, b"]))
        self.assertEqual(h.get("accept"), "*/*")

    def test_hop_by_hop_not_forwarded(self):
        _, h = self.echo(headers=[
            ("Connection", "keep-alive, X-Hop-Custom"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("X-Hop-Custom", "secret"),
            ("TE", "gzip"),
            ("Upgrade", "foo/1"),
            ("X-Kept", "yes"),
        ])
        names = {k.lower() for k, _ in h}
        for hop in ("keep-alive", "proxy-connection", "x-hop-custom", "upgrade", "te"):
            self.assertNotIn(hop, names, "hop-by-hop header %r forwarded upstream: %r" % (
                hop, list(h)))
        for v in h.get_all("connection"):
            self.assertNotIn("x-hop-custom", v.lower())
            self.assertIn(v.lower().strip(), ("keep-alive", "close"),
                          "client Connection header forwarded: %r" % v)
        self.assertEqual(h.get("x-kept"), "yes")

    def test_te_trailers_kept(self):
        _, h = self.echo(headers=[("TE", "trailers")])
        self.assertEqual([v.lower() for v in h.get_all("te")], ["trailers"])

    def test_client_transfer_encoding_not_passed_verbatim(self):
        # A Content-Length request must not reach the upstream with a
        # Transfer-Encoding header, and the body must arrive intact.
        with HttpConn(self.port) as c:
            r = c.request("POST", "/cl", body=b"hello world")
        j = r.json()
        h = Headers((k, v) for k, v in j["headers"])
        self.assertEqual(j["body"], "hello world")
        self.assertIsNone(h.get("transfer-encoding"))


if __name__ == "__main__":
    pftest.main()
