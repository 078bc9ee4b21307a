#!/usr/bin/env python3
"""HTTP/1.1 client -> pilotfish -> HTTP/2 (h2c) upstream.

Upstreams:
  * the Go interop echo server's plain HTTP/2 handler (tests/interop, -http-addr):
    GET -> "hello from pilotfish interop <name>", other methods echo the body;
    response header x-echo-proto shows the protocol it was spoken to with;
  * a small Python `h2` server (python3-h2, installed by tests/interop/build.sh)
    for non-200 statuses, multi-valued response headers and a record of exactly
    which request headers arrived over HTTP/2 (its h2 state machine also rejects
    connection-specific headers such as Transfer-Encoding, so a leak is a
    protocol error, not a silent pass).

Clusters speak HTTP/2 through `http2_protocol_options: {}` or
`typed_extension_protocol_options` / HttpProtocolOptions explicit_http_config.
The proxy runs with --concurrency 1 so "one upstream connection per host"
is exactly 1 (pools are per worker, as in Envoy).
"""

import concurrent.futures
import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pftest  # noqa: E402
from pftest import (  # noqa: E402
    LOCAL, SOURCE_DIR, TF, ClassProxyTestCase, HttpConn, Proxy, ProxyTestCase, bootstrap,
    build_request, cluster, curl, free_port, listener, main, match_prefix, pattern_bytes,
    route, vhost, wait_until)

# --------------------------------------------------------------------------
# Interop binaries (tests/interop/build.sh; scripts/test.sh runs it before ctest)

INTEROP_NEEDED = ("echo-server", "echo-client", "java-client", "py-client")


def interop_bin():
    """Directory with the interop programs; builds them (under a lock, since
    test files run in parallel) when missing.  Never skips: a failed build is
    an error."""
    d = os.environ.get("PF_INTEROP_BIN") or os.path.join(SOURCE_DIR, "build-interop", "bin")

    def ready():
        return all(os.access(os.path.join(d, n), os.X_OK) for n in INTEROP_NEEDED)

    if ready():
        return d
    build_dir = os.path.dirname(os.path.abspath(d))
    os.makedirs(build_dir, exist_ok=True)
    with open(os.path.join(build_dir, ".pftest-build.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready():
            script = os.path.join(SOURCE_DIR, "tests", "interop", "build.sh")
            sys.stderr.write("interop binaries missing in %s: running %s\n" % (d, script))
            env = dict(os.environ, BUILD_DIR=build_dir)
            p = subprocess.run([script], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=480, env=env)
            if p.returncode != 0 or not ready():
                raise RuntimeError("tests/interop/build.sh failed (exit %s):\n%s" % (
                    p.returncode, p.stdout.decode("utf-8", "replace")[-4000:]))
    return d


def can_connect(port):
    try:
        socket.create_connection((LOCAL, port), timeout=1).close()
        return True
    except OSError:
        return False


class EchoServer:
    """The Go interop echo server: gRPC on .grpc_port, HTTP/2 echo on .http_port."""

    def __init__(self, name="go", extra_args=()):
        self.name = name
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.log = open(os.devnull, "wb")
        self.proc = subprocess.Popen(
            [os.path.join(interop_bin(), "echo-server"), "-name", name,
             "-addr", "%s:%d" % (LOCAL, self.grpc_port),
             "-http-addr", "%s:%d" % (LOCAL, self.http_port)] + list(extra_args),
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: self.proc.poll() is not None or
                       (can_connect(self.grpc_port) and can_connect(self.http_port)),
                       10 * TF, what="echo-server %s listening" % name)
            if self.proc.poll() is not None:
                raise RuntimeError("echo-server exited with %s" % self.proc.returncode)
        except Exception:
            self.stop()
            raise

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()


# --------------------------------------------------------------------------
# Python h2 upstream


class H2Upstream:
    """Threaded h2c (prior knowledge) server built on python3-h2.

    Path /.../status/NNN answers status NNN; every answer carries
    x-py-h2: yes, two set-cookie headers and a JSON body describing the
    request as received: {"headers": [[k, v], ...], "body_len": N, "sha256": hex}.
    """

    def __init__(self):
        import h2.config  # noqa: F401 (python3-h2, installed by tests/interop/build.sh)
        import h2.connection  # noqa: F401
        import h2.events  # noqa: F401
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = []
        self.errors = []
        self._conns = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOCAL, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self._conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, sock):
        import h2.config
        import h2.connection
        import h2.events
        conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        streams = {}
        try:
            sock.sendall(conn.data_to_send())
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        streams[ev.stream_id] = (list(ev.headers), bytearray())
                    elif isinstance(ev, h2.events.DataReceived):
                        streams[ev.stream_id][1].extend(ev.data)
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        sid = ev.stream_id
                        if sid in streams:
                            self._respond(conn, sid, *streams.pop(sid))
                sock.sendall(conn.data_to_send())
        except Exception as e:  # protocol errors are the point of this server
            with self.lock:
                self.errors.append(repr(e))
            try:
                sock.sendall(conn.data_to_send())
            except OSError:
                pass
        finally:
            sock.close()

    def _respond(self, conn, sid, headers, body):
        path = dict(headers).get(":path", "/")
        status = 200
        if "/status/" in path:
            status = int(path.rsplit("/status/", 1)[1][:3])
        with self.lock:
            self.requests.append({"headers": headers, "body_len": len(body)})
        out = json.dumps({"headers": headers, "body_len": len(body),
                          "sha256": hashlib.sha256(body).hexdigest()}).encode()
        hdrs = [(":status", str(status)), ("content-type", "application/json"),
                ("x-py-h2", "yes"), ("set-cookie", "a=1"), ("set-cookie", "b=2")]
        if status in (204, 304):
            conn.send_headers(sid, hdrs, end_stream=True)
            return
        conn.send_headers(sid, hdrs + [("content-length", str(len(out)))])
        # Bodies here are small (well inside the default 64 KiB windows).
        conn.send_data(sid, out, end_stream=True)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


# --------------------------------------------------------------------------
# Config / stats helpers

HPO_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
HPO_TYPE = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
RESET_PREFIX = "upstream connect error or disconnect/reset before headers. reset reason: "


def h2_cluster(name, ports, max_concurrent_streams=None, typed=True, **kw):
    if typed:
        h2o = {}
        if max_concurrent_streams is not None:
            h2o["max_concurrent_streams"] = max_concurrent_streams
        kw["typed_extension_protocol_options"] = {HPO_KEY: {
            "@type": HPO_TYPE, "explicit_http_config": {"http2_protocol_options": h2o}}}
    else:
        kw["http2_protocol_options"] = {}
    return cluster(name, ports, connect_timeout="1s", **kw)


get_stats = pftest.stats


def counter(admin_port, name):
    return get_stats(admin_port).get(name, 0)


def sha(b):
    return hashlib.sha256(b).hexdigest()


# --------------------------------------------------------------------------


class UpstreamH2Test(ClassProxyTestCase):

    @classmethod
    def setup_upstreams(cls):
        cls.echo = EchoServer("go")
        cls.pyh2 = H2Upstream()
        cls.refused_port = free_port()

    @classmethod
    def make_config(cls):
        hp = cls.echo.http_port
        routes = [
            route(match_prefix("/mux/"), "h2_mux"),
            route(match_prefix("/mcs1/"), "h2_mcs1"),
            route(match_prefix("/py/"), "h2_py"),
            route(match_prefix("/refused/"), "h2_refused"),
            route(match_prefix("/"), "h2_echo"),
        ]
        return bootstrap(
            [listener("main", cls.port, [vhost("svc", ["*"], routes)])],
            [h2_cluster("h2_echo", [hp], typed=False),
             h2_cluster("h2_mux", [hp]),
             h2_cluster("h2_mcs1", [hp], max_concurrent_streams=1),
             h2_cluster("h2_py", [cls.pyh2.port], typed=False),
             h2_cluster("h2_refused", [cls.refused_port])],
            cls.admin_port)

    @classmethod
    def setUpClass(cls):
        # One worker: connection pools are per worker, so "one upstream
        # connection" is only meaningful with a single worker.
        cls.upstreams = []
        cls.proxies = []
        cls.port = free_port()
        cls.admin_port = free_port()
        cls.setup_upstreams()
        cls.proxy = Proxy(cls.make_config(), name=cls.__name__, concurrency=1, log_level="info")
        cls.proxies.append(cls.proxy)
        try:
            cls.proxy.start()
        except Exception:
            sys.stderr.write(cls.proxy.describe() + "\n")
            cls.proxy.kill()
            cls.echo.stop()
            cls.pyh2.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.echo.stop()
            cls.pyh2.close()

    # -- basic GET / POST

    def test_get_over_h2(self):
        with HttpConn(self.port) as c:
            r = c.get("/hello")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.version, "HTTP/1.1")
        self.assertEqual(r.body, b"hello from pilotfish interop go\n")
        self.assertEqual(r.headers.get("x-echo-proto"), "HTTP/2.0")
        self.assertEqual(r.headers.get("x-echo-method"), "GET")
        self.assertEqual(r.headers.get("x-echo-server"), "go")
        self.assertIsNotNone(r.headers.get("x-envoy-upstream-service-time"))

    def test_keepalive_many_requests(self):
        # Several requests on one downstream keep-alive connection.
        with HttpConn(self.port) as c:
            for i in range(20):
                r = c.get("/k%d" % i)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.headers.get("x-echo-proto"), "HTTP/2.0")

    def test_post_8mib_echoed_intact(self):
        body = pattern_bytes(8 << 20, offset=12345)
        with HttpConn(self.port, timeout=60 * TF) as c:
            r = c.request("POST", "/big", body=body,
                          headers=[("Content-Type", "application/octet-stream")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("x-echo-proto"), "HTTP/2.0")
        self.assertEqual(len(r.body), len(body))
        self.assertEqual(sha(r.body), sha(body))
        # If trailers reach the HTTP/1.1 client they must be right.
        if r.trailers.get("x-echo-body-sha256") is not None:
            self.assertEqual(r.trailers.get("x-echo-body-sha256"), sha(body))
            self.assertEqual(r.trailers.get("x-echo-body-len"), str(len(body)))

    def test_post_8mib_with_curl(self):
        body = pattern_bytes(8 << 20, offset=7)
        d = os.path.join(os.path.dirname(self.proxy.config_path), "curl")
        os.makedirs(d, exist_ok=True)
        src, dst = os.path.join(d, "in.bin"), os.path.join(d, "out.bin")
        with open(src, "wb") as f:
            f.write(body)
        p = curl(["--http1.1", "-o", dst, "-w", "%{http_code}", "--data-binary", "@" + src,
                  "-H", "content-type: application/octet-stream",
                  "http://127.0.0.1:%d/curl-big" % self.port], timeout=60 * TF)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, b"200")
        with open(dst, "rb") as f:
            self.assertEqual(sha(f.read()), sha(body))

    def test_chunked_request_body(self):
        chunks = [b"a" * 10, pattern_bytes(100000), b"", b"tail!"]
        body = b"".join(chunks)
        with HttpConn(self.port) as c:
            r = c.request("POST", "/chunked", body=chunks, chunked=True)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("x-echo-proto"), "HTTP/2.0")
        self.assertEqual(r.body, body)

    def test_chunked_request_to_strict_h2_peer(self):
        # python3-h2 rejects connection-specific headers (transfer-encoding,
        # connection, keep-alive): they must not be forwarded over HTTP/2.
        chunks = [b"x" * 1000, b"y" * 2345]
        with HttpConn(self.port) as c:
            r = c.request("POST", "/py/chunked", body=chunks, chunked=True,
                          headers=[("Connection", "keep-alive"), ("Keep-Alive", "timeout=5"),
                                   ("X-Req", "abc")])
        self.assertEqual(r.status, 200, r)
        got = r.json()
        self.assertEqual(got["body_len"], 3345)
        self.assertEqual(got["sha256"], sha(b"".join(chunks)))
        names = [k for k, _ in got["headers"]]
        for bad in ("transfer-encoding", "connection", "keep-alive", "host"):
            self.assertNotIn(bad, names)
        h = dict(got["headers"])
        self.assertEqual(h[":method"], "POST")
        self.assertEqual(h[":path"], "/py/chunked")
        self.assertEqual(h[":authority"], "example.com")
        self.assertEqual(h[":scheme"], "http")
        self.assertEqual(h["x-req"], "abc")
        self.assertEqual(self.pyh2.errors, [])

    def test_status_and_headers_pass_through(self):
        for status in (201, 404, 418, 503):
            with self.subTest(status=status):
                with HttpConn(self.port) as c:
                    r = c.get("/py/status/%d" % status)
                self.assertEqual(r.status, status, r)
                self.assertEqual(r.headers.get("x-py-h2"), "yes")
                self.assertEqual(r.headers.get("content-type"), "application/json")
                self.assertEqual(r.headers.get_all("set-cookie"), ["a=1", "b=2"])
                self.assertEqual(dict(r.json()["headers"])[":path"], "/py/status/%d" % status)
        # 204: no body, no framing on the HTTP/1.1 side.
        with HttpConn(self.port) as c:
            r = c.get("/py/status/204")
            self.assertEqual(r.status, 204, r)
            self.assertEqual(r.body, b"")
            self.assertEqual(c.get("/py/status/200").status, 200)  # connection still in sync
        self.assertEqual(self.pyh2.errors, [])

    # -- multiplexing

    def _concurrent(self, prefix, conns, per_conn, body_size=0):
        def worker(i):
            res = []
            with HttpConn(self.port, timeout=30 * TF) as c:
                for j in range(per_conn):
                    if body_size:
                        body = pattern_bytes(body_size, offset=i * 1000 + j)
                        r = c.request("POST", "%s%d/%d" % (prefix, i, j), body=body)
                        res.append((r.status, r.headers.get("x-echo-proto"),
                                    sha(r.body) == sha(body)))
                    else:
                        r = c.get("%s%d/%d" % (prefix, i, j))
                        res.append((r.status, r.headers.get("x-echo-proto"),
                                    r.body == b"hello from pilotfish interop go\n"))
            return res
        with concurrent.futures.ThreadPoolExecutor(conns) as ex:
            results = [x for f in [ex.submit(worker, i) for i in range(conns)]
                       for x in f.result(timeout=120 * TF)]
        return results

    def test_200_requests_20_connections_one_upstream_connection(self):
        results = self._concurrent("/mux/", conns=20, per_conn=10)
        self.assertEqual(len(results), 200)
        self.assertEqual([r for r in results if r != (200, "HTTP/2.0", True)], [])
        st = get_stats(self.admin_port)
        self.assertEqual(st.get("cluster.h2_mux.upstream_cx_total"), 1, {
            k: v for k, v in st.items() if k.startswith("cluster.h2_mux.")})
        self.assertEqual(st.get("cluster.h2_mux.upstream_rq_total"), 200)
        self.assertEqual(st.get("cluster.h2_mux.upstream_rq_200"), 200)
        # POSTs too (bodies spread over several DATA frames), still one connection.
        results = self._concurrent("/mux/post", conns=10, per_conn=3, body_size=100000)
        self.assertEqual([r for r in results if r != (200, "HTTP/2.0", True)], [])
        self.assertEqual(counter(self.admin_port, "cluster.h2_mux.upstream_cx_total"), 1)

    def test_max_concurrent_streams_1_opens_more_connections(self):
        # Hold N streams open deterministically: send the headers and half the
        # body on N connections; with max_concurrent_streams 1 each needs its own
        # upstream connection before any of them can finish.
        n = 4
        size = 200000
        bodies = [pattern_bytes(size, offset=i) for i in range(n)]
        conns = [HttpConn(self.port, timeout=30 * TF) for _ in range(n)]
        try:
            for i, c in enumerate(conns):
                head = build_request("POST", "/mcs1/hold%d" % i, body=b"")
                head = head.replace(b"Content-Length: 0", b"Content-Length: %d" % size)
                c.send(head + bodies[i][:size // 2])
            wait_until(lambda: counter(self.admin_port, "cluster.h2_mcs1.upstream_cx_total") >= n,
                       10 * TF, what="%d upstream connections for h2_mcs1" % n)
            for i, c in enumerate(conns):
                c.send(bodies[i][size // 2:])
            for i, c in enumerate(conns):
                r = c.read_response("POST")
                self.assertEqual(r.status, 200, r)
                self.assertEqual(sha(r.body), sha(bodies[i]))
        finally:
            for c in conns:
                c.close()
        # And plain concurrency: all succeed, more than one connection.
        results = self._concurrent("/mcs1/", conns=10, per_conn=5)
        self.assertEqual([r for r in results if r != (200, "HTTP/2.0", True)], [])
        self.assertGreater(counter(self.admin_port, "cluster.h2_mcs1.upstream_cx_total"), 1)

    # -- failures

    def test_connect_refused_503(self):
        with HttpConn(self.port) as c:
            r = c.get("/refused/x")
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.body.decode(), RESET_PREFIX + "connection failure")
            # The downstream connection survives a local reply.
            r = c.get("/refused/y")
            self.assertEqual(r.status, 503, r)
        st = get_stats(self.admin_port)
        self.assertGreaterEqual(st.get("cluster.h2_refused.upstream_cx_connect_fail", 0), 2)

    def test_connect_refused_503_with_curl(self):
        p = curl(["--http1.1", "-i", "http://127.0.0.1:%d/refused/curl" % self.port])
        self.assertEqual(p.returncode, 0, p.stderr)
        head, _, body = p.stdout.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 503"), head)
        self.assertEqual(body.decode(), RESET_PREFIX + "connection failure")


class UpstreamKilledTest(ProxyTestCase):
    """An h2 upstream that dies while a request is in flight (before response
    headers): the client gets Envoy's 503 and the cluster stats say so."""

    def test_upstream_killed_before_headers(self):
        echo = EchoServer("victim")
        self.addCleanup(echo.stop)
        port, admin = free_port(), free_port()
        lst = listener("main", port, [vhost("svc", ["*"], [route(match_prefix("/"), "victim")])])
        p = self.start_proxy(bootstrap([lst], [h2_cluster("victim", [echo.http_port])], admin),
                             concurrency=1, log_level="info")
        # Warm up: the connection works.
        with HttpConn(port) as c:
            self.assertEqual(c.get("/warm").headers.get("x-echo-proto"), "HTTP/2.0")
        # The Go handler reads the whole body before answering: send half of it.
        size = 100000
        with HttpConn(port, timeout=15 * TF) as c:
            head = build_request("POST", "/doomed", body=b"")
            c.send(head.replace(b"Content-Length: 0", b"Content-Length: %d" % size) +
                   b"z" * (size // 2))
            wait_until(lambda: counter(admin, "cluster.victim.upstream_rq_active") >= 1 or
                       counter(admin, "cluster.victim.upstream_rq_total") >= 2,
                       10 * TF, what="request forwarded upstream")
            t0 = time.monotonic()
            echo.kill()
            r = c.read_response("POST")
            elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 503, r)
        self.assertTrue(r.body.decode().startswith(RESET_PREFIX), r.body)
        self.assertIn(r.body.decode()[len(RESET_PREFIX):],
                      ("connection termination", "remote reset", "connection failure"))
        self.assertLess(elapsed, 5 * TF)
        st = wait_until(lambda: (lambda s: s if s.get("cluster.victim.upstream_rq_5xx", 0) >= 1
                                 or s.get("cluster.victim.upstream_rq_rx_reset", 0) >= 1
                                 else None)(get_stats(admin)),
                        5 * TF, what="5xx / rx_reset stat")
        self.assertGreaterEqual(st.get("cluster.victim.upstream_cx_destroy_remote", 0) +
                                st.get("cluster.victim.upstream_cx_destroy", 0), 1, st)
        # Later requests: the host is gone -> connection failure, proxy fine.
        with HttpConn(port) as c:
            r = c.get("/after")
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.body.decode(), RESET_PREFIX + "connection failure")
        self.assertTrue(p.alive())

    def test_sigterm_exit_0_with_live_h2_upstream(self):
        echo = EchoServer("term")
        self.addCleanup(echo.stop)
        port, admin = free_port(), free_port()
        lst = listener("main", port, [vhost("svc", ["*"], [route(match_prefix("/"), "e")])])
        p = self.start_proxy(bootstrap([lst], [h2_cluster("e", [echo.http_port])], admin))
        for i in range(5):
            with HttpConn(port) as c:
                self.assertEqual(c.get("/%d" % i).status, 200)
        self.assertGreaterEqual(counter(admin, "cluster.e.upstream_cx_active"), 1)
        # Idle downstream keep-alive connection open while we stop.
        idle = HttpConn(port)
        self.addCleanup(idle.close)
        self.assertEqual(idle.get("/idle").status, 200)
        rc = p.stop(signal.SIGTERM)
        self.assertEqual(rc, 0)


if __name__ == "__main__":
    main()
