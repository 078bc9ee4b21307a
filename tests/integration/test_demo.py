"""The embedded demo config (no arguments): :10000 splits 90/10 between the
built-in stable and canary listeners; admin on :9901.  This is the only test
that uses fixed ports; it is skipped when they are busy."""

import collections
import unittest

import pftest
from pftest import HttpConn, Proxy, ProxyTestCase

DEMO_PORTS = (10000, 10001, 10002, 9901)


class DemoTest(ProxyTestCase):

    def test_demo_no_args(self):
        busy = [p for p in DEMO_PORTS if not pftest.port_is_free(p)]
        if busy:
            raise unittest.SkipTest("demo ports busy: %r" % busy)
        p = Proxy(None, args=[], name="demo", listen_ports=[10000, 10001, 10002],
                  admin_port=9901)
        self._test_proxies.append(p)
        p.start()
        self.addCleanup(self._stop_test_proxy, p)
        bodies = collections.Counter()
        texts = {}
        n = 300
        with HttpConn(10000) as c:
            for i in range(n):
                r = c.get("/demo/%d" % i, host="localhost")
                self.assertEqual(r.status, 200, r)
                key = r.body
                bodies[key] += 1
                texts[key] = (r.body + b" " + b" ".join(
                    ("%s:%s" % kv).encode() for kv in r.headers)).lower()
        self.assertEqual(len(bodies), 2, "expected two distinct backends: %r" % bodies)
        (major, nmaj), (minor, nmin) = bodies.most_common()
        self.assertTrue(0.8 <= nmaj / n <= 0.97, "split %r" % bodies)
        self.assertIn(b"stable", texts[major], "majority response is not 'stable': %r" % major)
        self.assertIn(b"canary", texts[minor], "minority response is not 'canary': %r" % minor)


if __name__ == "__main__":
    pftest.main()
