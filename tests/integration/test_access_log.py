"""HTTP access logs through the real binary: file logger with Envoy's default
format (200, 404 NR, 503 UF), json_format, the stdout logger, every request
logged exactly once by the time the proxy exits, the periodic flush, and
config / startup errors."""

import json
import os
import re
import signal

import pftest
from pftest import (ProxyTestCase, TF, free_port, http_get, HttpConn, listener, cluster,
                    bootstrap, vhost, route, match_prefix, direct, run_binary, wait_until)

FILE_TYPE = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
STDOUT_TYPE = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"

DEFAULT_LINE = re.compile(
    r'^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\] '
    r'"(\S+) (\S+) (HTTP/1\.[01])" (\d{3}) (\S+) (\d+) (\d+) (\d+) (\S+) '
    r'"([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)"$')


def file_log(path, log_format=None, **extra):
    tc = {"@type": FILE_TYPE, "path": path}
    if log_format is not None:
        tc["log_format"] = log_format
    tc.update(extra)
    return {"name": "envoy.access_loggers.file", "typed_config": tc}


def stdout_log(log_format=None):
    tc = {"@type": STDOUT_TYPE}
    if log_format is not None:
        tc["log_format"] = log_format
    return {"name": "envoy.access_loggers.stdout", "typed_config": tc}


def named(name, r):
    r["name"] = name
    return r


def make_config(port, up_port, dead_port, access_logs):
    routes = [
        direct(match_prefix("/direct"), 200, "direct\n"),
        named("dead_route", route(match_prefix("/dead"), "dead")),
        named("up_route", route(match_prefix("/up"), "up")),
    ]
    lst = listener("main", port, [vhost("svc", ["*"], routes)])
    lst["filter_chains"][0]["filters"][0]["typed_config"]["access_log"] = access_logs
    return bootstrap([lst], [cluster("up", [up_port]), cluster("dead", [dead_port])])


def read_lines(path):
    try:
        with open(path, "rb") as f:
            data = f.read().decode("utf-8")
    except FileNotFoundError:
        return []
    assert data == "" or data.endswith("\n"), "log does not end with a newline: %r" % data[-200:]
    return data.splitlines()


class AccessLogTest(ProxyTestCase):

    def setUp(self):
        self.up = self.start_upstream("up")
        self.port = free_port()
        self.dead_port = free_port()
        self.dir = pftest.tmpdir("alog")

    def proxy(self, access_logs, **kw):
        return self.start_proxy(make_config(self.port, self.up.port, self.dead_port,
                                            access_logs), **kw)

    def test_default_format_file(self):
        path = os.path.join(self.dir, "access.log")
        p = self.proxy([file_log(path)])
        r = http_get(self.port, "/up/hello?x=1", headers=[("User-Agent", "alog-test/1"),
                                                          ("X-Forwarded-For", "192.0.2.7")])
        self.assertEqual(r.status, 200)
        r = http_get(self.port, "/nowhere", headers=[("User-Agent", "alog-test/2")])
        self.assertEqual(r.status, 404)
        r = http_get(self.port, "/dead/x", headers=[("User-Agent", "alog-test/3")])
        self.assertEqual(r.status, 503)
        p.stop()
        lines = read_lines(path)
        self.assertEqual(len(lines), 3, lines)
        by_ua = {}
        for ln in lines:
            m = DEFAULT_LINE.match(ln)
            self.assertIsNotNone(m, "line does not have Envoy's default shape: %r" % ln)
            by_ua[m.group(12)] = m
        ok, nr, uf = by_ua["alog-test/1"], by_ua["alog-test/2"], by_ua["alog-test/3"]
        # 200 through the upstream
        self.assertEqual(ok.group(2, 3, 4, 5, 6), ("GET", "/up/hello?x=1", "HTTP/1.1", "200", "-"))
        self.assertEqual(ok.group(7), "0")
        self.assertGreater(int(ok.group(8)), 0)
        self.assertRegex(ok.group(10), r"^\d+$")        # x-envoy-upstream-service-time
        self.assertEqual(ok.group(11), "192.0.2.7")
        self.assertRegex(ok.group(13), r"^[0-9a-f-]{36}$")
        self.assertEqual(ok.group(14), "example.com")
        self.assertEqual(ok.group(15), "127.0.0.1:%d" % self.up.port)
        # 404 no route
        self.assertEqual(nr.group(2, 3, 5, 6), ("GET", "/nowhere", "404", "NR"))
        self.assertEqual(nr.group(10), "-")
        self.assertEqual(nr.group(11), "-")
        self.assertEqual(nr.group(15), "-")
        # 503 upstream connection failure
        self.assertEqual(uf.group(2, 3, 5), ("GET", "/dead/x", "503"))
        self.assertIn("UF", uf.group(6).split(","))
        self.assertEqual(uf.group(15), "127.0.0.1:%d" % self.dead_port)

    def test_json_format(self):
        path = os.path.join(self.dir, "access.json")
        fmt = {"json_format": {
            "code": "%RESPONSE_CODE%", "method": "%REQ(:METHOD)%", "path": "%REQ(:PATH)%",
            "flags": "%RESPONSE_FLAGS%", "rx": "%BYTES_RECEIVED%", "tx": "%BYTES_SENT%",
            "duration": "%DURATION%", "cluster": "%UPSTREAM_CLUSTER%",
            "route": "%ROUTE_NAME%", "ua": "%REQ(USER-AGENT)%",
            "remote": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
            "local": "%DOWNSTREAM_LOCAL_ADDRESS%", "upstream": "%UPSTREAM_HOST%",
            "start": "%START_TIME%", "summary": "%REQ(:METHOD)% %RESPONSE_CODE%"}}
        p = self.proxy([file_log(path, fmt)])
        body = b"0123456789"
        with HttpConn(self.port) as c:
            r = c.request("POST", "/up/post", body=body,
                          headers=[("User-Agent", 'quote" back\\slash')])
            self.assertEqual(r.status, 200)
            r = c.get("/nowhere")
            self.assertEqual(r.status, 404)
        p.stop()
        lines = read_lines(path)
        self.assertEqual(len(lines), 2, lines)
        recs = [json.loads(ln) for ln in lines]
        post = next(x for x in recs if x["method"] == "POST")
        nr = next(x for x in recs if x["code"] == 404)
        self.assertEqual(post["code"], 200)
        self.assertEqual(post["path"], "/up/post")
        self.assertEqual(post["flags"], "-")
        self.assertEqual(post["rx"], len(body))
        self.assertIsInstance(post["tx"], int)
        self.assertGreater(post["tx"], 0)
        self.assertIsInstance(post["duration"], int)
        self.assertEqual(post["cluster"], "up")
        self.assertEqual(post["route"], "up_route")
        self.assertEqual(post["ua"], 'quote" back\\slash')
        self.assertEqual(post["remote"], "127.0.0.1")
        self.assertEqual(post["local"], "127.0.0.1:%d" % self.port)
        self.assertEqual(post["upstream"], "127.0.0.1:%d" % self.up.port)
        self.assertRegex(post["start"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(post["summary"], "POST 200")
        self.assertEqual(nr["flags"], "NR")
        self.assertIsNone(nr["cluster"])
        self.assertIsNone(nr["route"])
        self.assertIsNone(nr["upstream"])
        self.assertIsNone(nr["ua"])

    def test_json_omit_empty_values(self):
        path = os.path.join(self.dir, "omit.json")
        fmt = {"omit_empty_values": True,
               "json_format": {"code": "%RESPONSE_CODE%", "ua": "%REQ(USER-AGENT)%",
                               "upstream": "%UPSTREAM_HOST%"}}
        p = self.proxy([file_log(path, fmt)])
        self.assertEqual(http_get(self.port, "/direct").status, 200)
        p.stop()
        self.assertEqual([json.loads(x) for x in read_lines(path)], [{"code": 200}])

    def test_stdout_logger_and_text_format_source(self):
        p = self.proxy([stdout_log({"text_format_source": {
            "inline_string": "STDOUT %REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %ROUTE_NAME%\n"}})])
        self.assertEqual(http_get(self.port, "/direct/a").status, 200)
        self.assertEqual(http_get(self.port, "/up/b").status, 200)
        p.stop()
        out = [ln for ln in p.log("stdout").splitlines() if ln.startswith("STDOUT ")]
        self.assertEqual(sorted(out), ["STDOUT GET /direct/a 200 -",
                                       "STDOUT GET /up/b 200 up_route"])

    def test_every_request_logged_once_by_exit(self):
        """N requests on several connections and both workers -> exactly N lines,
        written by the time the proxy has exited (buffered lines are flushed)."""
        path = os.path.join(self.dir, "count.log")
        p = self.proxy([file_log(path, {"text_format": "%REQ(:PATH)% %RESPONSE_CODE%\n"}),
                        stdout_log({"text_format": "S %REQ(:PATH)%\n"})])
        n = 0
        for conn in range(8):
            with HttpConn(self.port) as c:
                for i in range(25):
                    target = "/direct/%d/%d" % (conn, i) if i % 2 else "/up/%d/%d" % (conn, i)
                    self.assertEqual(c.get(target).status, 200)
                    n += 1
        p.stop()
        lines = read_lines(path)
        self.assertEqual(len(lines), n)
        self.assertEqual(len(set(lines)), n)
        for ln in lines:
            self.assertRegex(ln, r"^/(direct|up)/\d+/\d+ 200$")
        out = [ln for ln in p.log("stdout").splitlines() if ln.startswith("S ")]
        self.assertEqual(len(out), n)

    def test_periodic_flush(self):
        """Lines reach the file within about a second without a shutdown."""
        path = os.path.join(self.dir, "flush.log")
        p = self.proxy([file_log(path)])
        for i in range(5):
            self.assertEqual(http_get(self.port, "/direct/%d" % i).status, 200)
        wait_until(lambda: len(read_lines(path)) == 5, 5 * TF, interval=0.05,
                   what="5 access log lines flushed")
        p.stop()
        self.assertEqual(len(read_lines(path)), 5)

    def test_reset_stream_logged(self):
        """A client that goes away mid-request is still logged (DC)."""
        path = os.path.join(self.dir, "reset.log")
        p = self.proxy([file_log(path, {"text_format": "%REQ(:PATH)% %RESPONSE_FLAGS%\n"})])
        with HttpConn(self.port) as c:
            c.send(b"POST /up/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
            wait_until(lambda: self.up.last_request() is not None, 5 * TF,
                       what="upstream request")
        p.stop()
        lines = read_lines(path)
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("/up/slow "), lines)

    def test_unopenable_path_exits_1(self):
        bad = os.path.join(self.dir, "no-such-dir", "access.log")
        cfg = make_config(self.port, self.up.port, self.dead_port, [file_log(bad)])
        p = pftest.Proxy(cfg, name="badpath")
        p.start(wait=False)
        rc = p.wait(10 * TF)
        self.assertEqual(rc, 1, p.describe())
        self.assertIn(bad, p.log("stderr"))

    def test_bad_operator_is_config_error(self):
        cfg = make_config(self.port, self.up.port, self.dead_port,
                          [file_log(os.path.join(self.dir, "x.log"),
                                    {"text_format_source": {"inline_string": "%REQ(:PATH)% %NOPE%"}})])
        path = os.path.join(self.dir, "bad.yaml")
        with open(path, "w") as f:
            f.write(pftest.to_yaml(cfg))
        for extra in ([], ["--mode", "validate"]):
            r = run_binary(["-c", path] + extra)
            err = r.stderr.decode("utf-8", "replace")
            self.assertEqual(r.returncode, 1, err)
            m = re.search(r"bad\.yaml:(\d+):(\d+): (\S+): invalid format string: "
                          r"unknown command operator %NOPE%", err)
            self.assertIsNotNone(m, err)
            with open(path) as f:
                want_line = next(i for i, ln in enumerate(f.read().splitlines(), 1)
                                 if "%NOPE%" in ln)
            self.assertEqual(int(m.group(1)), want_line)
            self.assertTrue(m.group(3).endswith(
                "access_log[0].typed_config.log_format.text_format_source.inline_string"),
                m.group(3))

    def test_filter_not_supported(self):
        lg = file_log(os.path.join(self.dir, "x.log"))
        lg["filter"] = {"status_code_filter": {"comparison": {"op": "GE", "value": {
            "default_value": 400, "runtime_key": "k"}}}}
        cfg = make_config(self.port, self.up.port, self.dead_port, [lg])
        path = os.path.join(self.dir, "filter.yaml")
        with open(path, "w") as f:
            f.write(pftest.to_yaml(cfg))
        r = run_binary(["-c", path, "--mode", "validate"])
        err = r.stderr.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 1, err)
        self.assertRegex(err, r"filter\.yaml:\d+:\d+: \S*access_log\[0\]\.filter: "
                              r"not supported yet")


if __name__ == "__main__":
    pftest.main()
