"""Load balancing through the binary: weighted round robin, least request,
random, ring hash and maglev with a header hash policy, the panic threshold,
circuit breaker overflow (503 UO), outlier ejection and admin /clusters."""

import collections
import threading

import pftest
from pftest import ClassProxyTestCase, HttpConn, bootstrap, listener, sockaddr, vhost


def weighted_cluster(name, ups, weights, policy="ROUND_ROBIN", **extra):
    eps = [{"endpoint": {"address": sockaddr(u.port)}, "load_balancing_weight": w}
           for u, w in zip(ups, weights)]
    c = {"name": name, "type": "STATIC", "connect_timeout": "0.25s", "lb_policy": policy,
         "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": eps}]}}
    c.update(extra)
    return c


class LbTest(ClassProxyTestCase):

    @classmethod
    def setup_upstreams(cls):
        cls.ups = [cls.add_upstream("u%d" % i) for i in range(3)]
        cls.bad = cls.add_upstream("bad", handler=lambda req, resp: resp.send(500, b"no"))
        cls.good = cls.add_upstream("good")
        cls.dead_port = pftest.free_port()

    @classmethod
    def make_config(cls):
        w = [1, 2, 5]
        hp = [{"header": {"header_name": "x-user"}}]
        routes = []
        clusters = []
        for pol in ("ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "RING_HASH", "MAGLEV"):
            name = pol.lower()
            clusters.append(weighted_cluster(name, cls.ups, w, pol))
            routes.append({"match": {"prefix": "/" + name},
                           "route": {"cluster": name, "hash_policy": hp}})
        # Panic: 1 of 3 hosts alive (TCP checks), threshold 50% -> all hosts used.
        clusters.append({
            "name": "panic", "type": "STATIC", "connect_timeout": "0.25s",
            "load_assignment": {"cluster_name": "panic", "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": sockaddr(p)}}
                for p in (cls.ups[0].port, cls.dead_port, pftest.free_port())]}]},
            "health_checks": [{"timeout": "0.2s", "interval": "0.2s", "no_traffic_interval": "0.2s",
                               "unhealthy_threshold": 1, "healthy_threshold": 1,
                               "tcp_health_check": {}}]})
        routes.append({"match": {"prefix": "/panic"}, "route": {"cluster": "panic"}})
        # Breakers: one request at a time.
        clusters.append(dict(weighted_cluster("tiny", [cls.ups[0]], [1]), circuit_breakers={
            "thresholds": [{"max_requests": 1, "max_pending_requests": 1}]}))
        routes.append({"match": {"prefix": "/tiny"}, "route": {"cluster": "tiny", "timeout": "5s"}})
        # Outlier detection: the host answering 500 is ejected after 3 in a row.
        clusters.append(dict(weighted_cluster("od", [cls.bad, cls.good], [1, 1]), outlier_detection={
            "consecutive_5xx": 3, "interval": "1s", "base_ejection_time": "30s",
            "max_ejection_percent": 50}))
        routes.append({"match": {"prefix": "/od"}, "route": {"cluster": "od"}})
        return bootstrap([listener("main", cls.port, [vhost("svc", ["*"], routes)])], clusters,
                         cls.admin_port)

    def names(self, path, n, header=None):
        c = collections.Counter()
        with HttpConn(self.port) as conn:
            for i in range(n):
                hs = [("x-user", header(i))] if header else []
                r = conn.get(path, headers=hs)
                self.assertEqual(r.status, 200, r.body)
                c[r.headers.get("x-upstream-name")] += 1
        return c

    def test_weighted_round_robin_exact(self):
        c = self.names("/round_robin", 800)
        self.assertEqual((c["u0"], c["u1"], c["u2"]), (100, 200, 500))

    def test_least_request_honours_weights(self):
        c = self.names("/least_request", 1600)
        for u, w in (("u0", 1), ("u1", 2), ("u2", 5)):
            self.assertAlmostEqual(c[u] / 1600, w / 8, delta=0.06, msg=str(c))

    def test_random_spreads(self):
        c = self.names("/random", 900)
        for u in ("u0", "u1", "u2"):
            self.assertAlmostEqual(c[u] / 900, 1 / 3, delta=0.08, msg=str(c))

    def check_hash(self, path):
        # The same key always lands on the same host; keys spread by weight.
        first = {}
        with HttpConn(self.port) as conn:
            for rnd in range(2):
                for k in range(300):
                    r = conn.get(path, headers=[("x-user", "user-%d" % k)])
                    self.assertEqual(r.status, 200)
                    u = r.headers.get("x-upstream-name")
                    if rnd == 0:
                        first[k] = u
                    else:
                        self.assertEqual(first[k], u, "key %d moved" % k)
        c = collections.Counter(first.values())
        self.assertGreater(c["u2"], c["u0"], str(c))
        self.assertEqual(set(c), {"u0", "u1", "u2"})

    def test_ring_hash_sticky(self):
        self.check_hash("/ring_hash")

    def test_maglev_sticky(self):
        self.check_hash("/maglev")

    def test_panic_uses_all_hosts(self):
        pftest.wait_until(lambda: "cluster.panic.membership_healthy: 1" in pftest.http_get(
            self.admin_port, "/stats").body.decode(), 5, what="2 of 3 unhealthy")
        statuses = collections.Counter()
        with HttpConn(self.port) as conn:
            for _ in range(30):
                statuses[conn.get("/panic").status] += 1
        # Dead hosts are still chosen in panic: 503 UF for their share.
        self.assertGreater(statuses[503], 0, statuses)
        self.assertGreater(statuses[200], 0, statuses)
        stats = pftest.http_get(self.admin_port, "/stats").body.decode()
        self.assertNotIn("cluster.panic.lb_healthy_panic: 0\n", stats)
        text = pftest.http_get(self.admin_port, "/clusters").body.decode()
        self.assertIn("panic::127.0.0.1:%d::health_flags::/failed_active_hc" % self.dead_port, text)

    def test_breaker_overflow_503_uo(self):
        results = []

        def slow():
            with HttpConn(self.port) as conn:
                results.append(conn.get("/tiny?delay=0.6").status)
        t = threading.Thread(target=slow)
        t.start()
        self.ups[0].wait_requests(1)
        pftest.wait_until(lambda: "cluster.tiny.upstream_rq_active: 1" in pftest.http_get(
            self.admin_port, "/stats").body.decode(), 5, what="slow request active")
        with HttpConn(self.port) as conn:
            r = conn.get("/tiny")
        t.join(5)
        self.assertEqual(r.status, 503)
        self.assertIn(b"overflow", r.body)
        self.assertEqual(results, [200])
        stats = pftest.http_get(self.admin_port, "/stats").body.decode()
        self.assertIn("cluster.tiny.upstream_rq_pending_overflow: 1", stats)
        text = pftest.http_get(self.admin_port, "/clusters").body.decode()
        self.assertIn("tiny::default_priority::max_requests::1", text)
        self.assertIn("tiny::default_priority::max_pending_requests::1", text)

    def test_outlier_ejects_failing_host(self):
        with HttpConn(self.port) as conn:
            for _ in range(12):
                conn.get("/od")
        pftest.wait_until(lambda: "od::127.0.0.1:%d::health_flags::/failed_outlier_check" % self.bad.port
                          in pftest.http_get(self.admin_port, "/clusters").body.decode(), 5,
                          what="bad host ejected")
        c = self.names("/od", 20)
        self.assertEqual(c, {"good": 20})
        stats = pftest.http_get(self.admin_port, "/stats").body.decode()
        self.assertIn("cluster.od.outlier_detection.ejections_active: 1", stats)
        self.assertIn("cluster.od.outlier_detection.ejections_enforced_consecutive_5xx: 1", stats)


if __name__ == "__main__":
    pftest.main()
