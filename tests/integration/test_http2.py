"""HTTP/2 downstream (h2c prior knowledge): h2 -> h1 translation, flow control and
backpressure, and the defences (concurrency, header limits, rapid reset, floods,
malformed frames, GOAWAY on drain).

Clients: Debian's nghttp2-client (nghttp, h2load) and python3-h2 for frame-level
tests.
"""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import hpack

import pftest
from pftest import (SANITIZE, TF, ClassProxyTestCase, ProxyTestCase, RssMonitor, bootstrap,
                    cluster, direct, free_port, http_get, listener, match_prefix, route,
                    simple_bootstrap, vhost)

MiB = 1 << 20
RSS_LIMIT = 64 * MiB
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HAVE_NGHTTP = shutil.which("nghttp") is not None and shutil.which("h2load") is not None

# HTTP/2 frame types and flags (RFC 9113)
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = \
    0, 1, 2, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS = 0x1, 0x4


def frame(ftype, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream_id & 0x7fffffff) + payload


def stat(proxy, name):
    """Counter/gauge value from the admin /stats text output (0 when absent)."""
    r = http_get(proxy.admin_port, "/stats", host="127.0.0.1")
    for line in r.body.decode().splitlines():
        k, _, v = line.partition(": ")
        if k == name:
            return int(v)
    return 0


def wait_stat(proxy, name, at_least=1, timeout=None):
    return pftest.wait_until(lambda: stat(proxy, name) >= at_least, timeout or 10 * TF,
                             what="%s >= %d" % (name, at_least))


class H2Client:
    """A python-h2 client connection over plain TCP (prior knowledge)."""

    def __init__(self, port, settings=None, timeout=None):
        self.sock = socket.create_connection((pftest.LOCAL, port), timeout=timeout or 10 * TF)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                        validate_outbound_headers=False,
                                        normalize_outbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.events = []
        self.closed = False
        self.responses = {}     # stream id -> dict(headers, body, trailers, reset, ended)
        self.goaway = None
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path, method="GET", headers=(), body=None, end=True, authority="example.com"):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":path", path), (":scheme", "http"),
                (":authority", authority)] + list(headers)
        self.conn.send_headers(sid, hdrs, end_stream=end and body is None)
        if body is not None:
            self.send_body(sid, body, end=end)
        self.flush()
        return sid

    def send_body(self, sid, body, end=True):
        off = 0
        while off < len(body):
            n = min(len(body) - off, self.conn.max_outbound_frame_size,
                    self.conn.local_flow_control_window(sid))
            if n == 0:
                self.flush()
                self.pump(lambda: self.conn.local_flow_control_window(sid) > 0)
                continue
            self.conn.send_data(sid, body[off:off + n])
            off += n
        if end:
            self.conn.end_stream(sid)
        self.flush()

    def _resp(self, sid):
        return self.responses.setdefault(sid, {"headers": None, "body": bytearray(),
                                               "trailers": None, "reset": None, "ended": False,
                                               "informational": []})

    def pump(self, until, timeout=None):
        """Read and process events until until() is true; returns its value."""
        deadline = time.monotonic() + (timeout or 20 * TF)
        while True:
            v = until()
            if v:
                return v
            if self.closed:
                raise EOFError("connection closed")
            if time.monotonic() > deadline:
                raise TimeoutError("h2 client: condition not met")
            try:
                data = self.sock.recv(1 << 20)
            except ConnectionResetError:
                data = b""
            if not data:
                self.closed = True
                continue
            try:
                events = self.conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                self.closed = True
                continue
            for ev in events:
                self.events.append(ev)
                self._handle(ev)
            self.flush()

    def _handle(self, ev):
        if isinstance(ev, h2.events.ResponseReceived):
            self._resp(ev.stream_id)["headers"] = dict(ev.headers)
        elif isinstance(ev, h2.events.InformationalResponseReceived):
            self._resp(ev.stream_id)["informational"].append(dict(ev.headers))
        elif isinstance(ev, h2.events.DataReceived):
            r = self._resp(ev.stream_id)
            r["body"] += ev.data
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.TrailersReceived):
            self._resp(ev.stream_id)["trailers"] = dict(ev.headers)
        elif isinstance(ev, h2.events.StreamEnded):
            self._resp(ev.stream_id)["ended"] = True
        elif isinstance(ev, h2.events.StreamReset):
            self._resp(ev.stream_id)["reset"] = ev.error_code
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev

    def wait_response(self, sid, timeout=None):
        self.pump(lambda: self.responses.get(sid, {}).get("ended") or
                  self.responses.get(sid, {}).get("reset") is not None, timeout)
        return self.responses[sid]

    def wait_closed(self, timeout=None):
        """Reads until the proxy closes the connection (GOAWAY recorded)."""
        deadline = time.monotonic() + (timeout or 10 * TF)
        while not self.closed and time.monotonic() < deadline:
            try:
                data = self.sock.recv(1 << 20)
            except ConnectionResetError:
                break
            except socket.timeout:
                break
            if not data:
                break
            try:
                for ev in self.conn.receive_data(data):
                    self._handle(ev)
            except h2.exceptions.ProtocolError:
                pass
        self.closed = True
        return self.goaway

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class RawH2:
    """Raw frames over a socket; parses what the proxy sends."""

    def __init__(self, port, timeout=None):
        self.sock = socket.create_connection((pftest.LOCAL, port), timeout=timeout or 10 * TF)
        self.buf = b""
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0))

    def send(self, data):
        self.sock.sendall(data)

    def read_frames(self):
        """Frames received so far (reads what is available without blocking long)."""
        self.sock.settimeout(0.05)
        try:
            d = self.sock.recv(1 << 20)
            self.buf += d
        except (socket.timeout, ConnectionResetError):
            pass
        return self._parse()

    def _parse(self):
        out, b = [], self.buf
        while len(b) >= 9:
            n = int.from_bytes(b[:3], "big")
            if len(b) < 9 + n:
                break
            out.append((b[3], b[4], int.from_bytes(b[5:9], "big") & 0x7fffffff, b[9:9 + n]))
            b = b[9 + n:]
        return out

    def frames_until_close(self, timeout=None):
        """All frames until EOF: [(type, flags, stream, payload)]."""
        deadline = time.monotonic() + (timeout or 10 * TF)
        self.sock.settimeout(1.0)
        while time.monotonic() < deadline:
            try:
                d = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except ConnectionResetError:
                break
            if not d:
                break
            self.buf += d
        return self._parse()

    def close(self):
        self.sock.close()


def goaway_code(frames):
    for t, _, _, p in frames:
        if t == GOAWAY:
            return int.from_bytes(p[4:8], "big")
    return None


class Hold:
    """Upstream handler that parks requests until release() (or a timeout)."""

    def __init__(self):
        self.event = threading.Event()
        self.arrived = 0
        self.lock = threading.Lock()

    def __call__(self, req, resp):
        req.read_body()
        with self.lock:
            self.arrived += 1
        self.event.wait(30 * TF)
        resp.send(200, b"released")

    def release(self):
        self.event.set()


def blackhole():
    """A listening socket that never accepts: upstream requests hang there."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((pftest.LOCAL, 0))
    s.listen(4096)
    return s


def h2_listener(name, port, vhosts, stat_prefix="ingress_http", http2=None, **hcm_extra):
    lst = listener(name, port, vhosts, stat_prefix=stat_prefix)
    hcm = lst["filter_chains"][0]["filters"][0]["typed_config"]
    if http2 is not None:
        hcm["http2_protocol_options"] = http2
    hcm.update(hcm_extra)
    return lst


class Http2Test(ClassProxyTestCase):
    """One proxy; listeners: main (defaults), small (small windows, 2 streams,
    idle timeout), lenient (stream errors only)."""

    @classmethod
    def setup_upstreams(cls):
        cls.up = cls.add_upstream("up")
        cls.hold = Hold()
        cls.held = cls.add_upstream("held", cls.hold)
        cls.hole = blackhole()
        cls.small_port = free_port()
        cls.lenient_port = free_port()

    @classmethod
    def tearDownClass(cls):
        cls.hold.release()
        super().tearDownClass()
        cls.hole.close()

    @classmethod
    def make_config(cls):
        routes = [
            direct(match_prefix("/direct"), 200, "direct body"),
            route(match_prefix("/held"), "held", timeout="0s"),
            route(match_prefix("/hole"), "hole", timeout="0s"),
            route(match_prefix("/"), "up", timeout="0s"),
        ]
        vh = [vhost("svc", ["example.com", "localhost", "127.0.0.1", "*"], routes)]
        return bootstrap([
            h2_listener("main", cls.port, vh),
            h2_listener("small", cls.small_port, vh, stat_prefix="small",
                        http2={"max_concurrent_streams": 2,
                               "initial_stream_window_size": 65535,
                               "initial_connection_window_size": 1048576},
                        stream_idle_timeout="1s"),
            h2_listener("lenient", cls.lenient_port, vh, stat_prefix="lenient",
                        http2={"override_stream_error_on_invalid_http_message": True}),
        ], [cluster("up", [cls.up.port]), cluster("held", [cls.held.port]),
            cluster("hole", [cls.hole.getsockname()[1]], connect_timeout="5s")],
            cls.admin_port)

    def client(self, port=None, **kw):
        c = H2Client(port or self.port, **kw)
        self.addCleanup(c.close)
        return c

    # ---- h2 -> h1 translation

    def test_get_prior_knowledge(self):
        c = self.client()
        sid = c.request("/echo?x=1", headers=[("x-custom", "v1")])
        r = c.wait_response(sid)
        self.assertEqual(r["headers"][":status"], "200", r)
        echo = json.loads(bytes(r["body"]))
        self.assertEqual(echo["method"], "GET")
        req = self.up.last_request()
        self.assertEqual(req.headers.get("host"), "example.com")
        self.assertEqual(req.headers.get("x-custom"), "v1")
        self.assertEqual(req.version, "HTTP/1.1")
        self.assertFalse(any(k.startswith(":") for k, _ in req.headers))
        self.assertEqual(r["headers"].get("server"), "envoy")
        self.assertIn("x-envoy-upstream-service-time", r["headers"])
        self.assertGreaterEqual(stat(self.proxy, "http.ingress_http.downstream_cx_http2_total"), 1)
        self.assertGreaterEqual(stat(self.proxy, "http.ingress_http.downstream_rq_http2_total"), 1)

    def test_nghttp_and_curl(self):
        if not HAVE_NGHTTP:
            self.skipTest("nghttp2-client not installed")
        out = subprocess.run(["nghttp", "-s", "http://127.0.0.1:%d/direct" % self.port],
                             capture_output=True, timeout=30 * TF)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b"direct body", out.stdout)
        if shutil.which("curl"):
            out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-o", "/dev/null",
                                  "-w", "%{http_version} %{http_code}",
                                  "http://127.0.0.1:%d/echo" % self.port],
                                 capture_output=True, timeout=30 * TF)
            self.assertEqual(out.stdout, b"2 200", out)

    def test_http1_still_works_on_auto(self):
        r = http_get(self.port, "/direct")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"direct body")

    def test_post_content_length(self):
        c = self.client()
        body = os.urandom(100000)
        sid = c.request("/echo", method="POST", headers=[("content-length", str(len(body)))],
                        body=body)
        r = c.wait_response(sid)
        self.assertEqual(r["headers"][":status"], "200")
        req = self.up.last_request()
        self.assertEqual(req.headers.get("content-length"), str(len(body)))
        self.assertIsNone(req.headers.get("transfer-encoding"))
        self.assertEqual(req.body, body)

    def test_post_without_length_is_chunked_upstream(self):
        c = self.client()
        body = b"x" * 70000
        sid = c.request("/echo", method="POST", body=body)
        r = c.wait_response(sid)
        self.assertEqual(r["headers"][":status"], "200")
        req = self.up.last_request()
        self.assertEqual(req.headers.get("transfer-encoding"), "chunked")
        self.assertEqual(req.body, body)

    def test_request_trailers(self):
        c = self.client()
        sid = c.request("/echo", method="POST", body=b"abc", end=False)
        c.conn.send_headers(sid, [("x-req-trailer", "yes")], end_stream=True)
        c.flush()
        r = c.wait_response(sid)
        self.assertEqual(r["headers"][":status"], "200")
        self.assertEqual(self.up.last_request().body, b"abc")
        self.assertEqual(self.up.last_request().trailers.get("x-req-trailer"), "yes")

    def test_response_trailers_from_chunked_h1(self):
        c = self.client()
        sid = c.request("/echo?chunked=1&trailers=1&body=hello-trailers")
        r = c.wait_response(sid)
        self.assertEqual(r["headers"][":status"], "200")
        self.assertEqual(bytes(r["body"]), b"hello-trailers")
        self.assertEqual(r["trailers"], {"x-trailer-one": "t1", "x-trailer-two": "t2"})
        self.assertNotIn("transfer-encoding", r["headers"])

    def test_cookies_joined(self):
        c = self.client()
        sid = c.request("/echo", headers=[("cookie", "a=1"), ("cookie", "b=2")])
        c.wait_response(sid)
        self.assertEqual(self.up.last_request().headers.get_all("cookie"), ["a=1; b=2"])

    def test_direct_response_and_404(self):
        c = self.client()
        s1 = c.request("/direct")
        s2 = c.request("/x", authority="unknown.invalid")
        r1, r2 = c.wait_response(s1), c.wait_response(s2)
        self.assertEqual(r1["headers"][":status"], "200")
        self.assertEqual(bytes(r1["body"]), b"direct body")
        self.assertEqual(r1["headers"]["content-length"], "11")
        # the "*" domain catches everything: use a path with no route instead
        self.assertEqual(r2["headers"][":status"], "200")

    def test_no_route_404(self):
        port = free_port()
        admin = free_port()
        p = self.start_proxy(simple_bootstrap(port, admin, [direct(match_prefix("/ok"), 200)],
                                              [], domains=("only.example",)))
        c = self.client(port)
        sid = c.request("/nothing", authority="other.example")
        r = c.wait_response(sid)
        self.assertEqual(r["headers"][":status"], "404")
        self.assertGreaterEqual(stat(p, "http.ingress_http.no_route"), 1)

    def test_head_has_no_body(self):
        c = self.client()
        sid = c.request("/echo?size=1000", method="HEAD")
        r = c.wait_response(sid)
        self.assertEqual(r["headers"][":status"], "200")
        self.assertEqual(bytes(r["body"]), b"")

    def test_expect_100_continue(self):
        c = self.client()
        sid = c.request("/echo", method="POST", headers=[("expect", "100-continue")], end=False)
        c.pump(lambda: c.responses.get(sid, {}).get("informational"))
        c.send_body(sid, b"after-continue")
        r = c.wait_response(sid)
        self.assertEqual(r["informational"][0][":status"], "100")
        self.assertEqual(self.up.last_request().body, b"after-continue")
        self.assertIsNone(self.up.last_request().headers.get("expect"))

    def test_many_streams_one_connection(self):
        c = self.client()
        sids = [c.request("/echo?body=s%d" % i) for i in range(50)]
        for i, sid in enumerate(sids):
            r = c.wait_response(sid)
            self.assertEqual(bytes(r["body"]), b"s%d" % i)

    def test_h2load(self):
        if not HAVE_NGHTTP:
            self.skipTest("nghttp2-client not installed")
        out = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "20",
                              "http://127.0.0.1:%d/echo?body=ok" % self.port],
                             capture_output=True, timeout=120 * TF, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("2000 succeeded", out.stdout, out.stdout)
        self.assertIn("status codes: 2000 2xx", out.stdout, out.stdout)

    # ---- flow control and backpressure

    def test_large_download_small_window(self):
        """The client's window paces the proxy; the upstream is paused meanwhile."""
        c = self.client(self.small_port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 65535})
        size = 8 * MiB
        sid = c.request("/echo?size=%d" % size)
        r = c.wait_response(sid, timeout=60 * TF)
        self.assertEqual(len(r["body"]), size)
        self.assertEqual(bytes(r["body"][:1000]), pftest.pattern_bytes(1000))

    def test_upload_small_window_backpressure(self):
        c = self.client(self.small_port)
        body = b"y" * (4 * MiB)
        sid = c.request("/echo", method="POST", headers=[("content-length", str(len(body)))],
                        body=body)
        r = c.wait_response(sid, timeout=60 * TF)
        self.assertEqual(r["headers"][":status"], "200")
        self.assertEqual(self.up.last_request().body_len, len(body))

    def _nghttp_rss(self, args, what):
        with RssMonitor(self.proxy) as mon:
            out = subprocess.run(args, capture_output=True, timeout=300 * TF)
        self.assertEqual(out.returncode, 0, out.stderr[-2000:])
        msg = "%s: peak proxy RSS %.1f MiB over %d samples" % (what, mon.max_rss / MiB,
                                                                 mon.samples)
        print(msg)
        if not SANITIZE:
            self.assertLess(mon.max_rss, RSS_LIMIT, msg)
        return out

    def test_download_256mib_bounded_rss(self):
        if not HAVE_NGHTTP:
            self.skipTest("nghttp2-client not installed")
        size = 256 * MiB if not SANITIZE else 64 * MiB
        out = self._nghttp_rss(["nghttp", "-n", "-s", "-w", "20", "-W", "24",
                                "http://127.0.0.1:%d/echo?size=%d" % (self.small_port, size)],
                               "h2 download %d MiB" % (size // MiB))
        self.assertNotIn(b"error", out.stderr.lower())

    def test_upload_256mib_bounded_rss(self):
        if not HAVE_NGHTTP:
            self.skipTest("nghttp2-client not installed")
        size = 256 * MiB if not SANITIZE else 64 * MiB
        path = os.path.join(pftest.tmpdir("upload"), "body")
        with open(path, "wb") as f:
            f.truncate(size)
        out = self._nghttp_rss(["nghttp", "-d", path,
                                "http://127.0.0.1:%d/upload" % self.small_port],
                               "h2 upload %d MiB" % (size // MiB))
        os.unlink(path)
        self.assertEqual(self.up.last_request().body_len, size)

    # ---- defences

    def test_max_concurrent_streams_refused(self):
        """Streams past SETTINGS_MAX_CONCURRENT_STREAMS (2 here) get REFUSED_STREAM."""
        s = socket.create_connection((pftest.LOCAL, self.small_port), timeout=10 * TF)
        self.addCleanup(s.close)
        enc = hpack.Encoder()
        out = PREFACE + frame(SETTINGS, 0, 0)
        for sid in (1, 3, 5):
            block = enc.encode([(":method", "GET"), (":path", "/hole"), (":scheme", "http"),
                                (":authority", "example.com")])
            out += frame(HEADERS, END_STREAM | END_HEADERS, sid, block)
        s.sendall(out)
        raw = RawH2.__new__(RawH2)
        raw.sock, raw.buf = s, b""
        deadline = time.monotonic() + 10 * TF
        refused = None
        s.settimeout(0.5)
        while time.monotonic() < deadline and refused is None:
            try:
                d = s.recv(65536)
            except socket.timeout:
                continue
            if not d:
                break
            raw.buf += d
            b = raw.buf
            while len(b) >= 9:
                n = int.from_bytes(b[:3], "big")
                if len(b) < 9 + n:
                    break
                if b[3] == RST_STREAM:
                    refused = (int.from_bytes(b[5:9], "big"), int.from_bytes(b[9:13], "big"))
                b = b[9 + n:]
        self.assertEqual(refused, (5, h2.errors.ErrorCodes.REFUSED_STREAM))

    def test_oversized_headers_reset(self):
        before = stat(self.proxy, "http2.header_overflow")
        c = self.client()
        sid = c.request("/echo", headers=[("x-big-%d" % i, "v" * 4000) for i in range(20)])
        r = c.wait_response(sid)
        self.assertIsNotNone(r["reset"], r)
        self.assertGreater(stat(self.proxy, "http2.header_overflow"), before)
        sid = c.request("/direct")     # the connection survives
        self.assertEqual(c.wait_response(sid)["headers"][":status"], "200")

    def test_hpack_bomb(self):
        """A small header block that decodes past the limit (dynamic table refs)."""
        before = stat(self.proxy, "http2.header_overflow")
        s = RawH2(self.port)
        self.addCleanup(s.close)
        enc = hpack.Encoder()
        block = enc.encode([(":method", "GET"), (":path", "/echo"), (":scheme", "http"),
                            (":authority", "example.com")] + [("x-bomb", "b" * 3000)] * 200)
        self.assertLess(len(block), 16384)
        s.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
        wait_stat(self.proxy, "http2.header_overflow", before + 1)

    def test_rapid_reset_closes_connection(self):
        before = stat(self.proxy, "http.ingress_http.downstream_rq_too_many_premature_resets")
        s = RawH2(self.port)
        self.addCleanup(s.close)
        enc = hpack.Encoder()
        try:
            for batch in range(20):
                out = b""
                for i in range(25):
                    sid = 1 + 2 * (batch * 25 + i)
                    block = enc.encode([(":method", "GET"), (":path", "/hole"),
                                        (":scheme", "http"), (":authority", "example.com")])
                    out += frame(HEADERS, END_STREAM | END_HEADERS, sid, block)
                    out += frame(RST_STREAM, 0, sid, struct.pack(">I", 8))   # CANCEL
                s.send(out)
        except (BrokenPipeError, ConnectionResetError):
            pass
        frames = s.frames_until_close()
        self.assertEqual(goaway_code(frames), h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
        self.assertGreater(stat(self.proxy,
                                "http.ingress_http.downstream_rq_too_many_premature_resets"),
                           before)

    def test_ping_flood(self):
        before = stat(self.proxy, "http2.outbound_control_flood")
        s = RawH2(self.port)
        self.addCleanup(s.close)
        try:
            s.send(frame(PING, 0, 0, b"12345678") * 5000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.frames_until_close()
        wait_stat(self.proxy, "http2.outbound_control_flood", before + 1)

    def test_settings_flood(self):
        before = stat(self.proxy, "http2.outbound_control_flood")
        s = RawH2(self.port)
        self.addCleanup(s.close)
        try:
            s.send(frame(SETTINGS, 0, 0) * 5000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.frames_until_close()
        wait_stat(self.proxy, "http2.outbound_control_flood", before + 1)

    def test_some_pings_are_answered(self):
        c = self.client()
        for i in range(50):
            c.conn.ping(b"%08d" % i)
        c.flush()
        c.pump(lambda: sum(isinstance(e, h2.events.PingAckReceived) for e in c.events) >= 50)

    def test_priority_flood(self):
        before = stat(self.proxy, "http2.inbound_priority_frames_flood")
        s = RawH2(self.port)
        self.addCleanup(s.close)
        try:
            s.send(frame(PRIORITY, 0, 3, struct.pack(">IB", 0, 16)) * 300)
        except (BrokenPipeError, ConnectionResetError):
            pass
        frames = s.frames_until_close()
        self.assertEqual(goaway_code(frames), h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
        self.assertGreater(stat(self.proxy, "http2.inbound_priority_frames_flood"), before)

    def test_empty_data_frames_flood(self):
        before = stat(self.proxy, "http2.inbound_empty_frames_flood")
        s = RawH2(self.port)
        self.addCleanup(s.close)
        enc = hpack.Encoder()
        block = enc.encode([(":method", "POST"), (":path", "/hole"), (":scheme", "http"),
                            (":authority", "example.com")])
        s.send(frame(HEADERS, END_HEADERS, 1, block) + frame(DATA, 0, 1) * 10)
        frames = s.frames_until_close()
        self.assertEqual(goaway_code(frames), h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
        self.assertGreater(stat(self.proxy, "http2.inbound_empty_frames_flood"), before)

    def test_continuation_flood(self):
        before = stat(self.proxy, "http2.too_many_header_frames")
        s = RawH2(self.port)
        self.addCleanup(s.close)
        enc = hpack.Encoder()
        block = enc.encode([(":method", "GET"), (":path", "/echo"), (":scheme", "http"),
                            (":authority", "example.com")])
        out = frame(HEADERS, END_STREAM, 1, block)
        for i in range(200):
            out += frame(CONTINUATION, 0, 1, enc.encode([("x-c%d" % i, "v")]))
        try:
            s.send(out)
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.frames_until_close()
        self.assertGreater(stat(self.proxy, "http2.too_many_header_frames"), before)

    def test_malformed_frame_goaway(self):
        s = RawH2(self.port)
        self.addCleanup(s.close)
        s.send(frame(DATA, 0, 0, b"on stream zero"))
        frames = s.frames_until_close()
        self.assertEqual(goaway_code(frames), h2.errors.ErrorCodes.PROTOCOL_ERROR)

    def test_bad_frame_size_goaway(self):
        s = RawH2(self.port)
        self.addCleanup(s.close)
        s.send(frame(PING, 0, 0, b"short"))
        frames = s.frames_until_close()
        self.assertEqual(goaway_code(frames), h2.errors.ErrorCodes.FRAME_SIZE_ERROR)

    def test_missing_path_closes_connection(self):
        """Envoy's default: invalid HTTP messaging ends the connection."""
        before = stat(self.proxy, "http2.rx_messaging_error")
        s = RawH2(self.port)
        self.addCleanup(s.close)
        block = hpack.Encoder().encode([(":method", "GET"), (":scheme", "http"),
                                        (":authority", "example.com")])
        s.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
        frames = s.frames_until_close()
        self.assertEqual(goaway_code(frames), h2.errors.ErrorCodes.PROTOCOL_ERROR)
        self.assertGreater(stat(self.proxy, "http2.rx_messaging_error"), before)

    def test_missing_path_stream_error_when_configured(self):
        c = self.client(self.lenient_port)
        c.conn.send_headers(1, [(":method", "GET"), (":scheme", "http"),
                                (":authority", "example.com")], end_stream=True)
        c.flush()
        r = c.wait_response(1)
        self.assertEqual(r["reset"], h2.errors.ErrorCodes.PROTOCOL_ERROR)
        sid = c.request("/direct")
        self.assertEqual(c.wait_response(sid)["headers"][":status"], "200")

    def test_uppercase_header_name_rejected(self):
        c = self.client(self.lenient_port)
        sid = c.request("/echo", headers=[("X-Upper", "1")])
        r = c.wait_response(sid)
        self.assertEqual(r["reset"], h2.errors.ErrorCodes.PROTOCOL_ERROR)

    def test_stream_idle_timeout(self):
        before = stat(self.proxy, "http.small.downstream_rq_idle_timeout")
        c = self.client(self.small_port)
        sid = c.request("/hole")
        r = c.wait_response(sid, timeout=10 * TF)
        # Envoy's maybeRequestTimeoutCode: 504 once the request was complete
        self.assertEqual(r["headers"][":status"], "504")
        self.assertEqual(bytes(r["body"]), b"stream timeout")
        self.assertGreater(stat(self.proxy, "http.small.downstream_rq_idle_timeout"), before)

    def test_client_reset_mid_response(self):
        c = self.client()
        sid = c.request("/echo?size=%d" % (8 * MiB))
        c.pump(lambda: c.responses.get(sid, {}).get("headers"))
        c.conn.reset_stream(sid)
        c.flush()
        sid2 = c.request("/direct")
        self.assertEqual(c.wait_response(sid2)["headers"][":status"], "200")
        wait_stat(self.proxy, "http2.rx_reset")


class Http2DrainTest(ProxyTestCase):

    def test_goaway_on_sigterm_inflight_completes(self):
        hold = Hold()
        up = self.start_upstream("held", hold)
        self.addCleanup(hold.release)
        port, admin = free_port(), free_port()
        p = self.start_proxy(simple_bootstrap(port, admin, [route(match_prefix("/"), "held",
                                                                  timeout="0s")],
                                              [cluster("held", [up.port])]),
                             drain_time_s=20)
        # python-h2 drops everything after a GOAWAY, so this test reads raw frames.
        s = RawH2(port)
        self.addCleanup(s.close)
        block = hpack.Encoder().encode([(":method", "GET"), (":path", "/slow"),
                                        (":scheme", "http"), (":authority", "example.com")])
        s.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
        pftest.wait_until(lambda: hold.arrived >= 1, 10 * TF, what="request upstream")
        p.send_signal(signal.SIGTERM)
        pftest.wait_until(lambda: goaway_code(s.read_frames()) is not None, 10 * TF,
                          what="GOAWAY")
        goaway = [f for f in s.read_frames() if f[0] == GOAWAY][0]
        self.assertEqual(int.from_bytes(goaway[3][:4], "big"), 1)      # last stream id
        self.assertEqual(int.from_bytes(goaway[3][4:8], "big"), 0)     # NO_ERROR
        hold.release()
        frames = s.frames_until_close(timeout=20 * TF)
        heads = [f for f in frames if f[0] == HEADERS and f[2] == 1]
        self.assertEqual(len(heads), 1, frames)
        self.assertEqual(dict(hpack.Decoder().decode(heads[0][3]))[":status"], "200")
        body = b"".join(f[3] for f in frames if f[0] == DATA and f[2] == 1)
        self.assertEqual(body, b"released")
        self.assertTrue(any(f[0] in (DATA, HEADERS) and f[2] == 1 and f[1] & END_STREAM
                            for f in frames))
        self.assertEqual(p.wait_exit(timeout=20 * TF), 0)


class Http2CodecTypeTest(ProxyTestCase):

    def test_forced_http2_rejects_http1(self):
        port, admin = free_port(), free_port()
        cfg = bootstrap([h2_listener("h2only", port, [vhost("v", ["*"], [
            direct(match_prefix("/"), 200, "ok")])], codec_type="HTTP2")], [], admin)
        self.start_proxy(cfg)
        c = H2Client(port)
        self.addCleanup(c.close)
        sid = c.request("/")
        self.assertEqual(bytes(c.wait_response(sid)["body"]), b"ok")
        s = socket.create_connection((pftest.LOCAL, port), timeout=5 * TF)
        self.addCleanup(s.close)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        self.assertNotIn(b"HTTP/1.1 200", data)

    def test_forced_http1_does_not_speak_h2(self):
        port, admin = free_port(), free_port()
        cfg = bootstrap([h2_listener("h1only", port, [vhost("v", ["*"], [
            direct(match_prefix("/"), 200, "ok")])], codec_type="HTTP1")], [], admin)
        self.start_proxy(cfg)
        s = RawH2(port)
        self.addCleanup(s.close)
        frames = s.frames_until_close(timeout=5 * TF)
        self.assertFalse(any(t == SETTINGS for t, _, _, _ in frames))

    def test_bad_http2_option_is_a_config_error(self):
        port, admin = free_port(), free_port()
        cfg = bootstrap([h2_listener("x", port, [vhost("v", ["*"], [
            direct(match_prefix("/"), 200)])], http2={"max_concurrent_streams": 0})], [], admin)
        path = os.path.join(pftest.tmpdir("cfg"), "c.yaml")
        with open(path, "w") as f:
            f.write(pftest.to_yaml(cfg))
        out = pftest.run_binary(["--mode", "validate", "-c", path])
        self.assertNotEqual(out.returncode, 0)
        self.assertIn(b"http2_protocol_options.max_concurrent_streams", out.stderr)


if __name__ == "__main__":
    pftest.main()
