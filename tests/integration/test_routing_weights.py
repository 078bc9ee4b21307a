"""Routing: weighted_clusters split, live weight changes through the admin
runtime (runtime_key_prefix) and pilotfish's sticky hashing."""

import collections
import threading
import time

import pftest
from pftest import ClassProxyTestCase, HttpConn, bootstrap, cluster, listener, vhost

THREADS = 8


class RoutingWeightsTest(ClassProxyTestCase):

    @classmethod
    def setup_upstreams(cls):
        cls.stable = cls.add_upstream("stable")
        cls.canary = cls.add_upstream("canary")

    @classmethod
    def make_config(cls):
        wc = {"clusters": [{"name": "stable", "weight": 90}, {"name": "canary", "weight": 10}]}
        rt = dict(wc, runtime_key_prefix="routing.traffic_shift.app")
        routes = [
            {"match": {"prefix": "/split"}, "route": {"weighted_clusters": wc}},
            {"match": {"prefix": "/shift"}, "route": {"weighted_clusters": rt}},
            {"match": {"prefix": "/sticky-header"}, "route": {
                "weighted_clusters": wc, "hash_policy": [{"header": {"header_name": "x-user"}}]}},
            {"match": {"prefix": "/sticky-cookie"}, "route": {
                "weighted_clusters": wc,
                "hash_policy": [{"cookie": {"name": "pf-sticky", "ttl": "3600s"}}]}},
        ]
        return bootstrap([listener("main", cls.port, [vhost("app", ["*"], routes)])],
                         [cluster("stable", [cls.stable.port]),
                          cluster("canary", [cls.canary.port])], cls.admin_port)

    def count(self, path, n, headers=()):
        """n GETs over THREADS keep-alive connections; Counter of upstream names."""
        counts = collections.Counter()
        lock = threading.Lock()
        errors = []

        def run(k):
            local = collections.Counter()
            try:
                with HttpConn(self.port) as c:
                    for i in range(k):
                        r = c.get(path, headers=list(headers))
                        if r.status != 200:
                            errors.append(r.status)
                        local[r.headers.get("x-upstream-name")] += 1
            except Exception as e:      # noqa: BLE001 - reported below
                errors.append(repr(e))
            with lock:
                counts.update(local)
        ts = [threading.Thread(target=run, args=(n // THREADS,)) for _ in range(THREADS)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        self.assertEqual(errors, [])
        return counts

    def admin_post(self, path):
        with HttpConn(self.admin_port) as c:
            r = c.request("POST", path, host="127.0.0.1")
        self.assertEqual(r.status, 200, r)

    def test_split_90_10(self):
        n = 20000
        c = self.count("/split", n)
        self.assertEqual(sum(c.values()), n, c)
        frac = c["canary"] / n
        self.assertTrue(0.09 <= frac <= 0.11, "canary %.2f%% (want 10 +- 1): %r" % (
            frac * 100, c))

    def test_runtime_shift(self):
        try:
            c = self.count("/shift", 4000)
            self.assertTrue(0.07 <= c["canary"] / 4000 <= 0.13, c)
            self.admin_post("/runtime_modify?routing.traffic_shift.app.stable=50"
                            "&routing.traffic_shift.app.canary=50")
            deadline = time.time() + 1.0
            while True:         # applies within a second, every request succeeding
                c = self.count("/shift", 4000)
                if 0.45 <= c["canary"] / 4000 <= 0.55 or time.time() > deadline:
                    break
            self.assertTrue(0.45 <= c["canary"] / 4000 <= 0.55, c)
            self.admin_post("/runtime_modify?routing.traffic_shift.app.stable=100"
                            "&routing.traffic_shift.app.canary=0")
            time.sleep(0.2)
            c = self.count("/shift", 800)
            self.assertEqual(c["canary"], 0, c)
        finally:
            self.admin_post("/runtime_modify?routing.traffic_shift.app.stable="
                            "&routing.traffic_shift.app.canary=")

    def test_sticky_header(self):
        users = ["user-%d" % i for i in range(300)]
        first = {}
        with HttpConn(self.port) as c:
            for _ in range(3):
                for u in users:
                    r = c.get("/sticky-header", headers=[("x-user", u)])
                    self.assertEqual(r.status, 200, r)
                    name = r.headers.get("x-upstream-name")
                    self.assertEqual(first.setdefault(u, name), name, u)
        canary = sum(1 for v in first.values() if v == "canary")
        self.assertTrue(10 <= canary <= 60, canary)

    def test_sticky_cookie(self):
        with HttpConn(self.port) as c:
            r = c.get("/sticky-cookie")
            self.assertEqual(r.status, 200, r)
            sc = r.headers.get("set-cookie")
            self.assertTrue(sc and sc.startswith('pf-sticky="'), sc)
            self.assertIn("Max-Age=3600", sc)
            self.assertIn("HttpOnly", sc)
            cookie = sc.split(";")[0]
            name = r.headers.get("x-upstream-name")
        for _ in range(20):
            with HttpConn(self.port) as c:
                r = c.get("/sticky-cookie", headers=[("cookie", "a=b; " + cookie)])
                self.assertEqual(r.headers.get("x-upstream-name"), name)
                self.assertIsNone(r.headers.get("set-cookie"))


if __name__ == "__main__":
    pftest.main()
