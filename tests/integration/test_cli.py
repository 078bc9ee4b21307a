"""CLI behaviour: --version, --help, --mode validate, --config-yaml, bad flags."""

import os
import re
import socket

import pftest
from pftest import (LOCAL, HttpConn, ProxyTestCase, bootstrap, cluster, direct, free_port,
                    listener, match_prefix, route, run_binary, simple_bootstrap, to_yaml,
                    vhost)

FILE_LINE_COL = re.compile(r"[^\s:]+:\d+:\d+:")


def project_version():
    with open(os.path.join(pftest.SOURCE_DIR, "CMakeLists.txt")) as f:
        m = re.search(r"project\(\s*pilotfish\s+VERSION\s+([0-9.]+)", f.read())
    return m.group(1) if m else None


def good_config(port, admin_port, up_port=None):
    return simple_bootstrap(port, admin_port, [
        direct(match_prefix("/direct"), 200, "direct\n"),
        route(match_prefix("/"), "up"),
    ], [cluster("up", [up_port or free_port()])])


class CliTest(ProxyTestCase):

    def test_version(self):
        r = run_binary(["--version"])
        out = (r.stdout + r.stderr).decode("utf-8", "replace")
        self.assertEqual(r.returncode, 0, "--version exit code; output: %r" % out)
        self.assertRegex(out, r"\d+\.\d+", "no version number in %r" % out)
        v = project_version()
        if v:
            self.assertIn(v, out, "--version does not print the project version %s" % v)

    def test_help(self):
        r = run_binary(["--help"])
        out = (r.stdout + r.stderr).decode("utf-8", "replace")
        self.assertEqual(r.returncode, 0, "--help exit code; output: %r" % out)
        self.assertIn("config", out.lower(), "--help output does not mention config: %r" % out)

    def test_unknown_flag_fails(self):
        r = run_binary(["--definitely-not-a-flag"])
        self.assertNotEqual(r.returncode, 0, "unknown flag accepted: %r" % (r.stdout + r.stderr))

    def test_missing_config_file_fails(self):
        path = os.path.join(pftest.tmpdir("nofile"), "does-not-exist.yaml")
        r = run_binary(["-c", path, "--mode", "validate"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("does-not-exist.yaml", r.stderr.decode("utf-8", "replace"))

    def test_validate_good_config_binds_nothing(self):
        port, admin = free_port(), free_port()
        d = pftest.tmpdir("validate")
        path = os.path.join(d, "good.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(good_config(port, admin)))
        # Hold both ports while validating: validate must not try to bind them.
        holders = []
        for p in (port, admin):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((LOCAL, p))
            s.listen(1)
            holders.append(s)
        try:
            r = run_binary(["-c", path, "--mode", "validate"])
        finally:
            for s in holders:
                s.close()
        out = r.stdout.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 0, "validate failed: stdout=%r stderr=%r" % (
            out, r.stderr[-2000:]))
        self.assertTrue(any("OK" in ln for ln in out.splitlines()),
                        "validate did not print a line containing OK: %r" % out)
        self.assertTrue(pftest.port_is_free(port) and pftest.port_is_free(admin))

    def test_validate_long_flag_and_config_path(self):
        port, admin = free_port(), free_port()
        path = os.path.join(pftest.tmpdir("validate2"), "good.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(good_config(port, admin)))
        r = run_binary(["--config-path", path, "--mode", "validate"])
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertIn(b"OK", r.stdout)

    def test_validate_bad_config_reports_file_line_col(self):
        path = os.path.join(pftest.tmpdir("bad"), "bad.yaml")
        text = to_yaml(good_config(free_port(), free_port()))
        text = text.replace("connect_timeout: 0.25s", "connect_timeout: 0.25s\n    bogus_field: 1")
        self.assertIn("bogus_field", text)
        with open(path, "w") as f:
            f.write(text)
        r = run_binary(["-c", path, "--mode", "validate"])
        err = r.stderr.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 1, "exit code for a bad config; stderr=%r" % err)
        self.assertRegex(err, re.escape("bad.yaml") + r":\d+:\d+:",
                         "stderr lacks file:line:col: %r" % err)
        self.assertNotIn(b"OK", r.stdout)

    def test_serve_bad_config_exits_1(self):
        port = free_port()
        path = os.path.join(pftest.tmpdir("bad"), "bad.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(good_config(port, free_port())).replace("cluster: up",
                                                                    "cluster: nope"))
        r = run_binary(["-c", path, "--concurrency", "2", "-l", "debug"])
        err = r.stderr.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 1, "stderr=%r" % err[-2000:])
        self.assertRegex(err, FILE_LINE_COL)
        self.assertTrue(pftest.port_is_free(port))

    def test_config_yaml_alone(self):
        up = self.start_upstream("up")
        port, admin = free_port(), free_port()
        cfg = good_config(port, admin, up.port)
        p = self.start_proxy(None, config_yaml=to_yaml(cfg), listen_ports=[port],
                             admin_port=admin)
        r = pftest.http_get(port, "/direct")
        self.assertEqual((r.status, r.body), (200, b"direct\n"))
        r = pftest.http_get(port, "/via-upstream")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["path"], "/via-upstream")
        self.assertProxyAlive(p)

    def test_config_yaml_merged_over_file(self):
        """The file routes to cluster 'extra' which only the overlay defines;
        the overlay also moves the admin port (scalar replace)."""
        up = self.start_upstream("extra-up")
        port, admin_file, admin_overlay = free_port(), free_port(), free_port()
        base = bootstrap([listener("main", port, [vhost("svc", ["*"], [
            route(match_prefix("/"), "extra")])])], [], admin_file)
        del base["static_resources"]["clusters"]
        base_text = to_yaml(base)
        overlay = {"admin": {"address": {"socket_address": {"port_value": admin_overlay}}},
                   "static_resources": {"clusters": [cluster("extra", [up.port])]}}
        # The file alone must be rejected (undefined cluster).
        path = os.path.join(pftest.tmpdir("merge"), "base.yaml")
        with open(path, "w") as f:
            f.write(base_text)
        r = run_binary(["-c", path, "--mode", "validate"])
        self.assertEqual(r.returncode, 1, "file alone should be invalid: %r" % r.stderr[-1000:])
        r = run_binary(["-c", path, "--config-yaml", to_yaml(overlay), "--mode", "validate"])
        self.assertEqual(r.returncode, 0, "merged config invalid: %r" % r.stderr[-2000:])
        p = self.start_proxy(base_text, config_yaml=to_yaml(overlay), listen_ports=[port],
                             admin_port=admin_overlay)
        r = pftest.http_get(port, "/merged")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["upstream"], "extra-up")
        self.assertTrue(pftest.port_is_free(admin_file), "admin still on the file's port")
        self.assertProxyAlive(p)

    def test_config_yaml_overlay_appends_listener(self):
        """Sequences append: an overlay listener is served alongside the file's."""
        port1, port2, admin = free_port(), free_port(), free_port()
        base = bootstrap([listener("one", port1, [vhost("v", ["*"], [
            direct(match_prefix("/"), 200, "one\n")])])], [], admin)
        overlay = {"static_resources": {"listeners": [listener("two", port2, [vhost("v", ["*"], [
            direct(match_prefix("/"), 200, "two\n")])])]}}
        self.start_proxy(to_yaml(base), config_yaml=to_yaml(overlay),
                         listen_ports=[port1, port2], admin_port=admin)
        self.assertEqual(pftest.http_get(port1, "/").body, b"one\n")
        self.assertEqual(pftest.http_get(port2, "/").body, b"two\n")


if __name__ == "__main__":
    pftest.main()
