"""Lifecycle: graceful shutdown on SIGTERM/SIGINT with requests in flight."""

import errno
import signal
import socket
import threading
import time

import pftest
from pftest import (TF, HttpConn, ProxyTestCase, cluster, free_port, match_prefix, route,
                    simple_bootstrap)


class LifecycleTest(ProxyTestCase):

    def make(self):
        up = self.start_upstream("up")
        port, admin = free_port(), free_port()
        p = self.start_proxy(simple_bootstrap(port, admin, [route(match_prefix("/"), "up")],
                                              [cluster("up", [up.port])]))
        return up, p, port, admin

    def connect_refused(self, port):
        s = socket.socket()
        s.settimeout(1 * TF)
        try:
            s.connect(("127.0.0.1", port))
            return False
        except ConnectionRefusedError:
            return True
        except OSError as e:
            return e.errno == errno.ECONNREFUSED
        finally:
            s.close()

    def graceful(self, sig):
        up, p, port, admin = self.make()
        delay = 1.0 * (1.5 if pftest.SANITIZE else 1.0)
        result = {}

        def client():
            try:
                with HttpConn(port, timeout=15 * TF) as c:
                    result["resp"] = c.get("/inflight?delay=%s" % delay)
                    result["t"] = time.monotonic()
            except Exception as e:  # reported by the main thread
                result["error"] = repr(e)

        t = threading.Thread(target=client)
        t.start()
        up.wait_requests(1, timeout=10 * TF)  # the request is at the upstream now
        t_sig = time.monotonic()
        p.send_signal(sig)
        # New connections are refused while the in-flight request is still running.
        pftest.wait_until(lambda: self.connect_refused(port), timeout=delay * 0.8,
                          what="listener to close after %s" % sig.name)
        self.assertNotIn("resp", result, "in-flight request finished before the "
                         "listener closed (cannot check refusal)")
        t.join(15 * TF)
        self.assertFalse(t.is_alive(), "in-flight request never completed")
        self.assertNotIn("error", result, "in-flight request failed: %s" % result.get("error"))
        r = result["resp"]
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["path"], "/inflight")
        self.assertGreaterEqual(result["t"] - t_sig, delay * 0.5)
        rc = p.wait_exit(timeout=10 * TF)  # already signalled: never signal twice
        self.assertEqual(rc, 0)

    def test_sigterm_graceful(self):
        self.graceful(signal.SIGTERM)

    def test_sigint_graceful(self):
        self.graceful(signal.SIGINT)

    def test_sigterm_idle_exits_promptly(self):
        _, p, port, _ = self.make()
        with HttpConn(port) as c:
            self.assertEqual(c.get("/warm").status, 200)
        t0 = time.monotonic()
        p.stop(timeout=10 * TF)
        # --drain-time-s 2 bounds the drain; an idle proxy must not need more.
        self.assertLess(time.monotonic() - t0, 2 + 3 * TF)

    def test_sigterm_with_idle_keepalive_connection(self):
        _, p, port, _ = self.make()
        c = HttpConn(port)
        try:
            self.assertEqual(c.get("/warm").status, 200)
            t0 = time.monotonic()
            p.stop(timeout=10 * TF)
            self.assertLess(time.monotonic() - t0, 2 + 3 * TF)
            self.assertTrue(c.wait_closed(2 * TF), "idle client connection left open")
        finally:
            c.close()

    def test_admin_ready(self):
        _, p, port, admin = self.make()
        with HttpConn(admin) as c:
            r = c.get("/ready", host="127.0.0.1")
        self.assertEqual(r.status, 200)


if __name__ == "__main__":
    pftest.main()
