"""Multi-cloud failover: priority 0 "cloud-a" and priority 1 "cloud-b", two
upstream processes each, HTTP health checks every 0.2-0.5 s.

Killing cloud A moves all traffic to cloud B within one interval plus the
timeout; clients only see the errors of requests that reach A before the
checks notice.  A's return brings the traffic back.  A graceful drain of A
(its health endpoint answers 503 while it still serves) loses nothing."""

import os
import signal
import subprocess
import sys
import threading
import time

import pftest
from pftest import HttpConn, LOCAL, ProxyTestCase, TF, bootstrap, listener, sockaddr, vhost

UPSTREAM = r'''
import os, sys, socketserver, http.server
port, name, drain = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path == "/healthz" and os.path.exists(drain):
            code, body = 503, b"draining"
        else:
            code, body = 200, name.encode()
        self.send_response(code)
        self.send_header("x-upstream-name", name)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S((sys.argv[4], port), H).serve_forever()
'''


class Cloud:
    """Two upstream processes on fixed ports (so they can come back)."""

    def __init__(self, tmp, name):
        self.name = name
        self.ports = [pftest.free_port(), pftest.free_port()]
        self.drain = os.path.join(tmp, name + ".drain")
        self.script = os.path.join(tmp, "up.py")
        with open(self.script, "w") as f:
            f.write(UPSTREAM)
        self.procs = []

    def start(self):
        self.procs = [subprocess.Popen([sys.executable, self.script, str(p), "%s-%d" % (self.name, i),
                                        self.drain, LOCAL])
                      for i, p in enumerate(self.ports)]
        for p in self.ports:
            pftest.wait_until(lambda p=p: not pftest.port_is_free(p), 10 * TF, what="upstream up")

    def kill(self):
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()
        self.procs = []


RETRY_POLICY = {
    "retry_on": "connect-failure,reset,5xx", "num_retries": 3,
    "retry_back_off": {"base_interval": "0.005s"},
    "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts"}],
    "retry_priority": {"name": "envoy.retry_priorities.previous_priorities",
                       "typed_config": {
                           "@type": "type.googleapis.com/envoy.extensions.retry.priority."
                                    "previous_priorities.v3.PreviousPrioritiesConfig",
                           "update_frequency": 1}}}


def failover_config(port, admin_port, a, b, interval="0.2s", jitter="0.3s", retry=None):
    def lle(cloud, prio):
        return {"locality": {"region": cloud.name, "zone": cloud.name + "-z1"},
                "priority": prio,
                "lb_endpoints": [{"endpoint": {"address": sockaddr(p)}} for p in cloud.ports]}
    cl = {"name": "multi", "type": "STATIC", "connect_timeout": "0.25s",
          "load_assignment": {"cluster_name": "multi", "endpoints": [lle(a, 0), lle(b, 1)]},
          "health_checks": [{"timeout": "0.2s", "interval": interval, "interval_jitter": jitter,
                             "no_traffic_interval": interval,
                             "unhealthy_threshold": 1, "healthy_threshold": 1,
                             "http_health_check": {"path": "/healthz"}}]}
    action = {"cluster": "multi", "timeout": "2s"}
    if retry:
        action["retry_policy"] = retry
    routes = [{"match": {"prefix": "/"}, "route": action}]
    return bootstrap([listener("main", port, [vhost("svc", ["*"], routes)])], [cl], admin_port)


class Load:
    """One keep-alive client sending GETs back to back; records (time, status, upstream)."""

    def __init__(self, port):
        self.port = port
        self.log = []
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        c = None
        while not self.stop:
            try:
                if c is None:
                    c = HttpConn(self.port)
                r = c.get("/work")
                self.log.append((time.monotonic(), r.status, r.headers.get("x-upstream-name") or ""))
            except Exception as e:      # noqa: BLE001 - a client-visible error
                self.log.append((time.monotonic(), repr(e), ""))
                c = None
            time.sleep(0.002)
        if c is not None:
            c.close()

    def finish(self):
        self.stop = True
        self.t.join(10)
        return self.log


class FailoverTest(ProxyTestCase):

    def setUp(self):
        self.tmp = pftest.tmpdir("failover")
        self.a = Cloud(self.tmp, "cloud-a")
        self.b = Cloud(self.tmp, "cloud-b")
        self.a.start()
        self.b.start()
        self.addCleanup(self.a.kill)
        self.addCleanup(self.b.kill)
        self.port, self.admin = pftest.free_port(), pftest.free_port()
        self.proxy = self.start_proxy(failover_config(self.port, self.admin, self.a, self.b))

    def clusters(self):
        return pftest.http_get(self.admin, "/clusters").body.decode()

    def flags(self, cloud):
        text = self.clusters()
        return [line.rsplit("::", 1)[1] for line in text.splitlines()
                for p in cloud.ports if line.startswith("multi::127.0.0.1:%d::health_flags" % p)]

    def test_admin_shows_locality_and_priority(self):
        text = self.clusters()
        for p in self.a.ports:
            self.assertIn("multi::127.0.0.1:%d::priority::0" % p, text)
            self.assertIn("multi::127.0.0.1:%d::region::cloud-a" % p, text)
            self.assertIn("multi::127.0.0.1:%d::zone::cloud-a-z1" % p, text)
            self.assertIn("multi::127.0.0.1:%d::health_flags::healthy" % p, text)
        for p in self.b.ports:
            self.assertIn("multi::127.0.0.1:%d::priority::1" % p, text)
        stats = pftest.http_get(self.admin, "/stats").body.decode()
        self.assertIn("cluster.multi.health_check.healthy: 4", stats)
        self.assertIn("cluster.multi.membership_healthy: 4", stats)

    def test_kill_and_return(self):
        load = Load(self.port)
        time.sleep(0.5)
        # Before: everything on A.
        before = [u for t, s, u in load.log if s == 200]
        self.assertTrue(before and all(u.startswith("cloud-a") for u in before), before[-5:])
        t_kill = time.monotonic()
        self.a.kill()
        pftest.wait_until(lambda: self.flags(self.a) == ["/failed_active_hc"] * 2, 5 * TF,
                          what="cloud A marked unhealthy")
        t_detected = time.monotonic()
        time.sleep(0.5)
        after_kill = [e for e in load.log if e[0] > t_kill]
        errors = [e for e in after_kill if e[1] != 200]
        ok_b = [e for e in after_kill if e[1] == 200 and e[2].startswith("cloud-b")]
        self.assertTrue(ok_b, "no traffic reached cloud B")
        last_error = max((e[0] for e in errors), default=t_kill)
        first_b = ok_b[0][0]
        # All traffic on B after the first error-free B answer.
        self.assertTrue(all(e[2].startswith("cloud-b") for e in after_kill if e[0] > last_error))
        sys.stderr.write("\nfailover: detected %.0f ms after kill, last client error %.0f ms, "
                         "first B answer %.0f ms; %d client error(s) of %d requests\n" % (
                             (t_detected - t_kill) * 1e3, (last_error - t_kill) * 1e3,
                             (first_b - t_kill) * 1e3, len(errors), len(after_kill)))
        # One interval (0.2-0.5 s) plus the timeout (0.2 s), with slack for the sanitizer.
        self.assertLess(last_error - t_kill, (0.7 + 0.3) * TF)
        # A returns: traffic returns.
        t_back = time.monotonic()
        self.a.start()
        pftest.wait_until(lambda: self.flags(self.a) == ["healthy"] * 2, 5 * TF,
                          what="cloud A healthy again")
        time.sleep(0.3)
        log = load.finish()
        back = [e for e in log if e[0] > time.monotonic() - 0.2 and e[1] == 200]
        self.assertTrue(back and all(e[2].startswith("cloud-a") for e in back), back[-5:])
        self.assertFalse([e for e in log if e[0] > t_back and e[1] != 200])
        stats = pftest.http_get(self.admin, "/stats").body.decode()
        self.assertIn("cluster.multi.health_check.attempt:", stats)
        self.assertNotIn("cluster.multi.health_check.failure: 0\n", stats)

    def test_kill_with_retries_loses_nothing(self):
        # Same failover, with the route's retry_policy: connect failures to
        # the dead priority-0 hosts are retried on priority 1 before health
        # checking has noticed, so clients see no error at all.
        self.proxy.stop()
        port, admin = pftest.free_port(), pftest.free_port()
        self.start_proxy(failover_config(port, admin, self.a, self.b, retry=RETRY_POLICY))
        load = Load(port)
        time.sleep(0.3)
        t_kill = time.monotonic()
        self.a.kill()
        time.sleep(1.0)
        log = load.finish()
        after = [e for e in log if e[0] > t_kill]
        errors = [e for e in after if e[1] != 200]
        sys.stderr.write("\nfailover with retries: %d client error(s) of %d requests\n" % (
            len(errors), len(after)))
        self.assertTrue(after)
        self.assertEqual(errors, [])
        self.assertTrue(any(e[2].startswith("cloud-b") for e in after))
        stats = pftest.http_get(admin, "/stats").body.decode()
        self.assertNotIn("cluster.multi.upstream_rq_retry: 0\n", stats)

    def test_graceful_drain_loses_nothing(self):
        load = Load(self.port)
        time.sleep(0.4)
        t0 = time.monotonic()
        open(self.a.drain, "w").close()
        pftest.wait_until(lambda: self.flags(self.a) == ["/failed_active_hc"] * 2, 5 * TF,
                          what="cloud A drained")
        time.sleep(0.3)
        log = load.finish()
        after = [e for e in log if e[0] > t0]
        self.assertEqual([e for e in after if e[1] != 200], [])
        tail = [e for e in after if e[0] > time.monotonic() - 0.2]
        self.assertTrue(tail and all(e[2].startswith("cloud-b") for e in tail))
        os.unlink(self.a.drain)


if __name__ == "__main__":
    pftest.main()
