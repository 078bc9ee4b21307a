"""Streaming and backpressure: large uploads/downloads with bounded proxy RSS."""

import json
import socket
import time

import pftest
from pftest import (GIB_TEST_SIZE, SANITIZE, TF, ClassProxyTestCase, HttpConn, RssMonitor,
                    build_request, cluster, curl, match_prefix, route, simple_bootstrap)

MiB = 1 << 20
RSS_LIMIT = 64 * MiB


def count_handler(req, resp):
    """Upstream: discard the request body and reply with its byte count."""
    req.read_body(store_limit=0)
    resp.send(200, json.dumps({"received": req.body_len}), content_type="application/json")


class StreamingTest(ClassProxyTestCase):

    @classmethod
    def setup_upstreams(cls):
        cls.gen = cls.add_upstream("gen")          # echo_handler: ?size=N generates
        cls.sink = cls.add_upstream("sink", count_handler)

    @classmethod
    def make_config(cls):
        return simple_bootstrap(cls.port, cls.admin_port, [
            route(match_prefix("/upload"), "sink", timeout="0s"),
            route(match_prefix("/"), "gen", timeout="0s"),
        ], [cluster("gen", [cls.gen.port]), cluster("sink", [cls.sink.port])])

    def check_rss(self, mon, what):
        sys_msg = "%s: peak proxy RSS %.1f MiB over %d samples" % (
            what, mon.max_rss / MiB, mon.samples)
        print(sys_msg)
        self.assertGreater(mon.samples, 0, "could not sample proxy RSS")
        if SANITIZE:
            return  # ASan shadow memory and quarantine make RSS meaningless
        self.assertLess(mon.max_rss, RSS_LIMIT, sys_msg)

    def upload(self, size, chunked):
        block = b"u" * MiB
        deadline = time.monotonic() + 180 * TF
        with RssMonitor(self.proxy) as mon:
            with HttpConn(self.port, timeout=30 * TF) as c:
                if chunked:
                    c.send(build_request("POST", "/upload", headers=[
                        ("Transfer-Encoding", "chunked")]))
                else:
                    c.send(build_request("POST", "/upload", headers=[
                        ("Content-Length", str(size))]))
                sent = 0
                while sent < size:
                    self.assertLess(time.monotonic(), deadline, "upload too slow")
                    n = min(len(block), size - sent)
                    if chunked:
                        c.send(b"%x\r\n" % n)
                        c.send(block[:n])
                        c.send(b"\r\n")
                    else:
                        c.send(block[:n])
                    sent += n
                if chunked:
                    c.send(b"0\r\n\r\n")
                r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["received"], size)
        return mon

    def test_upload_gib_content_length(self):
        mon = self.upload(GIB_TEST_SIZE, chunked=False)
        self.check_rss(mon, "upload %d MiB (content-length)" % (GIB_TEST_SIZE // MiB))

    def test_upload_chunked(self):
        size = 256 * MiB if not SANITIZE else 64 * MiB
        mon = self.upload(size, chunked=True)
        self.check_rss(mon, "upload %d MiB (chunked)" % (size // MiB))

    def test_download_gib(self):
        size = GIB_TEST_SIZE
        with RssMonitor(self.proxy) as mon:
            with HttpConn(self.port, timeout=30 * TF) as c:
                r = c.get("/download?size=%d" % size, store=False)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body_len, size)
        self.check_rss(mon, "download %d MiB" % (size // MiB))

    def test_download_chunked_curl(self):
        size = 256 * MiB if not SANITIZE else 64 * MiB
        with RssMonitor(self.proxy) as mon:
            p = curl(["-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                      "http://127.0.0.1:%d/download?chunked=1&size=%d" % (self.port, size)],
                     timeout=180 * TF)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.decode().split(), ["200", str(size)])
        self.check_rss(mon, "curl chunked download %d MiB" % (size // MiB))

    def test_slow_client_bounded_memory(self):
        size = 512 * MiB
        sent_before = self.gen.bytes_sent
        read_total = 0
        with RssMonitor(self.proxy) as mon:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            s.settimeout(10 * TF)
            s.connect(("127.0.0.1", self.port))
            c = HttpConn.__new__(HttpConn)
            c.sock = s
            c.bs = pftest.BufSock(s)
            c.send(build_request("GET", "/slow-download?size=%d" % size))
            # Read ~64 KiB every 20 ms (~3 MiB/s) for 4 seconds: far slower than
            # the upstream can produce.
            end = time.monotonic() + 4
            while time.monotonic() < end:
                data = s.recv(65536)
                self.assertTrue(data, "proxy closed the slow download")
                read_total += len(data)
                time.sleep(0.02)
            upstream_sent = self.gen.bytes_sent - sent_before
            s.close()
        print("slow client: read %.1f MiB, upstream sent %.1f MiB, peak RSS %.1f MiB" % (
            read_total / MiB, upstream_sent / MiB, mon.max_rss / MiB))
        self.assertGreater(read_total, 0)
        self.assertLess(upstream_sent, size, "upstream was never throttled")
        self.assertLess(upstream_sent - read_total, 200 * MiB,
                        "proxy buffered %.1f MiB for a slow client" % (
                            (upstream_sent - read_total) / MiB))
        self.check_rss(mon, "slow client")
        # the proxy survives the aborted download and keeps serving
        with HttpConn(self.port) as c2:
            self.assertEqual(c2.get("/after-slow").status, 200)


if __name__ == "__main__":
    pftest.main()
