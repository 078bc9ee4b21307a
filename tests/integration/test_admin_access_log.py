"""admin.access_log_path (Envoy's default format) and admin.access_log
(json_format) record every admin request; an unwritable path is a start-up
error that names it."""

import json
import os
import re
import unittest

import pftest
from pftest import HttpConn, ProxyTestCase, free_port


class AdminAccessLogTest(ProxyTestCase):

    def test_admin_requests_are_logged(self):
        d = pftest.tmpdir("adminlog")
        text_path, json_path = os.path.join(d, "admin.log"), os.path.join(d, "admin.json")
        adm = free_port()
        cfg = {"admin": {
            "address": pftest.sockaddr(adm),
            "access_log_path": text_path,
            "access_log": [{"name": "envoy.access_loggers.file", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": json_path,
                "log_format": {"json_format": {"method": "%REQ(:METHOD)%",
                                               "path": "%REQ(:PATH)%",
                                               "code": "%RESPONSE_CODE%"}}}}]}}
        p = self.start_proxy(cfg)
        with HttpConn(adm) as c:
            self.assertEqual(c.request("GET", "/ready", host="127.0.0.1").status, 200)
            self.assertEqual(c.request("GET", "/stats?filter=server", host="127.0.0.1").status, 200)
            self.assertEqual(c.request("POST", "/nope", host="127.0.0.1").status, 404)
        p.stop()
        with open(text_path) as f:
            lines = f.read().splitlines()
        # The harness's own readiness probes (GET /ready) come first.
        self.assertTrue(all('"GET /ready HTTP/1.1" 200' in l for l in lines[:-3]), lines)
        lines = lines[-3:]
        self.assertRegex(lines[0], r'^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "GET /ready HTTP/1\.1" 200 ')
        self.assertIn('"GET /stats?filter=server HTTP/1.1" 200', lines[1])
        self.assertIn('"POST /nope HTTP/1.1" 404', lines[2])
        with open(json_path) as f:
            entries = [json.loads(l) for l in f.read().splitlines()][-3:]
        self.assertEqual(entries, [{"method": "GET", "path": "/ready", "code": 200},
                                   {"method": "GET", "path": "/stats?filter=server", "code": 200},
                                   {"method": "POST", "path": "/nope", "code": 404}])

    def test_unwritable_path_fails_start(self):
        path = os.path.join(pftest.tmpdir("adminlog"), "cfg.yaml")
        with open(path, "w") as f:
            f.write(pftest.to_yaml({"admin": {"address": pftest.sockaddr(free_port()),
                                              "access_log_path": "/nonexistent/dir/admin.log"}}))
        res = pftest.run_binary(["-c", path, "--drain-time-s", "1"])
        self.assertEqual(res.returncode, 1)
        self.assertIn("/nonexistent/dir/admin.log", res.stderr.decode())


if __name__ == "__main__":
    pftest.main()
