"""The HTTP connection manager's timeouts through the binary, for HTTP/1.1
(raw sockets) and HTTP/2 (python-h2): stream_idle_timeout and the route's
idle_timeout, request_timeout, request_headers_timeout, and
common_http_protocol_options idle_timeout, max_stream_duration and
max_connection_duration, with Envoy's status codes, bodies and stats."""

import os
import time

import pftest
from pftest import (TF, ClassProxyTestCase, HttpConn, bootstrap, build_request, cluster,
                    free_port, http_get, listener, match_prefix, route, vhost, wait_until)
from test_access_log import file_log
from test_http2 import H2Client


def hcm_listener(name, port, routes, **hcm_extra):
    lst = listener(name, port, [vhost("svc", ["*"], routes)], stat_prefix=name)
    lst["filter_chains"][0]["filters"][0]["typed_config"].update(hcm_extra)
    return lst


def stat(admin_port, name):
    r = http_get(admin_port, "/stats", host="127.0.0.1")
    for line in r.body.decode().splitlines():
        k, _, v = line.partition(": ")
        if k == name:
            return int(v)
    return 0


# headers complete, 3 of 10 body bytes: the request never ends
PARTIAL_POST = build_request("POST", "/x", headers=[("Content-Length", "10")]) + b"abc"


class HcmTimeoutsTest(ClassProxyTestCase):

    NAMES = ("idle", "ridle", "rqto", "hdrto", "cxidle", "dur", "cxdur")

    @classmethod
    def setup_upstreams(cls):
        cls.up = cls.add_upstream("up")
        cls.ports = {n: free_port() for n in cls.NAMES}
        cls.log_path = os.path.join(pftest.tmpdir("alog"), "idle.log")

    @classmethod
    def make_config(cls):
        p = cls.ports
        fwd = [route(match_prefix("/"), "up")]
        return bootstrap([
            hcm_listener("main", cls.port, fwd),
            hcm_listener("idle", p["idle"], [
                route(match_prefix("/noidle"), "up", idle_timeout="0s"),
                route(match_prefix("/"), "up")], stream_idle_timeout="0.3s",
                access_log=[file_log(cls.log_path, {
                    "text_format": "%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS%\n"})]),
            hcm_listener("ridle", p["ridle"], [
                route(match_prefix("/short"), "up", idle_timeout="0.3s"),
                route(match_prefix("/"), "up")]),
            hcm_listener("rqto", p["rqto"], fwd, request_timeout="0.4s"),
            hcm_listener("hdrto", p["hdrto"], fwd, request_headers_timeout="0.3s"),
            hcm_listener("cxidle", p["cxidle"], fwd,
                         common_http_protocol_options={"idle_timeout": "0.3s"}),
            hcm_listener("dur", p["dur"], fwd,
                         common_http_protocol_options={"max_stream_duration": "0.4s"}),
            hcm_listener("cxdur", p["cxdur"], fwd,
                         common_http_protocol_options={"max_connection_duration": "0.4s"}),
        ], [cluster("up", [cls.up.port])], cls.admin_port)

    def stat(self, listener, name):
        return stat(self.admin_port, "http.%s.%s" % (listener, name))

    def timed(self, fn):
        t0 = time.monotonic()
        r = fn()
        return r, time.monotonic() - t0

    def assert_took(self, dt, lo):
        self.assertGreaterEqual(dt, lo * 0.8, "fired too early (%.2fs)" % dt)
        self.assertLess(dt, lo + 2.0 * TF, "fired too late (%.2fs)" % dt)

    # ---- stream_idle_timeout, route idle_timeout ----

    def test_h1_stream_idle_timeout_request_body_stalls(self):
        before = self.stat("idle", "downstream_rq_idle_timeout")
        with HttpConn(self.ports["idle"]) as c:
            c.send(PARTIAL_POST)
            r, dt = self.timed(c.read_response)
            self.assertEqual((r.status, r.body), (408, b"stream timeout"), r)
            self.assertEqual(r.headers.get("connection"), "close")
            self.assertTrue(c.wait_closed())
        self.assert_took(dt, 0.3)
        self.assertEqual(self.stat("idle", "downstream_rq_idle_timeout"), before + 1)

    def test_h1_stream_idle_timeout_upstream_silent(self):
        # The request is complete: Envoy answers 504 and keeps the connection.
        with HttpConn(self.ports["idle"]) as c:
            r, dt = self.timed(lambda: c.get("/x?delay=3"))
            self.assertEqual((r.status, r.body), (504, b"stream timeout"), r)
            self.assertEqual(c.get("/x").status, 200)
        self.assert_took(dt, 0.3)
        # Envoy's response flag SI in the access log
        wait_until(lambda: os.path.exists(self.log_path) and
                   "/x?delay=3 504 SI\n" in open(self.log_path).read(), 5 * TF)

    def test_h1_stream_idle_not_hit_while_data_moves(self):
        with HttpConn(self.ports["idle"]) as c:
            r = c.get("/x?size=2000000")
            self.assertEqual((r.status, len(r.body)), (200, 2000000))

    def test_route_idle_timeout_zero_disables(self):
        with HttpConn(self.ports["idle"]) as c:
            self.assertEqual(c.get("/noidle?delay=0.8").status, 200)

    def test_route_idle_timeout_overrides_hcm(self):
        with HttpConn(self.ports["ridle"]) as c:
            r, dt = self.timed(lambda: c.get("/short?delay=3"))
            self.assertEqual((r.status, r.body), (504, b"stream timeout"), r)
            self.assertEqual(c.get("/other?delay=0.6").status, 200)
        self.assert_took(dt, 0.3)

    def test_h2_stream_idle_timeout_route_override(self):
        c = H2Client(self.ports["ridle"])
        try:
            t0 = time.monotonic()
            sid = c.request("/short?delay=3")
            r = c.wait_response(sid, timeout=10 * TF)
            self.assertEqual(r["headers"][":status"], "504")
            self.assertEqual(bytes(r["body"]), b"stream timeout")
            self.assert_took(time.monotonic() - t0, 0.3)
        finally:
            c.close()

    # ---- request_timeout, request_headers_timeout ----

    def test_request_timeout(self):
        before = self.stat("rqto", "downstream_rq_timeout")
        with HttpConn(self.ports["rqto"]) as c:
            c.send(PARTIAL_POST)
            r, dt = self.timed(c.read_response)
            self.assertEqual((r.status, r.body), (408, b"request timeout"), r)
            self.assertTrue(c.wait_closed())
        self.assert_took(dt, 0.4)
        self.assertEqual(self.stat("rqto", "downstream_rq_timeout"), before + 1)

    def test_request_timeout_disarmed_once_request_complete(self):
        with HttpConn(self.ports["rqto"]) as c:
            self.assertEqual(c.get("/x?delay=0.8").status, 200)

    def test_request_headers_timeout(self):
        before = self.stat("hdrto", "downstream_rq_header_timeout")
        with HttpConn(self.ports["hdrto"]) as c:
            c.send(b"GET /x HTTP/1.1\r\nHost: example.com\r\n")
            r, dt = self.timed(c.read_response)
            self.assertEqual((r.status, r.body), (408, b"request header timeout"), r)
            self.assertTrue(c.wait_closed())
        self.assert_took(dt, 0.3)
        self.assertEqual(self.stat("hdrto", "downstream_rq_header_timeout"), before + 1)

    def test_request_headers_timeout_disarmed_after_headers(self):
        with HttpConn(self.ports["hdrto"]) as c:
            self.assertEqual(c.get("/x?delay=0.6").status, 200)

    # ---- common_http_protocol_options ----

    def test_connection_idle_timeout_h1(self):
        before = self.stat("cxidle", "downstream_cx_idle_timeout")
        with HttpConn(self.ports["cxidle"]) as c:
            self.assertEqual(c.get("/x").status, 200)
            closed, dt = self.timed(lambda: c.wait_closed(5 * TF))
            self.assertTrue(closed)
            self.assertEqual(c.trailing, b"")
        self.assert_took(dt, 0.3)
        wait_until(lambda: self.stat("cxidle", "downstream_cx_idle_timeout") > before, 5 * TF)

    def test_connection_idle_timeout_before_first_request(self):
        with HttpConn(self.ports["cxidle"]) as c:
            self.assertTrue(c.wait_closed(5 * TF))

    def test_connection_idle_timeout_h2_goaway(self):
        c = H2Client(self.ports["cxidle"])
        try:
            sid = c.request("/x")
            self.assertEqual(c.wait_response(sid)["headers"][":status"], "200")
            goaway = c.wait_closed(5 * TF)
            self.assertIsNotNone(goaway)
            self.assertEqual(int(goaway.error_code), 0)
        finally:
            c.close()

    def test_default_connection_stays_open(self):
        with HttpConn(self.port) as c:
            self.assertEqual(c.get("/x").status, 200)
            self.assertFalse(c.wait_closed(0.6))
            self.assertEqual(c.get("/x").status, 200)

    def test_max_stream_duration(self):
        before = self.stat("dur", "downstream_rq_max_duration_reached")
        with HttpConn(self.ports["dur"]) as c:
            r, dt = self.timed(lambda: c.get("/x?delay=3"))
            self.assertEqual((r.status, r.body), (504, b"downstream duration timeout"), r)
        self.assert_took(dt, 0.4)
        self.assertEqual(self.stat("dur", "downstream_rq_max_duration_reached"), before + 1)

    def test_max_stream_duration_resets_started_response(self):
        # headers sent, body never finishes: too late for a reply, the stream is cut
        with HttpConn(self.ports["dur"]) as c:
            c.send(build_request("GET", "/x?reset=1000000"))
            self.assertTrue(c.wait_closed(5 * TF))

    def test_max_connection_duration_drains(self):
        before = self.stat("cxdur", "downstream_cx_max_duration_reached")
        with HttpConn(self.ports["cxdur"]) as c:
            self.assertEqual(c.get("/x").status, 200)
            self.assertTrue(c.wait_closed(5 * TF))
        wait_until(lambda: self.stat("cxdur", "downstream_cx_max_duration_reached") > before,
                   5 * TF)

    def test_max_connection_duration_finishes_response_in_flight(self):
        with HttpConn(self.ports["cxdur"]) as c:
            r = c.get("/x?delay=0.7")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers.get("connection"), "close")


if __name__ == "__main__":
    pftest.main()
