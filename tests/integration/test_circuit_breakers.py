"""Circuit breakers max_connections and max_retries through the real binary.

max_connections (HTTP/1.1): a request needing a new connection while the
cluster is at the limit counts upstream_cx_overflow and waits, pending, for
its host's busy connection; a host with no connection still gets one.
max_retries: a retry over the cluster's concurrent-retry limit is not done
(upstream_rq_retry_overflow) and the client gets the original failure."""

import socket
import threading
import unittest

import pftest
from pftest import (HttpConn, ProxyTestCase, cluster, free_port, match_prefix, route,
                    simple_bootstrap, wait_until)


stat = pftest.stat


class Gate:
    """Upstream handler: requests whose path starts with /hold wait for
    release(); /fail answers 503; anything else 200."""

    def __init__(self):
        self.event = threading.Event()

    def release(self):
        self.event.set()

    def __call__(self, req, resp):
        req.read_body()
        if req.path.startswith("/hold"):
            self.event.wait(30)
        if req.path.startswith("/fail"):
            resp.send(503, b"failed\n")
        else:
            resp.send(200, ("%s %s\n" % (req.path, req.body.decode())).encode())


def in_thread(fn):
    out = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    return t, out


class MaxConnectionsTest(ProxyTestCase):

    def proxy(self, endpoints, thresholds):
        port, adm = free_port(), free_port()
        c = cluster("app", endpoints, circuit_breakers={"thresholds": [thresholds]})
        # One worker: pools are per worker, the limit is the cluster's.
        self.start_proxy(simple_bootstrap(port, adm, [route(match_prefix("/"), "app",
                                                            timeout="10s")], [c]),
                         concurrency=1)
        return port, adm

    def test_request_waits_for_the_busy_connection(self):
        gate = Gate()
        self.addCleanup(gate.release)
        up = self.start_upstream("up", gate)
        port, adm = self.proxy([up.port], {"max_connections": 1, "max_pending_requests": 5,
                                           "track_remaining": True})
        cb = "cluster.app.circuit_breakers.default."

        def req(path, body):
            with HttpConn(port) as c:
                return c.request("POST", path, body=body)
        ta, ra = in_thread(lambda: req("/hold", b"first"))
        up.wait_requests(1)
        tb, rb = in_thread(lambda: req("/second", b"x" * 50000))
        wait_until(lambda: stat(adm, "cluster.app.upstream_rq_pending_active") == 1, 5,
                   what="second request pending")
        self.assertEqual(stat(adm, "cluster.app.upstream_cx_overflow"), 1)
        self.assertEqual(stat(adm, "cluster.app.upstream_cx_total"), 1)
        self.assertEqual(len(up.requests), 1)
        self.assertEqual([stat(adm, cb + n) for n in ("cx_open", "remaining_cx",
                                                      "rq_pending_open", "remaining_pending")],
                         [1, 0, 0, 4])
        self.assertEqual(stat(adm, "cluster.app.circuit_breakers.high.cx_open"), 0)
        gate.release()
        ta.join(10)
        tb.join(10)
        self.assertEqual((ra[0].status, ra[0].body), (200, b"/hold first\n"))
        # The waiting request went out on the same connection, body intact.
        self.assertEqual(rb[0].status, 200)
        self.assertEqual(rb[0].body, b"/second " + b"x" * 50000 + b"\n")
        self.assertEqual(up.connections, 1)
        self.assertEqual([r.conn_id for r in up.requests], [1, 1])
        self.assertEqual(stat(adm, "cluster.app.upstream_rq_pending_active"), 0)
        self.assertEqual(stat(adm, "cluster.app.upstream_rq_active"), 0)
        self.assertEqual(stat(adm, cb + "remaining_pending"), 5)
        self.assertEqual(stat(adm, cb + "cx_open"), 1)     # the idle connection still counts

    def test_waiters_take_the_connection_in_turn(self):
        gate = Gate()
        self.addCleanup(gate.release)
        up = self.start_upstream("up", gate)
        port, adm = self.proxy([up.port], {"max_connections": 1})
        ta, ra = in_thread(lambda: pftest.http_get(port, "/hold"))
        up.wait_requests(1)
        waiters = [in_thread(lambda i=i: pftest.http_get(port, "/w%d" % i)) for i in range(4)]
        wait_until(lambda: stat(adm, "cluster.app.upstream_rq_pending_active") == 4, 5,
                   what="four requests pending")
        gate.release()
        for t, _ in [(ta, ra)] + waiters:
            t.join(10)
        self.assertEqual([r[0].status for _, r in [(ta, ra)] + waiters], [200] * 5)
        self.assertEqual(up.connections, 1)
        self.assertEqual(sorted(r.path for r in up.requests),
                         ["/hold", "/w0", "/w1", "/w2", "/w3"])
        self.assertEqual(stat(adm, "cluster.app.upstream_rq_pending_active"), 0)

    def test_waiting_request_over_max_pending_overflows(self):
        gate = Gate()
        self.addCleanup(gate.release)
        up = self.start_upstream("up", gate)
        port, adm = self.proxy([up.port], {"max_connections": 1, "max_pending_requests": 1})
        ta, ra = in_thread(lambda: pftest.http_get(port, "/hold"))
        up.wait_requests(1)
        tb, rb = in_thread(lambda: pftest.http_get(port, "/b"))
        wait_until(lambda: stat(adm, "cluster.app.upstream_rq_pending_active") == 1, 5,
                   what="second request pending")
        r = pftest.http_get(port, "/c")
        self.assertEqual(r.status, 503)
        self.assertIn(b"overflow", r.body)
        self.assertEqual(stat(adm, "cluster.app.upstream_rq_pending_overflow"), 1)
        gate.release()
        ta.join(10)
        tb.join(10)
        self.assertEqual((ra[0].status, rb[0].status), (200, 200))

    def test_host_without_connection_still_gets_one(self):
        gate = Gate()
        self.addCleanup(gate.release)
        up1 = self.start_upstream("u1", gate)
        up2 = self.start_upstream("u2", gate)
        port, adm = self.proxy([up1.port, up2.port], {"max_connections": 1})
        ta, ra = in_thread(lambda: pftest.http_get(port, "/hold"))
        wait_until(lambda: len(up1.requests) + len(up2.requests) == 1, 5, what="first request")
        # Round robin sends the next request to the other host, which has no
        # connection: it opens one over the limit instead of waiting.
        r = pftest.http_get(port, "/next")
        self.assertEqual(r.status, 200)
        self.assertEqual(stat(adm, "cluster.app.upstream_cx_overflow"), 1)
        self.assertEqual(stat(adm, "cluster.app.upstream_cx_total"), 2)
        gate.release()
        ta.join(10)
        self.assertEqual(ra[0].status, 200)

    def test_waiting_request_times_out(self):
        gate = Gate()
        self.addCleanup(gate.release)
        up = self.start_upstream("up", gate)
        port, adm = free_port(), free_port()
        c = cluster("app", [up.port], circuit_breakers={"thresholds": [{"max_connections": 1}]})
        self.start_proxy(simple_bootstrap(port, adm, [
            route(match_prefix("/hold"), "app", timeout="10s"),
            route(match_prefix("/"), "app", timeout="0.3s")], [c]), concurrency=1)
        ta, ra = in_thread(lambda: pftest.http_get(port, "/hold"))
        up.wait_requests(1)
        r = pftest.http_get(port, "/short")
        self.assertEqual(r.status, 504)
        self.assertEqual(stat(adm, "cluster.app.upstream_rq_pending_active"), 0)
        gate.release()
        ta.join(10)
        self.assertEqual(ra[0].status, 200)
        self.assertEqual(len(up.requests), 1)


class HeldH2Upstream:
    """h2c (prior knowledge) server on python3-h2 that answers /hold streams
    only after release(); other streams at once.  Counts connections."""

    def __init__(self):
        import h2.config  # noqa: F401 (python3-h2, as test_upstream_h2.py)
        self.lock = threading.Lock()
        self.connections = 0
        self.paths = []
        self.released = False
        self.held = []                      # (conn, sock, stream id)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((pftest.LOCAL, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _answer(self, conn, sock, sid):
        conn.send_headers(sid, [(":status", "200"), ("content-length", "3")])
        conn.send_data(sid, b"ok\n", end_stream=True)
        sock.sendall(conn.data_to_send())

    def _serve(self, sock):
        import h2.config
        import h2.connection
        import h2.events
        conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        paths = {}
        try:
            with self.lock:
                sock.sendall(conn.data_to_send())
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                with self.lock:
                    for ev in conn.receive_data(data):
                        if isinstance(ev, h2.events.RequestReceived):
                            paths[ev.stream_id] = dict(ev.headers).get(":path")
                            self.paths.append(paths[ev.stream_id])
                        elif isinstance(ev, h2.events.StreamEnded):
                            if paths.get(ev.stream_id) == "/hold" and not self.released:
                                self.held.append((conn, sock, ev.stream_id))
                            else:
                                self._answer(conn, sock, ev.stream_id)
                    sock.sendall(conn.data_to_send())
        except OSError:
            pass
        finally:
            sock.close()

    def release(self):
        with self.lock:
            self.released = True
            for conn, sock, sid in self.held:
                try:
                    self._answer(conn, sock, sid)
                except OSError:
                    pass
            self.held = []

    def close(self):
        self.release()
        self.sock.close()


class MaxConnectionsH2Test(ProxyTestCase):

    def test_stream_waits_for_a_free_stream_slot(self):
        up = HeldH2Upstream()
        self.addCleanup(up.close)
        port, adm = free_port(), free_port()
        hpo = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3."
                     "HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {"max_concurrent_streams": 1}}}}
        c = cluster("app", [up.port], typed_extension_protocol_options=hpo,
                    circuit_breakers={"thresholds": [{"max_connections": 1}]})
        self.start_proxy(simple_bootstrap(port, adm, [route(match_prefix("/"), "app",
                                                            timeout="10s")], [c]),
                         concurrency=1)
        ta, ra = in_thread(lambda: pftest.http_get(port, "/hold"))
        wait_until(lambda: up.paths == ["/hold"], 5, what="held stream")
        tb, rb = in_thread(lambda: pftest.http_get(port, "/next"))
        wait_until(lambda: stat(adm, "cluster.app.upstream_rq_pending_active") == 1, 5,
                   what="second stream pending")
        self.assertEqual(stat(adm, "cluster.app.upstream_cx_overflow"), 1)
        self.assertEqual(up.paths, ["/hold"])
        up.release()
        ta.join(10)
        tb.join(10)
        self.assertEqual((ra[0].status, rb[0].status), (200, 200))
        # One connection, its single stream slot used in turn.
        self.assertEqual(up.connections, 1)
        self.assertEqual(up.paths, ["/hold", "/next"])


class MaxRetriesTest(ProxyTestCase):

    def proxy(self, up, max_retries):
        port, adm = free_port(), free_port()
        policy = {"retry_on": "5xx", "num_retries": 3,
                  "retry_back_off": {"base_interval": "0.001s"}}
        c = cluster("app", [up.port],
                    circuit_breakers={"thresholds": [{"max_retries": max_retries}]})
        self.start_proxy(simple_bootstrap(port, adm, [
            route(match_prefix("/"), "app", timeout="10s", retry_policy=policy)], [c]))
        return port, adm

    def test_zero_max_retries_returns_original_failure(self):
        up = self.start_upstream("up", Gate())
        port, adm = self.proxy(up, 0)
        r = pftest.http_get(port, "/fail")
        self.assertEqual((r.status, r.body), (503, b"failed\n"))
        self.assertEqual(len(up.requests), 1)
        self.assertEqual(stat(adm, "cluster.app.upstream_rq_retry_overflow"), 1)
        self.assertEqual(stat(adm, "cluster.app.upstream_rq_retry"), 0)

    def test_concurrent_retries_limited(self):
        first = {"n": 0}
        release = threading.Event()
        self.addCleanup(release.set)
        lock = threading.Lock()

        def handler(req, resp):
            req.read_body()
            if req.path == "/a":
                with lock:
                    first["n"] += 1
                    n = first["n"]
                if n == 1:
                    resp.send(503, b"failed\n")     # retried ...
                    return
                release.wait(30)                    # ... and the retry is held
                resp.send(200, b"retried\n")
                return
            resp.send(503, b"failed\n")
        up = self.start_upstream("up", handler)
        port, adm = self.proxy(up, 1)
        ta, ra = in_thread(lambda: pftest.http_get(port, "/a"))
        wait_until(lambda: first["n"] == 2, 5, what="retry of /a in flight")
        self.assertEqual(stat(adm, "cluster.app.circuit_breakers.default.rq_retry_open"), 1)
        r = pftest.http_get(port, "/b")
        self.assertEqual(r.status, 503)
        self.assertEqual(stat(adm, "cluster.app.upstream_rq_retry_overflow"), 1)
        self.assertEqual(len([q for q in up.requests if q.path == "/b"]), 1)
        release.set()
        ta.join(10)
        self.assertEqual((ra[0].status, ra[0].body), (200, b"retried\n"))
        self.assertEqual(stat(adm, "cluster.app.circuit_breakers.default.rq_retry_open"), 0)
        # The slot is free again: /b is retried (3 times) this time.
        self.assertEqual(pftest.http_get(port, "/b").status, 503)
        self.assertEqual(len([q for q in up.requests if q.path == "/b"]), 5)
        self.assertEqual(stat(adm, "cluster.app.upstream_rq_retry"), 4)
        self.assertEqual(stat(adm, "cluster.app.upstream_rq_retry_overflow"), 1)


if __name__ == "__main__":
    pftest.main()
