"""envoy.router.cluster_specifier_plugin.lua through the real binary:
Envoy's lua-cluster-specifier example, named plugins referenced from routes,
default_cluster on failure, a cluster that does not exist (503), stale
route handles and the config errors."""

import os
import unittest

import pftest
from pftest import (ClassProxyTestCase, HttpConn, cluster, match_prefix, run_binary,
                    simple_bootstrap)

LUA_CS_TYPE = "type.googleapis.com/envoy.extensions.router.cluster_specifiers.lua.v3.LuaConfig"
EXT_NAME = "envoy.router.cluster_specifier_plugin.lua"

PICK = r"""
kept = nil
function envoy_on_route(route_handle)
  local h = route_handle:headers()
  local want = h:get("x-want")
  if want == "error" then error("no cluster for you") end
  if want == "number" then return 42 end
  if want == "keep" then kept = route_handle; return "a" end
  if want == "stale" then return kept:headers():get("x-want") end
  if h:get(":path") == "/by-path-b" then return "b" end
  return want
end
"""


def plugin(code, default=None, name=EXT_NAME):
    tc = {"@type": LUA_CS_TYPE, "source_code": {"inline_string": code}}
    if default is not None:
        tc["default_cluster"] = default
    return {"extension": {"name": name, "typed_config": tc}}


class LuaClusterSpecifierTest(ClassProxyTestCase):

    @classmethod
    def setup_upstreams(cls):
        cls.a = cls.add_upstream("a")
        cls.b = cls.add_upstream("b")

    @classmethod
    def make_config(cls):
        routes = [
            {"match": match_prefix("/named"), "route": {"cluster_specifier_plugin": "picker"}},
            {"match": match_prefix("/no-fn"),
             "route": {"inline_cluster_specifier_plugin": plugin("x = 1", default="b")}},
            {"match": match_prefix("/"),
             "route": {"inline_cluster_specifier_plugin": plugin(PICK, default="b")}},
        ]
        cfg = simple_bootstrap(cls.port, cls.admin_port, routes,
                               [cluster("a", [cls.a.port]), cluster("b", [cls.b.port])])
        hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
            "typed_config"]
        p = plugin("function envoy_on_route(h) return h:headers():get('x-named') end",
                   default="a", name="picker")
        p["is_optional"] = False
        hcm["route_config"]["cluster_specifier_plugins"] = [p]
        return cfg

    def upstream_of(self, path, **headers):
        with HttpConn(self.port) as c:
            r = c.get(path, headers=list(headers.items()))
        return r.status, r.headers.get("x-upstream-name")

    def test_script_picks_the_cluster(self):
        self.assertEqual(self.upstream_of("/x", **{"x-want": "a"}), (200, "a"))
        self.assertEqual(self.upstream_of("/x", **{"x-want": "b"}), (200, "b"))
        self.assertEqual(self.upstream_of("/by-path-b"), (200, "b"))

    def test_unknown_cluster_is_503(self):
        # Envoy: the plugin's answer is used as is; no such cluster -> 503 (NC)
        status, up = self.upstream_of("/x", **{"x-want": "fake_cluster"})
        self.assertEqual(status, 503)
        self.assertIsNone(up)

    def test_failures_use_default_cluster(self):
        self.assertEqual(self.upstream_of("/x", **{"x-want": "error"}), (200, "b"))
        self.assertEqual(self.upstream_of("/x", **{"x-want": "number"}), (200, "b"))
        self.assertEqual(self.upstream_of("/x"), (200, "b"))          # nil
        self.assertEqual(self.upstream_of("/no-fn/x"), (200, "b"))    # no envoy_on_route
        self.assertIn("no cluster for you", self.proxy.log())

    def test_stale_route_handle_fails(self):
        with HttpConn(self.port) as c:      # one connection: one worker, one Lua state
            r = c.get("/x", headers=[("x-want", "keep")])
            self.assertEqual(r.headers.get("x-upstream-name"), "a")
            # a live handle would answer "stale" (no such cluster: 503); the
            # kept one raises, and a failing script means default_cluster
            r = c.get("/x", headers=[("x-want", "stale")])
            self.assertEqual((r.status, r.headers.get("x-upstream-name")), (200, "b"))

    def test_named_plugin(self):
        self.assertEqual(self.upstream_of("/named", **{"x-named": "b"}), (200, "b"))
        self.assertEqual(self.upstream_of("/named"), (200, "a"))


class LuaClusterSpecifierExampleTest(unittest.TestCase):
    """../shared/envoy-examples/lua-cluster-specifier/envoy.yaml, ports rewritten."""

    def test_example(self):
        src = os.path.join(pftest.SOURCE_DIR, "..", "shared", "envoy-examples",
                           "lua-cluster-specifier", "envoy.yaml")
        if not os.path.exists(src):
            self.skipTest("envoy-examples not available")
        port, up_port, admin = pftest.free_port(), pftest.free_port(), pftest.free_port()
        with open(src) as f:
            text = f.read()
        text = (text.replace("address: 0.0.0.0", "address: 127.0.0.1")
                .replace("port_value: 10000", "port_value: %d" % port)
                .replace("port_value: 10001", "port_value: %d" % up_port)
                .replace("type: STRICT_DNS", "type: STATIC"))
        text += "admin:\n  address:\n    socket_address: {address: 127.0.0.1, port_value: %d}\n" \
            % admin
        path = os.path.join(pftest.tmpdir("luacs"), "envoy.yaml")
        with open(path, "w") as f:
            f.write(text)
        r = run_binary(["-c", path, "--mode", "validate"])
        self.assertEqual(r.returncode, 0, r.stderr)
        proxy = pftest.Proxy(args=["-c", path, "--concurrency", "1"], name="luacs-example",
                             listen_ports=[port, up_port], admin_port=admin)
        proxy.start()
        try:
            with HttpConn(port) as c:
                r = c.get("/anything")
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.body, b"Helo!\n")
                r = c.get("/anything", headers=[("header_key", "fake")])
                self.assertEqual(r.status, 503, r)
        finally:
            proxy.stop()


class LuaClusterSpecifierConfigTest(unittest.TestCase):

    def validate(self, routes, plugins=None):
        cfg = simple_bootstrap(pftest.free_port(), pftest.free_port(), routes,
                               [cluster("a", [1])])
        if plugins is not None:
            hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
                "typed_config"]
            hcm["route_config"]["cluster_specifier_plugins"] = plugins
        path = os.path.join(pftest.tmpdir("luacscfg"), "cfg.yaml")
        with open(path, "w") as f:
            f.write(pftest.to_yaml(cfg))
        r = run_binary(["-c", path, "--mode", "validate"])
        return r.returncode, r.stderr.decode()

    def test_unknown_plugin_name(self):
        rc, err = self.validate([{"match": match_prefix("/"),
                                  "route": {"cluster_specifier_plugin": "nope"}}])
        self.assertEqual(rc, 1, err)
        self.assertRegex(err, r"cfg\.yaml:\d+:\d+: .*route\.cluster_specifier_plugin: "
                              r"no cluster_specifier_plugins entry named 'nope'")

    def test_lua_syntax_error(self):
        rc, err = self.validate([{"match": match_prefix("/"), "route": {
            "inline_cluster_specifier_plugin": plugin("function envoy_on_route(")}}])
        self.assertEqual(rc, 1, err)
        self.assertRegex(err, r"cfg\.yaml:\d+:\d+: .*inline_cluster_specifier_plugin\.extension"
                              r"\.typed_config\.source_code\.inline_string: .*expected")

    def test_wrong_type(self):
        p = plugin("x = 1")
        p["extension"]["typed_config"]["@type"] = "type.googleapis.com/some.Other"
        rc, err = self.validate([{"match": match_prefix("/"), "route": {"cluster": "a"}}], [p])
        self.assertEqual(rc, 1, err)
        self.assertRegex(err, r"cfg\.yaml:\d+:\d+: .*cluster_specifier_plugins\[0\]\.extension"
                              r"\.typed_config\.@type: not supported yet")


if __name__ == "__main__":
    unittest.main()
