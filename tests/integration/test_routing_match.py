"""Routing: header/query/regex matching, cluster_header, redirects and header
manipulation with %VARIABLE% substitutions, through the real binary."""

import pftest
from pftest import ClassProxyTestCase, HttpConn, bootstrap, cluster, listener, vhost


def hdr(key, value, **kw):
    d = {"header": {"key": key, "value": value}}
    d.update(kw)
    return d


class RoutingMatchTest(ClassProxyTestCase):

    @classmethod
    def setup_upstreams(cls):
        cls.stable = cls.add_upstream("stable")
        cls.canary = cls.add_upstream("canary")

    @classmethod
    def make_config(cls):
        routes = [
            {"match": {"prefix": "/app", "headers": [
                {"name": "x-canary", "string_match": {"exact": "always"}}]},
             "route": {"cluster": "canary"}},
            {"match": {"prefix": "/q", "query_parameters": [
                {"name": "version", "string_match": {"exact": "canary"}}]},
             "route": {"cluster": "canary"}},
            {"match": {"safe_regex": {"google_re2": {}, "regex": "/items/[0-9]+"}},
             "route": {"cluster": "canary"}},
            {"match": {"prefix": "/by-header"}, "route": {"cluster_header": "x-cluster"}},
            {"match": {"prefix": "/old"},
             "redirect": {"prefix_rewrite": "/new", "response_code": "FOUND"}},
            {"match": {"prefix": "/secure"}, "redirect": {"https_redirect": True,
                                                         "strip_query": True}},
            {"match": {"prefix": "/rx/"},
             "route": {"cluster": "stable", "regex_rewrite": {
                 "pattern": {"regex": "^/rx/([a-z]+)/([0-9]+)"},
                 "substitution": "/v2/\\2/\\1"}}},
            {"match": {"prefix": "/hdrs"},
             "route": {"cluster": "stable"},
             "request_headers_to_add": [
                 hdr("x-client-ip", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"),
                 hdr("x-proto", "%PROTOCOL% 100%%"),
                 hdr("x-ua-copy", "%REQ(user-agent)%"),
                 hdr("x-level", "route", append_action="OVERWRITE_IF_EXISTS_OR_ADD")],
             "request_headers_to_remove": ["x-secret"],
             "response_headers_to_add": [hdr("x-resp-code", "%RESPONSE_CODE%"),
                                         hdr("x-served-by", "pilotfish")],
             "response_headers_to_remove": ["x-upstream-name"]},
            {"match": {"prefix": "/"}, "route": {"cluster": "stable"}},
        ]
        vh = vhost("app", ["*"], routes)
        vh["request_headers_to_add"] = [hdr("x-vhost", "yes")]
        l = listener("main", cls.port, [vh])
        return bootstrap([l], [cluster("stable", [cls.stable.port]),
                               cluster("canary", [cls.canary.port])], cls.admin_port)

    def get(self, path, headers=None, host="example.com"):
        with HttpConn(self.port) as c:
            return c.get(path, headers=list((headers or {}).items()), host=host)

    def upstream_of(self, r):
        self.assertEqual(r.status, 200, r)
        return r.headers.get("x-upstream-name")

    def test_header_pinning(self):
        self.assertEqual(self.upstream_of(self.get("/app/x")), "stable")
        self.assertEqual(self.upstream_of(self.get("/app/x", {"x-canary": "always"})), "canary")
        self.assertEqual(self.upstream_of(self.get("/app/x", {"x-canary": "never"})), "stable")

    def test_query_parameter(self):
        self.assertEqual(self.upstream_of(self.get("/q?version=canary")), "canary")
        self.assertEqual(self.upstream_of(self.get("/q?a=1&version=canary")), "canary")
        self.assertEqual(self.upstream_of(self.get("/q?version=stable")), "stable")

    def test_regex_path(self):
        self.assertEqual(self.upstream_of(self.get("/items/42")), "canary")
        self.assertEqual(self.upstream_of(self.get("/items/42?x=y")), "canary")
        self.assertEqual(self.upstream_of(self.get("/items/42a")), "stable")

    def test_cluster_header(self):
        self.assertEqual(self.upstream_of(self.get("/by-header", {"x-cluster": "canary"})),
                         "canary")
        for h in ({"x-cluster": "nope"}, {}):
            r = self.get("/by-header", h)
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.body, b"")

    def test_redirects(self):
        r = self.get("/old/page?x=1")
        self.assertEqual(r.status, 302, r)
        self.assertEqual(r.headers.get("location"), "http://example.com/new/page?x=1")
        r = self.get("/secure/a?b=c", host="example.com:80")
        self.assertEqual(r.status, 301, r)
        self.assertEqual(r.headers.get("location"), "https://example.com/secure/a")
        self.assertEqual(r.headers.get("content-length"), "0")

    def test_regex_rewrite(self):
        r = self.get("/rx/users/7?z=1")
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertEqual(j["target"], "/v2/7/users?z=1")

    def test_header_manipulation(self):
        r = self.get("/hdrs", {"user-agent": "pf-test/1", "x-secret": "s",
                               "x-level": "client"})
        self.assertEqual(r.status, 200, r)
        h = {}
        for k, v in r.json()["headers"]:
            h.setdefault(k.lower(), []).append(v)
        self.assertEqual(h["x-client-ip"], ["127.0.0.1"])
        self.assertEqual(h["x-proto"], ["HTTP/1.1 100%"])
        self.assertEqual(h["x-ua-copy"], ["pf-test/1"])
        self.assertEqual(h["x-level"], ["route"])
        self.assertEqual(h["x-vhost"], ["yes"])
        self.assertNotIn("x-secret", h)
        self.assertEqual(r.headers.get("x-resp-code"), "200")
        self.assertEqual(r.headers.get("x-served-by"), "pilotfish")
        self.assertIsNone(r.headers.get("x-upstream-name"))


if __name__ == "__main__":
    pftest.main()
