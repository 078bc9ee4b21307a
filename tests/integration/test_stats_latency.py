"""Latency histograms through the real binary: an upstream that answers after a
known delay shows up in upstream_rq_time / downstream_rq_time quantiles (text
and JSON) and in the Prometheus buckets.  The proxy's quantiles are compared
with what the client itself timed for the same requests (the shared machine
adds its own jitter to the upstream's delay), within a few percent."""

import json
import math
import re
import time
import unittest

import pftest
from pftest import (TF, ClassProxyTestCase, HttpConn, cluster, match_prefix, route,
                    simple_bootstrap)

DELAY_S = 0.2
N = 12


def admin_get(port, path):
    with HttpConn(port) as c:
        return c.request("GET", path, host="127.0.0.1")


class LatencyHistogramTest(ClassProxyTestCase):

    @classmethod
    def setup_upstreams(cls):
        cls.up = cls.add_upstream("up")

    @classmethod
    def make_config(cls):
        return simple_bootstrap(cls.port, cls.admin_port, [route(match_prefix("/"), "slow")],
                                [cluster("slow", [cls.up.port])])

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Warm the Python upstream directly so its first-request cost is not measured.
        with HttpConn(cls.up.port, timeout=10 * TF) as c:
            assert c.get("/warm").status == 200
        cls.client_ms = []
        with HttpConn(cls.port, timeout=10 * TF) as c:
            for _ in range(N):
                t0 = time.monotonic()
                r = c.get("/x?delay=%s" % DELAY_S)
                cls.client_ms.append((time.monotonic() - t0) * 1000)
                assert r.status == 200, r
        cls.client_ms.sort()

    def exact(self, p):
        """The client's own order statistic for percentile p (rank ceil(q*n))."""
        rank = max(1, math.ceil(p / 100 * N))
        return self.client_ms[rank - 1]

    def quantiles(self, name):
        """Cumulative quantiles (ms) of one histogram from /stats?format=json."""
        doc = json.loads(admin_get(self.admin_port, "/stats?format=json").body)
        for entry in doc["stats"]:
            if "histograms" not in entry:
                continue
            h = entry["histograms"]
            for q in h["computed_quantiles"]:
                if q["name"] == name:
                    return dict(zip(h["supported_quantiles"], [v["cumulative"] for v in q["values"]]))
        self.fail("histogram %s not in /stats?format=json" % name)

    def check_against_client(self, name):
        q = self.quantiles(name)
        for p in (0, 25, 50, 75, 90, 99, 100):
            want = self.exact(p)
            # Each request's proxy time is a sub-interval of the client's, so
            # every order statistic is bounded by the client's (plus the
            # histogram's 1% error); the upstream's delay is a hard floor.
            # On a quiet machine the two bounds are a few percent apart; on a
            # loaded one the client's own overhead widens them.
            self.assertGreaterEqual(q[p], DELAY_S * 1000 * 0.99, "%s P%s" % (name, p))
            self.assertLessEqual(q[p], want * 1.01, "%s P%s=%s client=%s" % (name, p, q[p], want))

    def test_upstream_rq_time_quantiles(self):
        self.check_against_client("cluster.slow.upstream_rq_time")

    def test_downstream_rq_time_quantiles(self):
        self.check_against_client("http.ingress_http.downstream_rq_time")

    def test_text_quantile_line(self):
        body = admin_get(self.admin_port, "/stats?filter=cluster.slow.upstream_rq_time").body.decode()
        line = [l for l in body.splitlines() if l.startswith("cluster.slow.upstream_rq_time:")]
        self.assertEqual(len(line), 1, body)
        self.assertRegex(line[0], r"P0\([^)]+\) P25\(.*P99\.9\([^)]+\) P99\.99\([^)]+\) P100\([^)]+\)$")

    def test_prometheus_buckets(self):
        text = admin_get(self.admin_port, "/stats/prometheus").body.decode()

        def bucket(le):
            m = re.search(r'^envoy_cluster_upstream_rq_time_bucket\{envoy_cluster_name="slow",'
                          r'le="%s"\} (\d+)$' % re.escape(le), text, re.M)
            self.assertIsNotNone(m, "bucket le=%s missing" % le)
            return int(m.group(1))
        self.assertEqual(bucket("100"), 0)
        self.assertGreaterEqual(bucket("250"), sum(1 for t in self.client_ms if t < 246))
        self.assertEqual(bucket("+Inf"), N)
        m = re.search(r'^envoy_cluster_upstream_rq_time_count\{envoy_cluster_name="slow"\} (\d+)$',
                      text, re.M)
        self.assertEqual(int(m.group(1)), N)

    def test_counts_exact(self):
        text = admin_get(self.admin_port, "/stats?filter=^cluster\\.slow\\.upstream_rq_(total|200)$").body
        self.assertIn(b"cluster.slow.upstream_rq_200: %d\n" % N, text)
        self.assertIn(b"cluster.slow.upstream_rq_total: %d\n" % N, text)


if __name__ == "__main__":
    pftest.main()
