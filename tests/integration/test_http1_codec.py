"""HTTP/1.1 codec behaviour through the proxy."""

import os
import socket

import pftest
from pftest import (TF, BufSock, ClassProxyTestCase, HttpConn, build_request, cluster,
                    curl, direct, match_prefix, pattern_bytes, read_response, route,
                    simple_bootstrap)


class CodecTest(ClassProxyTestCase):

    @classmethod
    def setup_upstreams(cls):
        cls.up = cls.add_upstream("up")

    @classmethod
    def make_config(cls):
        return simple_bootstrap(cls.port, cls.admin_port, [
            direct(match_prefix("/direct"), 200, "direct\n"),
            route(match_prefix("/"), "up"),
        ], [cluster("up", [cls.up.port])])

    def test_keep_alive_and_upstream_reuse(self):
        before = self.up.connections
        n = 30
        with HttpConn(self.port) as c:
            for i in range(n):
                r = c.get("/ka/%d" % i)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["path"], "/ka/%d" % i)
        used = self.up.connections - before
        self.assertLess(used, n, "no upstream connection reuse")
        self.assertLessEqual(used, 2, "upstream connections for %d sequential requests: %d"
                             % (n, used))

    def test_pipelining(self):
        with HttpConn(self.port) as c:
            c.send(b"".join(build_request("GET", "/p%d" % i) for i in (1, 2, 3)))
            paths = []
            for _ in range(3):
                r = c.read_response()
                self.assertEqual(r.status, 200, r)
                paths.append(r.json()["path"])
        self.assertEqual(paths, ["/p1", "/p2", "/p3"])

    def test_pipelining_mixed_direct_and_proxied(self):
        with HttpConn(self.port) as c:
            c.send(build_request("GET", "/q1") + build_request("GET", "/direct")
                   + build_request("POST", "/q3", body=b"xyz"))
            r1, r2, r3 = c.read_response(), c.read_response(), c.read_response()
        self.assertEqual(r1.json()["path"], "/q1")
        self.assertEqual(r2.body, b"direct\n")
        self.assertEqual((r3.json()["path"], r3.json()["body"]), ("/q3", "xyz"))

    def test_content_length_request_body(self):
        body = pattern_bytes(100000)
        with HttpConn(self.port) as c:
            r = c.request("POST", "/cl", body=body)
        j = r.json()
        self.assertEqual(j["body_len"], len(body))
        self.assertEqual(j["body"].encode("latin-1"), body)

    def test_chunked_request_body(self):
        chunks = [b"a", b"hello ", pattern_bytes(5000), b"x" * 0x1000, b"end"]
        with HttpConn(self.port) as c:
            r = c.request("POST", "/chunked-up", body=chunks, chunked=True)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["body"].encode("latin-1"), b"".join(chunks))
            # connection still usable
            self.assertEqual(c.get("/after").status, 200)

    def test_chunked_request_with_extensions_and_trailers(self):
        raw = (b"POST /ext HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Req-Trailer: 1\r\n\r\n")
        with HttpConn(self.port) as c:
            c.send(raw)
            r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["body"], "hello world")

    def test_chunked_request_body_curl(self):
        path = os.path.join(pftest.tmpdir("curl"), "body.bin")
        data = pattern_bytes(300000)
        with open(path, "wb") as f:
            f.write(data)
        p = curl(["-H", "Transfer-Encoding: chunked", "--data-binary", "@" + path,
                  "http://127.0.0.1:%d/curl-chunked" % self.port])
        self.assertEqual(p.returncode, 0, p.stderr)
        import json
        j = json.loads(p.stdout)
        self.assertEqual(j["body_len"], len(data))
        self.assertEqual(j["body"].encode("latin-1"), data)

    def test_chunked_response_body(self):
        with HttpConn(self.port) as c:
            r = c.get("/chunked-down?chunked=1&size=200000")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body_len, 200000)
            self.assertEqual(r.body, pattern_bytes(200000))
            self.assertEqual(c.get("/after").status, 200)

    def test_content_length_response_preserved(self):
        with HttpConn(self.port) as c:
            r = c.get("/cl-down?size=12345")
        self.assertEqual(r.headers.get("content-length"), "12345")
        self.assertEqual(r.body, pattern_bytes(12345))

    def test_head(self):
        with HttpConn(self.port) as c:
            r = c.request("HEAD", "/head?size=5000")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.headers.get("content-length"), "5000")
            # If the proxy sent body bytes they would corrupt the next response.
            r2 = c.get("/after-head")
            self.assertEqual(r2.status, 200, r2)
            self.assertEqual(r2.json()["path"], "/after-head")

    def test_expect_100_continue(self):
        body = b"expect-body"
        with HttpConn(self.port) as c:
            c.send(build_request("POST", "/expect", headers=[
                ("Expect", "100-continue"), ("Content-Length", str(len(body)))]))
            line = c.bs.read_until(b"\r\n\r\n")
            self.assertTrue(line.startswith(b"HTTP/1.1 100"), "expected 100 Continue, got %r"
                            % line)
            c.send(body)
            r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["body"], "expect-body")

    def test_expect_100_continue_curl(self):
        path = os.path.join(pftest.tmpdir("curl"), "body.bin")
        with open(path, "wb") as f:
            f.write(b"z" * 2048)
        p = curl(["-v", "-H", "Expect: 100-continue", "--expect100-timeout", str(10 * TF),
                  "--data-binary", "@" + path, "http://127.0.0.1:%d/curl-expect" % self.port])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"HTTP/1.1 100", p.stderr, "curl did not see 100 Continue")
        import json
        self.assertEqual(json.loads(p.stdout)["body_len"], 2048)

    def test_connection_close_from_client(self):
        with HttpConn(self.port) as c:
            r = c.get("/bye", headers=[("Connection", "close")])
            self.assertEqual(r.status, 200, r)
            self.assertTrue(c.wait_closed(5 * TF), "proxy kept the connection open")
            self.assertEqual(c.trailing, b"")

    def test_upstream_connection_close_is_handled(self):
        with HttpConn(self.port) as c:
            for i in range(5):
                r = c.get("/upclose/%d?close=1" % i)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["path"], "/upclose/%d" % i)

    def test_1xx_from_upstream_passed_through(self):
        with HttpConn(self.port) as c:
            r = c.get("/hints?hints=1")
            self.assertEqual(r.status, 200, r)
            self.assertEqual([s for s, _ in r.informational], [103],
                             "103 Early Hints not passed through")
            self.assertEqual(r.json()["path"], "/hints")
            self.assertEqual(c.get("/after").status, 200)

    def test_trailers_on_chunked_response(self):
        with HttpConn(self.port) as c:
            r = c.get("/trailers?chunked=1&trailers=1", headers=[("TE", "trailers")])
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.chunked, "response not chunked, trailers impossible: %r" % r)
            self.assertEqual(r.json()["path"], "/trailers")
            self.assertEqual(r.trailers.get("x-trailer-one"), "t1", "trailers: %r" % r.trailers)
            self.assertEqual(r.trailers.get("x-trailer-two"), "t2")
            self.assertEqual(c.get("/after").status, 200)

    def test_upgrade_refused(self):
        before = len(self.up.requests)
        with HttpConn(self.port) as c:
            c.send(build_request("GET", "/ws", headers=[
                ("Upgrade", "websocket"), ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Sec-WebSocket-Version", "13")]))
            r = c.read_response()
        self.assertTrue(400 <= r.status < 600, "upgrade not refused: %r" % r)
        self.assertNotEqual(r.status, 101)
        self.assertFalse(any(q.path == "/ws" for q in self.up.requests[before:]),
                         "upgrade request was forwarded upstream")
        self.assertEqual(pftest.http_get(self.port, "/after-upgrade").status, 200)

    def test_many_headers(self):
        hdrs = [("X-H%03d" % i, "v%d" % i) for i in range(80)]
        with HttpConn(self.port) as c:
            r = c.get("/many", headers=hdrs)
        self.assertEqual(r.status, 200)
        got = {k.lower(): v for k, v in r.json()["headers"]}
        for k, v in hdrs:
            self.assertEqual(got.get(k.lower()), v)

    def test_request_split_across_writes(self):
        raw = build_request("POST", "/split", body=b"0123456789")
        with HttpConn(self.port) as c:
            for i in range(0, len(raw), 7):
                c.send(raw[i:i + 7])
            r = c.read_response()
        self.assertEqual(r.json()["body"], "0123456789")

    def test_curl_basic(self):
        p = curl(["-i", "http://127.0.0.1:%d/direct" % self.port])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith(b"HTTP/1.1 200"), p.stdout[:200])
        self.assertTrue(p.stdout.endswith(b"\r\n\r\ndirect\n"), p.stdout[-200:])


if __name__ == "__main__":
    pftest.main()
