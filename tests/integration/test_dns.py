"""DNS-based clusters (STRICT_DNS / LOGICAL_DNS) resolving "localhost"."""

import pftest
from pftest import HttpConn, ProxyTestCase, cluster, free_port, match_prefix, route, \
    simple_bootstrap


class DnsTest(ProxyTestCase):

    def run_dns(self, ctype):
        # Listen on ::1 too in case localhost resolves to IPv6 first.
        up = self.start_upstream("dns-up", also_ipv6=True)
        port, admin = free_port(), free_port()
        self.start_proxy(simple_bootstrap(port, admin, [route(match_prefix("/"), "up")], [
            cluster("up", [("localhost", up.port)], type=ctype, connect_timeout="1s")]))
        with HttpConn(port) as c:
            for i in range(10):
                r = c.get("/dns/%d" % i)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["path"], "/dns/%d" % i)
                self.assertEqual(r.headers.get("x-upstream-name"), "dns-up")

    def test_strict_dns_localhost(self):
        self.run_dns("STRICT_DNS")

    def test_logical_dns_localhost(self):
        self.run_dns("LOGICAL_DNS")

    def test_strict_dns_validate(self):
        port, admin = free_port(), free_port()
        path = pftest.os.path.join(pftest.tmpdir("dnsval"), "c.yaml")
        with open(path, "w") as f:
            f.write(pftest.to_yaml(simple_bootstrap(port, admin, [
                route(match_prefix("/"), "up")], [
                cluster("up", [("localhost", 1)], type="STRICT_DNS")])))
        r = pftest.run_binary(["-c", path, "--mode", "validate"])
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertIn(b"OK", r.stdout)


if __name__ == "__main__":
    pftest.main()
