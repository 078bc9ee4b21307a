"""Routing: matching, virtual hosts, rewrites, direct responses, weights, LB."""

import collections

import pftest
from pftest import (ClassProxyTestCase, HttpConn, bootstrap, cluster, direct, listener,
                    match_path, match_prefix, route, vhost)


class RoutingTest(ClassProxyTestCase):

    @classmethod
    def setup_upstreams(cls):
        cls.up = cls.add_upstream("up")
        cls.a = cls.add_upstream("a")
        cls.b = cls.add_upstream("b")
        cls.rr1 = cls.add_upstream("rr1")
        cls.rr2 = cls.add_upstream("rr2")

    @classmethod
    def make_config(cls):
        svc = vhost("svc", ["*"], [
            direct(match_prefix("/direct"), 200, "direct\n"),
            direct(match_prefix("/teapot"), 418, "short and stout\n"),
            route(match_path("/exact"), "a", timeout="0.5s"),
            route(match_prefix("/api/"), "up", prefix_rewrite="/v2/",
                  host_rewrite_literal="rewritten.example"),
            route(match_prefix("/weighted"), weighted=[("a", 90), ("b", 10)]),
            route(match_prefix("/rr"), "rr"),
            route(match_prefix("/"), "up"),
        ])
        other = vhost("other", ["other.example", "*.wild.example"], [
            direct(match_prefix("/"), 201, "other\n")])
        withport = vhost("withport", ["withport.example:8080"], [
            direct(match_prefix("/"), 202, "withport\n")])
        nr = vhost("nr", ["nr.example"], [
            direct(match_prefix("/only"), 200, "only\n")])
        return bootstrap([listener("main", cls.port, [svc, other, withport, nr])], [
            cluster("up", [cls.up.port]),
            cluster("a", [cls.a.port]),
            cluster("b", [cls.b.port]),
            cluster("rr", [cls.rr1.port, cls.rr2.port]),
        ], cls.admin_port)

    def get(self, path, host="example.com", **kw):
        with HttpConn(self.port) as c:
            return c.get(path, host=host, **kw)

    def test_direct_response(self):
        r = self.get("/direct")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"direct\n")
        self.assertEqual(r.headers.get("content-length"), "7")

    def test_direct_response_custom_status(self):
        r = self.get("/teapot")
        self.assertEqual((r.status, r.body), (418, b"short and stout\n"))

    def test_prefix_route_to_upstream(self):
        r = self.get("/some/path?x=1")
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertEqual(j["upstream"], "up")
        self.assertEqual(j["target"], "/some/path?x=1")
        self.assertEqual(j["method"], "GET")

    def test_exact_path_route(self):
        r = self.get("/exact")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["upstream"], "a")
        # Exact match must not behave as a prefix.
        for p in ("/exact/more", "/exactly"):
            r = self.get(p)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["upstream"], "up", "path %s" % p)

    def test_exact_path_ignores_query(self):
        r = self.get("/exact?q=1")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["upstream"], "a")

    def test_prefix_rewrite_and_host_rewrite(self):
        r = self.get("/api/users?id=7", host="example.com")
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertEqual(j["target"], "/v2/users?id=7")
        hosts = [v for k, v in j["headers"] if k.lower() == "host"]
        self.assertEqual(hosts, ["rewritten.example"])

    def test_host_forwarded_unchanged_without_rewrite(self):
        r = self.get("/plain", host="client.example")
        hosts = [v for k, v in r.json()["headers"] if k.lower() == "host"]
        self.assertEqual(hosts, ["client.example"])

    def test_vhost_exact_domain(self):
        r = self.get("/anything", host="other.example")
        self.assertEqual((r.status, r.body), (201, b"other\n"))

    def test_vhost_domain_case_insensitive(self):
        r = self.get("/anything", host="OTHER.Example")
        self.assertEqual((r.status, r.body), (201, b"other\n"))

    def test_vhost_wildcard_suffix(self):
        for h in ("a.wild.example", "deep.sub.wild.example"):
            r = self.get("/x", host=h)
            self.assertEqual((r.status, r.body), (201, b"other\n"), "host %s" % h)

    def test_vhost_wildcard_does_not_match_bare_suffix(self):
        # Envoy: "*.wild.example" does not match "wild.example" itself.
        r = self.get("/x", host="wild.example")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["upstream"], "up")

    def test_vhost_host_with_port(self):
        r = self.get("/x", host="withport.example:8080")
        self.assertEqual((r.status, r.body), (202, b"withport\n"))

    def test_vhost_default_star(self):
        r = self.get("/x", host="unknown.example")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["upstream"], "up")

    def test_no_route_404_empty_body(self):
        r = self.get("/nothing-here", host="nr.example")
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.body, b"")
        r = self.get("/only", host="nr.example")
        self.assertEqual((r.status, r.body), (200, b"only\n"))

    def test_weighted_clusters_split(self):
        counts = collections.Counter()
        n = 1000
        with HttpConn(self.port) as c:
            for i in range(n):
                r = c.get("/weighted/%d" % i)
                self.assertEqual(r.status, 200, r)
                counts[r.headers.get("x-upstream-name")] += 1
        self.assertEqual(counts["a"] + counts["b"], n, counts)
        frac = counts["a"] / n
        self.assertTrue(0.80 <= frac <= 0.97, "a got %.1f%% (want ~90%%): %r" % (
            frac * 100, counts))

    def test_round_robin_two_hosts(self):
        seq = []
        with HttpConn(self.port) as c:
            for i in range(100):
                r = c.get("/rr/%d" % i)
                self.assertEqual(r.status, 200, r)
                seq.append(r.headers.get("x-upstream-name"))
        counts = collections.Counter(seq)
        self.assertEqual(set(counts), {"rr1", "rr2"}, counts)
        self.assertLessEqual(abs(counts["rr1"] - counts["rr2"]), 1,
                             "unbalanced round robin: %r; sequence %r" % (counts, seq[:20]))


if __name__ == "__main__":
    pftest.main()
