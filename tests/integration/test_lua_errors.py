"""Lua runtime errors through the real binary: a failing envoy_on_request
answers 500 (gRPC: trailers-only), a failing envoy_on_response answers 500
while the response headers are still held and resets the stream once they
went downstream; every error is counted, the traceback is logged once per
interval, and the worker keeps serving."""

import socket
import unittest

import pftest
from pftest import ClassProxyTestCase, HttpConn, cluster, match_prefix, route, simple_bootstrap

LUA_TYPE = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"

SCRIPT = r"""
local function fail(where) error("boom in " .. where) end
function envoy_on_request(h)
  local p = h:headers():get(":path")
  if p == "/req-error" or p == "/grpc.Svc/Method" then
    fail("request")
  end
  if p == "/body-error" then
    h:body()
    fail("body")
  end
end

function envoy_on_response(h)
  local p = (h:headers():get("x-path") or ""):gsub("%?.*", "")
  if p == "/resp-error" then
    fail("response")
  end
  if p == "/resp-chunk-error" then
    for c in h:bodyChunks() do
      fail("response chunk")
    end
  end
end
"""


class LuaErrorTest(ClassProxyTestCase):

    @classmethod
    def setup_upstreams(cls):
        cls.up = cls.add_upstream("up")

    @classmethod
    def make_config(cls):
        r = route(match_prefix("/"), "up")
        # the upstream's response names the request path, for envoy_on_response
        r["response_headers_to_add"] = [
            {"header": {"key": "x-path", "value": "%REQ(:PATH)%"}}]
        cfg = simple_bootstrap(cls.port, cls.admin_port, [r], [cluster("up", [cls.up.port])])
        hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
            "typed_config"]
        hcm["http_filters"] = [{"name": "lua", "typed_config": {
            "@type": LUA_TYPE, "default_source_code": {"inline_string": SCRIPT}}}] + \
            hcm["http_filters"]
        return cfg

    def errors(self):
        stats = pftest.http_get(self.admin_port, "/stats").body.decode()
        for line in stats.splitlines():
            if line.startswith("http.ingress_http.lua.errors:"):
                return int(line.split()[1])
        return 0

    def get(self, path, **kw):
        with HttpConn(self.port) as c:
            return c.get(path, **kw)

    def test_request_error_answers_500(self):
        before = self.errors()
        r = self.get("/req-error")
        self.assertEqual(r.status, 500, r)
        self.assertEqual(self.errors(), before + 1)
        # the worker is still there and the script still runs
        self.assertEqual(self.get("/fine").status, 200)
        # logged with its traceback (unless another error was logged less
        # than an interval ago: see test_traceback_logged_once_per_interval)
        pftest.wait_until(lambda: "stack traceback" in self.proxy.log(), 5 * pftest.TF,
                          what="traceback in the log")
        self.assertRegex(self.proxy.log(), r"boom in \w+")

    def test_error_after_body_answers_500(self):
        with HttpConn(self.port) as c:
            r = c.request("POST", "/body-error", body=b"x" * 1000)
        self.assertEqual(r.status, 500, r)

    def test_grpc_request_error_is_trailers_only(self):
        r = self.get("/grpc.Svc/Method", headers=[("content-type", "application/grpc")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("grpc-status"), "2")     # UNKNOWN, Envoy's map of 500
        self.assertIn("lua filter", r.headers.get("grpc-message"))

    def test_response_error_answers_500(self):
        r = self.get("/resp-error")
        self.assertEqual(r.status, 500, r)

    def test_response_error_after_headers_resets(self):
        # bodyChunks() lets the headers go downstream; the error comes with
        # the first chunk: too late for a 500, so the stream is reset
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10 * pftest.TF)
        sock.sendall(b"GET /resp-chunk-error?size=100000&chunked=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        try:
            while True:
                b = sock.recv(65536)
                if not b:
                    break
                data += b
        except ConnectionResetError:
            pass
        finally:
            sock.close()
        # the reset may discard what the client had not read yet: either the
        # 200 headers arrived, or nothing did; never a 500, never a whole body
        if data:
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:100])
        self.assertNotIn(b"\r\n0\r\n\r\n", data)
        # the access log has the 200 that went out before the error
        pftest.wait_until(lambda: '"GET /resp-chunk-error?size=100000&chunked=1" 200'
                          in self.proxy.log(), 5 * pftest.TF, what="access log entry")
        self.assertEqual(self.get("/fine").status, 200)

    def test_traceback_logged_once_per_interval(self):
        marker = "stack traceback"
        n0 = self.proxy.log().count(marker)
        before = self.errors()
        with HttpConn(self.port) as c:      # one connection: one worker
            for _ in range(20):
                self.assertEqual(c.get("/req-error").status, 500)
        # every error is counted ...
        self.assertEqual(self.errors(), before + 20)
        # ... but 20 errors within far less than the 1 s interval log at
        # most twice (the burst may straddle one interval boundary)
        self.assertLessEqual(self.proxy.log().count(marker) - n0, 2)


if __name__ == "__main__":
    unittest.main()
