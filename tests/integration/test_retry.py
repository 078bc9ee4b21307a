"""route.retry_policy through the real binary: connect failures, 5xx answers,
resets and per-try timeouts are retried on another host (previous_hosts),
bodies are replayed intact, and exhausted retries pass the last answer on
with upstream_rq_retry_limit_exceeded counted."""

import time
import unittest

import pftest
from pftest import (TF, HttpConn, ProxyTestCase, cluster, free_port, match_prefix, route,
                    simple_bootstrap)


def always(status):
    def handler(req, resp):
        req.read_body()
        resp.send(status, b"from the failing host\n", content_type="text/plain")
    return handler


def sleeper(seconds):
    def handler(req, resp):
        req.read_body()
        time.sleep(seconds)
        resp.send(200, b"slow\n", content_type="text/plain")
    return handler


stat = pftest.stat


class RetryTest(ProxyTestCase):

    def proxy_for(self, endpoints, policy, timeout="5s"):
        port, adm = free_port(), free_port()
        r = route(match_prefix("/"), "app", timeout=timeout, retry_policy=policy)
        self.start_proxy(simple_bootstrap(port, adm, [r], [cluster("app", endpoints)]))
        return port, adm

    def test_connect_failure_retried_on_other_host(self):
        up = self.start_upstream("good")
        dead = free_port()
        port, adm = self.proxy_for([dead, up.port], {
            "retry_on": "connect-failure", "num_retries": 2,
            "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts"}]})
        with HttpConn(port) as c:
            for _ in range(20):
                self.assertEqual(c.get("/x").status, 200)
        self.assertGreater(stat(adm, "cluster.app.upstream_rq_retry"), 0)
        self.assertEqual(stat(adm, "cluster.app.upstream_rq_200"), 20)

    def test_no_policy_no_retry(self):
        up = self.start_upstream("good")
        dead = free_port()
        port, adm = free_port(), free_port()
        self.start_proxy(simple_bootstrap(port, adm, [route(match_prefix("/"), "app")],
                                          [cluster("app", [dead, up.port])]))
        statuses = []
        with HttpConn(port) as c:
            for _ in range(10):
                statuses.append(c.get("/x").status)
        self.assertIn(503, statuses)
        self.assertEqual(stat(adm, "cluster.app.upstream_rq_retry"), 0)

    def test_5xx_retried_and_body_replayed(self):
        bad = self.start_upstream("bad", always(503))
        good = self.start_upstream("good")
        port, adm = self.proxy_for([bad.port, good.port], {
            "retry_on": "5xx", "num_retries": 3,
            "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts"}],
            "retry_back_off": {"base_interval": "0.005s"}})
        body = bytes(range(256)) * 400      # 100 KiB, kept for the replay
        for i in range(10):
            with HttpConn(port) as c:
                if i % 2:
                    r = c.request("POST", "/echo", body=[body[:50000], body[50000:]], chunked=True)
                else:
                    r = c.request("POST", "/echo", body=body)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.json()["body_len"], len(body))
        self.assertGreater(stat(adm, "cluster.app.upstream_rq_retry_success"), 0)
        with good.lock:
            lens = [q.body_len for q in good.requests]
        self.assertTrue(lens and all(n == len(body) for n in lens), lens)

    def test_retries_exhausted_pass_last_answer(self):
        bad = self.start_upstream("bad", always(503))
        port, adm = self.proxy_for([bad.port], {
            "retry_on": "5xx", "num_retries": 2, "retry_back_off": {"base_interval": "0.005s"}})
        with HttpConn(port) as c:
            r = c.get("/x")
        self.assertEqual(r.status, 503)
        self.assertEqual(r.body, b"from the failing host\n")
        with bad.lock:
            self.assertEqual(len(bad.requests), 3)     # the first try and 2 retries
        self.assertEqual(stat(adm, "cluster.app.upstream_rq_retry"), 2)
        self.assertEqual(stat(adm, "cluster.app.upstream_rq_retry_limit_exceeded"), 1)

    def test_virtual_host_policy_for_routes_without_their_own(self):
        bad = self.start_upstream("bad", always(503))
        port, adm = free_port(), free_port()
        vh = pftest.vhost("svc", ["*"], [
            route(match_prefix("/own"), "app", retry_policy={"retry_on": "connect-failure"}),
            route(match_prefix("/"), "app")])
        vh["retry_policy"] = {"retry_on": "5xx", "num_retries": 2,
                              "retry_back_off": {"base_interval": "0.005s"}}
        self.start_proxy(pftest.bootstrap([pftest.listener("main", port, [vh])],
                                          [cluster("app", [bad.port])], adm))
        with HttpConn(port) as c:
            self.assertEqual(c.get("/inherits").status, 503)
            with bad.lock:
                self.assertEqual(len(bad.requests), 3)      # the virtual host's 2 retries
            # Envoy: a route's own policy replaces the virtual host's whole.
            self.assertEqual(c.get("/own").status, 503)
            with bad.lock:
                self.assertEqual(len(bad.requests), 4)
        self.assertEqual(stat(adm, "cluster.app.upstream_rq_retry"), 2)

    def test_retriable_status_codes(self):
        bad = self.start_upstream("bad", always(418))
        good = self.start_upstream("good")
        port, adm = self.proxy_for([bad.port, good.port], {
            "retry_on": "retriable-status-codes", "retriable_status_codes": [418],
            "num_retries": 2,
            "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts"}]})
        with HttpConn(port) as c:
            for _ in range(6):
                self.assertEqual(c.get("/x").status, 200)

    def test_per_try_timeout(self):
        slow = self.start_upstream("slow", sleeper(2))
        fast = self.start_upstream("fast")
        port, adm = self.proxy_for([slow.port, fast.port], {
            "retry_on": "5xx", "num_retries": 1, "per_try_timeout": "0.2s",
            "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts"}]})
        for _ in range(4):
            t0 = time.monotonic()
            with HttpConn(port, timeout=10 * TF) as c:
                r = c.get("/x")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()["upstream"], "fast")
            self.assertLess(time.monotonic() - t0, 1.5 * TF)
        self.assertGreater(stat(adm, "cluster.app.upstream_rq_per_try_timeout"), 0)

    def test_per_try_timeout_then_504(self):
        slow = self.start_upstream("slow")
        port, adm = self.proxy_for([slow.port], {
            "retry_on": "5xx", "num_retries": 1, "per_try_timeout": "0.2s",
            "retry_back_off": {"base_interval": "0.005s"}})
        t0 = time.monotonic()
        with HttpConn(port, timeout=10 * TF) as c:
            r = c.get("/x?delay=1")
        self.assertEqual(r.status, 504)
        self.assertLess(time.monotonic() - t0, 0.9 * TF)
        self.assertEqual(stat(adm, "cluster.app.upstream_rq_per_try_timeout"), 2)

    def test_bad_policy_is_config_error(self):
        r = route(match_prefix("/"), "app", retry_policy={"retry_on": "5xx,bogus"})
        path = pftest.tmpdir("retry") + "/bad.yaml"
        with open(path, "w") as f:
            f.write(pftest.to_yaml(simple_bootstrap(free_port(), free_port(), [r],
                                                    [cluster("app", [free_port()])])))
        res = pftest.run_binary(["--mode", "validate", "-c", path])
        self.assertEqual(res.returncode, 1)
        self.assertRegex(res.stderr.decode(),
                         r"bad\.yaml:\d+:\d+: .*retry_policy\.retry_on: unknown retry condition 'bogus'")


if __name__ == "__main__":
    pftest.main()
