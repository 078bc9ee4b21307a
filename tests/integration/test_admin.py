"""Admin API: endpoint table, method rules, state changes, runtime, output shapes."""

import json
import os
import shutil
import subprocess
import unittest

import pftest
from pftest import (TF, ClassProxyTestCase, HttpConn, ProxyTestCase, cluster, free_port,
                    http_get, match_prefix, route, simple_bootstrap)

GET_ENDPOINTS = ["/", "/help", "/ready", "/server_info", "/clusters", "/listeners",
                 "/config_dump", "/runtime", "/memory"]
POST_ENDPOINTS = ["/healthcheck/fail", "/healthcheck/ok", "/drain_listeners",
                  "/quitquitquit", "/logging", "/reset_counters", "/runtime_modify"]


def admin(port, method, path):
    with HttpConn(port) as c:
        return c.request(method, path, host="127.0.0.1")


class AdminTest(ClassProxyTestCase):

    @classmethod
    def setup_upstreams(cls):
        cls.up = cls.add_upstream("up")

    @classmethod
    def make_config(cls):
        b = simple_bootstrap(cls.port, cls.admin_port, [route(match_prefix("/"), "app")],
                             [cluster("app", [cls.up.port])])
        b["layered_runtime"] = {"layers": [
            {"name": "static_layer", "static_layer": {"a": {"b": 5}, "s": "text"}},
            {"name": "admin", "admin_layer": {}}]}
        return b

    def get(self, path):
        return admin(self.admin_port, "GET", path)

    def post(self, path):
        return admin(self.admin_port, "POST", path)

    def test_post_only_endpoints_reject_get(self):
        for p in POST_ENDPOINTS:
            r = self.get(p)
            self.assertEqual(r.status, 405, p)
            self.assertEqual(r.body, b"Method GET not allowed, POST required.")

    def test_get_endpoints_answer_get_and_post(self):
        for p in GET_ENDPOINTS:
            self.assertEqual(self.get(p).status, 200, p)
        self.assertEqual(self.post("/ready").status, 200)

    def test_unknown_path_404_with_help(self):
        r = self.get("/nope")
        self.assertEqual(r.status, 404)
        self.assertTrue(r.body.startswith(b"invalid path. admin commands are:\n"))
        for p in GET_ENDPOINTS[2:] + POST_ENDPOINTS:
            self.assertIn(("  %s" % p).encode(), r.body)

    def test_help(self):
        r = self.get("/help")
        self.assertTrue(r.body.startswith(b"admin commands are:\n  /: "))
        self.assertIn(b"  /ready: print server state, return 200 if LIVE, otherwise return 503\n",
                      r.body)

    def test_healthcheck_fail_and_ok(self):
        self.assertEqual(self.post("/healthcheck/fail").body, b"OK\n")
        r = self.get("/ready")
        self.assertEqual((r.status, r.body), (503, b"DRAINING\n"))
        self.assertEqual(self.get("/server_info").json()["state"], "DRAINING")
        self.assertEqual(self.post("/healthcheck/ok").body, b"OK\n")
        r = self.get("/ready")
        self.assertEqual((r.status, r.body), (200, b"LIVE\n"))

    def test_server_info(self):
        r = self.get("/server_info")
        self.assertEqual(r.headers.get("content-type"), "application/json")
        j = r.json()
        for k in ("version", "state", "uptime_current_epoch", "uptime_all_epochs",
                  "hot_restart_version", "command_line_options", "node"):
            self.assertIn(k, j)
        self.assertEqual(j["state"], "LIVE")
        self.assertRegex(j["uptime_current_epoch"], r"^\d+s$")
        o = j["command_line_options"]
        self.assertEqual(o["concurrency"], 2)
        self.assertEqual(o["drain_time"], "2s")
        self.assertEqual(o["mode"], "Serve")
        self.assertEqual(o["log_level"], "debug")
        self.assertTrue(o["config_path"].endswith("config.yaml"))

    def test_clusters_text_and_json(self):
        body = self.get("/clusters").body.decode()
        host = "app::127.0.0.1:%d::" % self.up.port
        for line in ("app::default_priority::max_connections::1024",
                     "app::added_via_api::false", host + "cx_active::0",
                     host + "health_flags::healthy", host + "weight::1",
                     host + "success_rate::-1"):
            self.assertIn(line + "\n", body)
        j = self.get("/clusters?format=json").json()
        cs = j["cluster_statuses"][0]
        self.assertEqual(cs["name"], "app")
        sa = cs["host_statuses"][0]["address"]["socket_address"]
        self.assertEqual((sa["address"], sa["port_value"]), ("127.0.0.1", self.up.port))
        self.assertEqual(self.get("/clusters?format=xml").status, 400)

    def test_listeners(self):
        self.assertEqual(self.get("/listeners").body, b"main::127.0.0.1:%d\n" % self.port)
        j = self.get("/listeners?format=json").json()
        self.assertEqual(j["listener_statuses"][0]["name"], "main")

    def test_config_dump(self):
        j = self.get("/config_dump").json()
        c = j["configs"][0]
        self.assertEqual(c["@type"], "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump")
        sr = c["bootstrap"]["static_resources"]
        self.assertEqual(sr["clusters"][0]["name"], "app")
        self.assertEqual(sr["listeners"][0]["name"], "main")

    def test_runtime_and_modify(self):
        j = self.get("/runtime").json()
        self.assertEqual(j["layers"], ["static_layer", "admin"])
        self.assertEqual(j["entries"]["a.b"], {"final_value": "5", "layer_values": ["5", ""]})
        self.assertEqual(self.post("/runtime_modify?a.b=7&new%20key=x+y").body, b"OK\n")
        e = self.get("/runtime").json()["entries"]
        self.assertEqual(e["a.b"], {"final_value": "7", "layer_values": ["5", "7"]})
        self.assertEqual(e["new key"]["final_value"], "x y")
        self.assertEqual(self.post("/runtime_modify?a.b=&new%20key=").body, b"OK\n")
        e = self.get("/runtime").json()["entries"]
        self.assertEqual(e["a.b"]["final_value"], "5")
        self.assertNotIn("new key", e)
        self.assertEqual(self.post("/runtime_modify").status, 400)

    def test_logging(self):
        try:
            r = self.post("/logging?level=info")
            self.assertEqual(r.status, 200)
            self.assertIn(b"active loggers:\n", r.body)
            self.assertIn(b"  admin: info\n", r.body)
            r = self.post("/logging?level=bogus")
            self.assertEqual(r.status, 400)
            self.assertIn(b"levels: trace debug info warning error critical off", r.body)
            r = self.post("/logging")
            self.assertIn(b"  admin: info\n", r.body)
        finally:
            self.assertEqual(self.post("/logging?level=debug").status, 200)

    def test_memory(self):
        j = self.get("/memory").json()
        for k in ("allocated", "heap_size", "pageheap_unmapped", "pageheap_free",
                  "total_thread_cache", "total_physical_bytes"):
            self.assertTrue(j[k].isdigit(), k)

    def test_bad_query(self):
        self.assertEqual(self.get("/stats?filter=%zz").status, 400)
        self.assertEqual(self.get("/runtime?x=%00").status, 400)
        self.assertEqual(self.get("/clusters?format=%").status, 400)
        self.assertEqual(self.get("/ready").status, 200)

    def test_keepalive_and_large_response(self):
        with HttpConn(self.admin_port) as c:
            for _ in range(3):
                r = c.get("/config_dump", host="127.0.0.1")
                self.assertEqual(r.status, 200)
                r = c.get("/help", host="127.0.0.1")
                self.assertEqual(r.status, 200)
            r = c.request("POST", "/healthcheck/ok", body=b"ignored body", host="127.0.0.1")
            self.assertEqual(r.body, b"OK\n")
            self.assertEqual(c.get("/ready", host="127.0.0.1").status, 200)

    # ---- stats (needs the stats store in pf_server)

    def test_stats_formats(self):
        r = self.get("/stats")
        self.assertEqual(r.status, 200, r.body[:200])
        self.assertIn(b"server.concurrency: 2\n", r.body)
        self.assertEqual(self.get("/stats?format=json").status, 200)
        self.get("/stats?format=json").json()
        self.assertEqual(self.get("/stats?format=prometheus").status, 200)
        self.assertEqual(self.get("/stats?format=bogus").status, 400)
        self.assertEqual(self.get("/stats?filter=(").status, 400)
        self.assertEqual(self.get("/stats?filter=concurrency").body,
                         b"server.concurrency: 2\n")

    def test_stats_prometheus_promtool(self):
        r = self.get("/stats/prometheus")
        self.assertEqual(r.status, 200)
        promtool = shutil.which("promtool")
        if not promtool:
            self.skipTest("promtool not installed")
        p = subprocess.run([promtool, "check", "metrics"], input=r.body,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30 * TF)
        # promtool exits 1 for lint warnings (e.g. counters without _total); only
        # parse errors matter here.
        self.assertNotIn(b"error while linting", p.stdout + p.stderr)
        self.assertNotIn(b"text format parsing error", p.stdout + p.stderr)

    def test_stats_data_path_counters(self):
        def counter(name):
            for line in self.get("/stats?filter=%s" % name.replace(".", r"\.")).body.splitlines():
                k, _, v = line.decode().partition(": ")
                if k == name:
                    return int(v)
            return 0
        self.post("/reset_counters")
        n = 5
        with HttpConn(self.port) as c:
            for _ in range(n):
                self.assertEqual(c.get("/x").status, 200)
        pftest.wait_until(lambda: counter("http.ingress_http.downstream_rq_total") == n,
                          10 * TF, what="downstream_rq_total == %d" % n)
        self.assertEqual(counter("cluster.app.upstream_rq_200"), n)


class AdminLifecycleTest(ProxyTestCase):

    def make(self, **kw):
        up = self.start_upstream("up")
        port, adm = free_port(), free_port()
        p = self.start_proxy(simple_bootstrap(port, adm, [route(match_prefix("/"), "up")],
                                              [cluster("up", [up.port])]), **kw)
        return p, port, adm

    def test_quitquitquit_exits_zero(self):
        p, port, adm = self.make()
        r = admin(adm, "POST", "/quitquitquit")
        self.assertEqual((r.status, r.body), (200, b"OK\n"))
        self.assertEqual(p.wait_exit(), 0)

    def test_drain_listeners(self):
        p, port, adm = self.make()
        self.assertEqual(http_get(port, "/").status, 200)
        self.assertEqual(admin(adm, "POST", "/drain_listeners?graceful").body, b"OK\n")

        def refused():
            try:
                HttpConn(port, timeout=1 * TF).close()
                return False
            except OSError:
                return True
        pftest.wait_until(refused, 5 * TF, what="listeners closed")
        self.assertEqual(admin(adm, "GET", "/ready").status, 200)

    def test_no_layered_runtime_has_default_layers(self):
        p, port, adm = self.make()
        j = admin(adm, "GET", "/runtime").json()
        self.assertEqual(j, {"entries": {}, "layers": ["base", "admin"]})
        self.assertEqual(admin(adm, "POST", "/runtime_modify?k=v").status, 200)
        self.assertEqual(admin(adm, "GET", "/runtime").json()["entries"]["k"]["final_value"],
                         "v")

    def test_runtime_without_admin_layer_503(self):
        up = self.start_upstream("up")
        port, adm = free_port(), free_port()
        b = simple_bootstrap(port, adm, [route(match_prefix("/"), "up")],
                             [cluster("up", [up.port])])
        b["layered_runtime"] = {"layers": [{"name": "s", "static_layer": {"k": "v"}}]}
        self.start_proxy(b)
        r = admin(adm, "POST", "/runtime_modify?k=w")
        self.assertEqual((r.status, r.body), (503, b"No admin layer specified"))


if __name__ == "__main__":
    pftest.main()
