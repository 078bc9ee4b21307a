"""envoy.filters.http.lua through the real binary: header edits, respond(),
body() and setBytes, the buffer limit, two Lua filters in order, LuaPerRoute,
httpCall, runtime errors, stale handles and streamInfo."""

import os
import re
import shutil
import unittest

import pftest
from pftest import (ClassProxyTestCase, HttpConn, Headers, cluster, match_prefix, route,
                    simple_bootstrap)

LUA_TYPE = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"
LPR_TYPE = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute"

MAIN = r"""
stale = nil
function envoy_on_request(h)
  local p = h:headers():get(":path")
  if p == "/respond" then
    h:respond({[":status"] = "403", ["x-lua"] = "denied"}, "nope")
    return
  end
  if p == "/error" then
    error("boom")
  end
  if p == "/stale-set" then
    stale = h
    return
  end
  if p == "/stale-use" then
    local ok, err = pcall(function() return stale:headers():get(":path") end)
    h:headers():add("x-stale", ok and "ok" or tostring(err))
    return
  end
  if p == "/body" then
    local b = h:body()
    h:headers():add("x-body-len", tostring(b:length()))
    h:headers():add("x-body-start", b:getBytes(0, 5))
    b:setBytes("rewritten:" .. b:getBytes(0, b:length()))
    return
  end
  if p == "/call" or p == "/call-async" then
    local hdrs, body = h:httpCall("side", {[":method"] = "GET", [":path"] = "/side?body=sidebody",
                                           [":authority"] = "side"}, nil, 2000,
                                  p == "/call-async")
    if p == "/call" then
      h:headers():add("x-side-status", hdrs[":status"])
      h:headers():add("x-side-body", body)
    else
      h:headers():add("x-side-async", tostring(hdrs))
    end
  end
  if p == "/meta" or p == "/meta-canon" or p == "/meta-none" then
    local m = h:metadata()
    local keys = {}
    for k, v in pairs(m) do keys[#keys + 1] = k end
    table.sort(keys)
    h:headers():add("x-meta-keys", table.concat(keys, ","))
    h:headers():add("x-meta-foo", tostring(m:get("foo")))
    h:headers():add("x-meta-missing", tostring(m:get("nope")))
    if p == "/meta" then
      h:headers():add("x-meta-num", tostring(m:get("num") + 1))
      h:headers():add("x-meta-flag", tostring(m:get("flag") == true))
      h:headers():add("x-meta-list", m:get("list")[2])
      h:headers():add("x-meta-nested", m:get("nested").inner)
      h:headers():add("x-meta-quoted", type(m:get("quoted")))
    end
  end
  if p == "/reroute" then
    h:headers():add("x-reroute", "yes")
  end
  if p == "/info" then
    local si = h:streamInfo()
    h:headers():add("x-proto", si:protocol())
    h:headers():add("x-local", si:downstreamLocalAddress())
    h:headers():add("x-remote", si:downstreamRemoteAddress())
    h:headers():add("x-route", si:routeName())
    h:headers():add("x-ssl", tostring(h:connection():ssl()))
    si:dynamicMetadata():set("ns", "k", "v1")
    h:headers():add("x-dyn", si:dynamicMetadata():get("ns")["k"])
    local dyn_ns = {}
    for ns, _ in pairs(si:dynamicMetadata()) do dyn_ns[#dyn_ns + 1] = ns end
    h:headers():add("x-dyn-ns", table.concat(dyn_ns, ","))
    h:headers():add("x-b64", h:base64Escape("hello"))
  end
  local hs = h:headers()
  hs:add("x-lua-added", "1")
  hs:replace("x-replace-me", "replaced")
  hs:remove("x-remove-me")
  local n = 0
  for k, v in pairs(hs) do n = n + 1 end
  hs:add("x-count", tostring(n))
  hs:add("x-order", (hs:get("x-order") or "") .. "first")
end

function envoy_on_response(h)
  h:headers():add("x-resp-lua", "yes")
  h:headers():remove("x-upstream-remove")
  if h:headers():get("x-want-body") then
    local b = h:body()
    h:headers():add("x-resp-body-len", tostring(b:length()))
  end
end
"""

SECOND = r"""
function envoy_on_request(h)
  h:headers():replace("x-order", (h:headers():get("x-order") or "") .. ",second")
end
"""


def rt(prefix, cluster, per_filter=None, name=None):
    r = route(match_prefix(prefix), cluster)
    if per_filter is not None:
        r["typed_per_filter_config"] = per_filter
    if name is not None:
        r["name"] = name
    return r


def meta_rt(path, filter_metadata):
    r = route(match_prefix(path), "up")
    r["metadata"] = {"filter_metadata": filter_metadata}
    return r


def lua_filter(name, code=None, **extra):
    tc = {"@type": LUA_TYPE}
    if code is not None:
        tc["default_source_code"] = {"inline_string": code}
    tc.update(extra)
    return {"name": name, "typed_config": tc}


class LuaTest(ClassProxyTestCase):

    @classmethod
    def setup_upstreams(cls):
        cls.up = cls.add_upstream("up")
        cls.side = cls.add_upstream("side")

    @classmethod
    def make_config(cls):
        cfg = simple_bootstrap(cls.port, cls.admin_port, [
            rt("/off", "up", {"main": {"@type": LPR_TYPE, "disabled": True}}),
            rt("/named", "up", {"main": {"@type": LPR_TYPE, "name": "named.lua"}}),
            rt("/inline", "up", {"main": {"@type": LPR_TYPE, "source_code": {"inline_string":
                "function envoy_on_request(h) h:headers():add('x-inline', 'route') end"}}}),
            rt("/info", "up", name="info_route"),
            {"match": {"prefix": "/reroute",
                       "headers": [{"name": "x-reroute", "string_match": {"exact": "yes"}}]},
             "route": {"cluster": "side"}},
            meta_rt("/meta-canon", {"envoy.filters.http.lua": {"foo": "canonical"}}),
            meta_rt("/meta-none", {"other.filter": {"foo": "not mine"}}),
            meta_rt("/meta", {
                "main": {"foo": "bar", "num": 41, "flag": True, "list": ["a", "b"],
                         "nested": {"inner": "deep"}, "quoted": "123"},
                "envoy.filters.http.lua": {"foo": "not this: the filter name wins"}}),
            route(match_prefix("/"), "up"),
        ], [cluster("up", [cls.up.port]), cluster("side", [cls.side.port])])
        hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
            "typed_config"]
        hcm["http_filters"] = [
            lua_filter("main", MAIN, source_codes={"named.lua": {"inline_string":
                "function envoy_on_request(h) h:headers():add('x-named', 'yes') end"}}),
            lua_filter("second", SECOND),
        ] + hcm["http_filters"]
        return cfg

    def get(self, path, headers=None, **kw):
        with HttpConn(self.port) as c:
            return c.get(path, headers=headers, **kw)

    def echo(self, path, headers=None, **kw):
        r = self.get(path, headers=headers, **kw)
        self.assertEqual(r.status, 200, r)
        return r, Headers((k, v) for k, v in r.json()["headers"])

    def test_headers_add_replace_remove(self):
        r, h = self.echo("/h", headers=[("x-replace-me", "old"), ("x-remove-me", "gone")])
        self.assertEqual(h.get("x-lua-added"), "1")
        self.assertEqual(h.get_all("x-replace-me"), ["replaced"])
        self.assertFalse(h.has("x-remove-me"))
        self.assertGreaterEqual(int(h.get("x-count")), 5)
        self.assertEqual(r.headers.get("x-resp-lua"), "yes")

    def test_two_filters_in_order(self):
        _, h = self.echo("/h")
        self.assertEqual(h.get("x-order"), "first,second")

    def test_respond(self):
        r = self.get("/respond")
        self.assertEqual(r.status, 403)
        self.assertEqual(r.body, b"nope")
        self.assertEqual(r.headers.get("x-lua"), "denied")
        self.assertEqual(len(self.up.requests_for("/respond")) if hasattr(
            self.up, "requests_for") else 0, 0)

    def test_body_rewrite(self):
        with HttpConn(self.port) as c:
            r = c.request("POST", "/body", body=b"hello world")
        self.assertEqual(r.status, 200, r)
        j = r.json()
        h = Headers((k, v) for k, v in j["headers"])
        self.assertEqual(h.get("x-body-len"), "11")
        self.assertEqual(h.get("x-body-start"), "hello")
        self.assertEqual(j["body"], "rewritten:hello world")
        self.assertEqual(h.get("content-length"), str(len("rewritten:hello world")))

    def test_body_too_large(self):
        with HttpConn(self.port) as c:
            r = c.request("POST", "/body", body=b"x" * (1024 * 1024 + 10))
        self.assertEqual(r.status, 413, r)

    def test_response_body(self):
        r = self.get("/rb?body=abcdef", headers=[("x-want-body", "1")])
        self.assertEqual(r.status, 200)

    def test_per_route_disabled(self):
        _, h = self.echo("/off")
        self.assertFalse(h.has("x-lua-added"))
        self.assertEqual(h.get("x-order"), ",second")

    def test_per_route_named(self):
        _, h = self.echo("/named")
        self.assertEqual(h.get("x-named"), "yes")
        self.assertFalse(h.has("x-lua-added"))

    def test_per_route_inline(self):
        _, h = self.echo("/inline")
        self.assertEqual(h.get("x-inline"), "route")

    def test_http_call(self):
        _, h = self.echo("/call")
        self.assertEqual(h.get("x-side-status"), "200")
        self.assertEqual(h.get("x-side-body"), "sidebody")
        side = [r for r in self.side.requests if r.path == "/side"][-1]
        self.assertEqual(side.headers.get_all("host"), ["side"])     # once, from :authority

    def test_http_call_async(self):
        _, h = self.echo("/call-async")
        self.assertEqual(h.get("x-side-async"), "nil")
        pftest.wait_until(lambda: any(r.path.startswith("/side") for r in self.side.requests),
                          5 * pftest.TF, what="async side call")

    def test_runtime_error_answers_500(self):
        # logged, counted in lua.errors, answered 500 (tests/integration/test_lua_errors.py)
        r = self.get("/error")
        self.assertEqual(r.status, 500, r)
        r2 = self.get("/h")
        self.assertEqual(r2.status, 200)
        stats = pftest.http_get(self.admin_port, "/stats").body.decode()
        self.assertRegex(stats, r"http\.ingress_http\.lua\.errors: [1-9]")
        self.assertIn("boom", self.proxy.log())

    def test_stale_handle(self):
        # one connection: one worker, one Lua state
        with HttpConn(self.port) as c:
            self.assertEqual(c.get("/stale-set").status, 200)
            for _ in range(3):
                r = c.get("/stale-use")
                self.assertEqual(r.status, 200)
                h = Headers((k, v) for k, v in r.json()["headers"])
                self.assertIn("object used outside of proper scope", h.get("x-stale"))

    def test_header_change_reroutes(self):
        # Envoy's Lua filter clears the route cache when the script changes
        # request headers (clear_route_cache defaults to true)
        r = self.get("/reroute")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("x-upstream-name"), "side")

    def test_metadata(self):
        _, h = self.echo("/meta")
        self.assertEqual(h.get("x-meta-keys"), "flag,foo,list,nested,num,quoted")
        self.assertEqual(h.get("x-meta-foo"), "bar")
        self.assertEqual(h.get("x-meta-num"), "42")
        self.assertEqual(h.get("x-meta-flag"), "true")
        self.assertEqual(h.get("x-meta-list"), "b")
        self.assertEqual(h.get("x-meta-nested"), "deep")
        self.assertEqual(h.get("x-meta-quoted"), "string")
        self.assertEqual(h.get("x-meta-missing"), "nil")
        # no entry under the filter's name: its canonical name
        _, h = self.echo("/meta-canon")
        self.assertEqual(h.get("x-meta-foo"), "canonical")
        self.assertEqual(h.get("x-meta-keys"), "foo")
        # neither: an empty metadata object
        _, h = self.echo("/meta-none")
        self.assertEqual(h.get("x-meta-foo"), "nil")
        self.assertEqual(h.get("x-meta-keys"), "")

    def test_metadata_config_error(self):
        cfg = simple_bootstrap(pftest.free_port(), pftest.free_port(), [
            meta_rt("/", {"main": "not a struct"})], [cluster("up", [1])])
        path = os.path.join(pftest.tmpdir("luameta"), "cfg.yaml")
        with open(path, "w") as f:
            f.write(pftest.to_yaml(cfg))
        r = pftest.run_binary(["-c", path, "--mode", "validate"])
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertRegex(err, r"cfg\.yaml:\d+:\d+: .*metadata\.filter_metadata\.main: "
                              r"must be a struct")

    def test_stream_info(self):
        _, h = self.echo("/info")
        self.assertEqual(h.get("x-proto"), "HTTP/1.1")
        self.assertEqual(h.get("x-local"), "127.0.0.1:%d" % self.port)
        self.assertRegex(h.get("x-remote"), r"^127\.0\.0\.1:\d+$")
        self.assertEqual(h.get("x-route"), "info_route")
        self.assertEqual(h.get("x-ssl"), "nil")
        self.assertEqual(h.get("x-dyn"), "v1")
        self.assertEqual(h.get("x-dyn-ns"), "ns")
        self.assertEqual(h.get("x-b64"), "aGVsbG8=")


class LuaEnvoyExampleTest(ClassProxyTestCase):
    """../shared/envoy-examples/lua/envoy.yaml with require() beside the config."""

    @classmethod
    def setup_upstreams(cls):
        cls.up = cls.add_upstream("web")

    @classmethod
    def setUpClass(cls):
        src = os.path.join(pftest.SOURCE_DIR, "..", "shared", "envoy-examples", "lua")
        if not os.path.exists(os.path.join(src, "envoy.yaml")):
            src = os.path.join(pftest.SOURCE_DIR, "tests", "unit", "data", "envoy-examples")
        cls.example_dir = src
        super().setUpClass()

    @classmethod
    def make_config(cls):
        d = pftest.tmpdir("luaex")
        src = cls.example_dir
        name = "envoy.yaml" if os.path.exists(os.path.join(src, "envoy.yaml")) else "lua-envoy.yaml"
        with open(os.path.join(src, name)) as f:
            text = f.read()
        os.makedirs(os.path.join(d, "lib"))
        shutil.copy(os.path.join(src, "lib", "mylibrary.lua"), os.path.join(d, "lib"))
        text = text.replace("address: 0.0.0.0", "address: 127.0.0.1")
        text = text.replace("port_value: 10000", "port_value: %d" % cls.port)
        text = text.replace("type: STRICT_DNS", "type: STATIC")
        text = text.replace("address: web_service", "address: 127.0.0.1")
        text = text.replace("port_value: 8080", "port_value: %d" % cls.up.port)
        text += "admin:\n  address:\n    socket_address: {address: 127.0.0.1, port_value: %d}\n" % (
            cls.admin_port)
        path = os.path.join(d, "envoy.yaml")
        with open(path, "w") as f:
            f.write(text)
        cls.config_file = path
        return None

    @classmethod
    def setUpClassProxy(cls):
        pass

    def test_require_and_multiple_scripts(self):
        with HttpConn(self.port) as c:
            r = c.get("/")
        self.assertEqual(r.status, 200, r)
        h = Headers((k, v) for k, v in r.json()["headers"])
        self.assertEqual(h.get("foo"), "bar")
        with HttpConn(self.port) as c:
            r = c.get("/multiple/lua/scripts")
        self.assertEqual(r.headers.get("header_key_1"), "header_value_1")


# The example class starts its proxy from a config file (require() needs the
# file's directory), not from a dict.
def _example_setup(cls):
    cls.upstreams = []
    cls.proxies = []
    cls.port = pftest.free_port()
    cls.admin_port = pftest.free_port()
    cls.setup_upstreams()
    src = os.path.join(pftest.SOURCE_DIR, "..", "shared", "envoy-examples", "lua")
    if not os.path.exists(os.path.join(src, "envoy.yaml")):
        src = os.path.join(pftest.SOURCE_DIR, "tests", "unit", "data", "envoy-examples")
    cls.example_dir = src
    cls.make_config()
    cls.proxy = pftest.Proxy(args=["-c", cls.config_file, "--concurrency", "2", "-l", "debug",
                                   "--drain-time-s", "2"],
                             name=cls.__name__, listen_ports=[cls.port],
                             admin_port=cls.admin_port)
    cls.proxies.append(cls.proxy)
    cls.proxy.start()


LuaEnvoyExampleTest.setUpClass = classmethod(_example_setup)

if __name__ == "__main__":
    unittest.main()
