"""Config validation through the binary: each class of bad config is rejected
with exit 1 and a `file:line:col: field.path: what` message on stderr."""

import os
import re

import pftest
from pftest import ProxyTestCase, free_port, run_binary

TEMPLATE = """\
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: %(admin)d}}
static_resources:
  listeners:
  - name: main
    address: {socket_address: {address: 127.0.0.1, port_value: %(port)d}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          route_config:
            name: local
            virtual_hosts:
            - name: svc
              domains: ["*"]
              routes:
              - match: {prefix: "/direct"}
                direct_response: {status: 200, body: {inline_string: "direct\\n"}}
              - match: {prefix: "/"}
                route: {cluster: up}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: up
    type: STATIC
    connect_timeout: 0.25s
    load_assignment:
      cluster_name: up
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %(up)d}}}
"""


def base():
    return TEMPLATE % {"admin": free_port(), "port": free_port(), "up": free_port()}


def line_of(text, needle):
    for i, ln in enumerate(text.splitlines(), 1):
        if needle in ln:
            return i
    raise AssertionError("needle %r not in config" % needle)


class ConfigErrorsTest(ProxyTestCase):

    def validate(self, text, name="cfg.yaml", mode="validate"):
        path = os.path.join(pftest.tmpdir("cfg"), name)
        with open(path, "w") as f:
            f.write(text)
        args = ["-c", path]
        if mode:
            args += ["--mode", mode]
        r = run_binary(args)
        return path, r, r.stderr.decode("utf-8", "replace")

    def assert_rejected(self, text, marker=None, field=None, exact_line=True):
        path, r, err = self.validate(text)
        self.assertEqual(r.returncode, 1, "exit %s for a bad config; stderr=%r stdout=%r" % (
            r.returncode, err[-2000:], r.stdout[-500:]))
        m = re.search(r"(?:^|\s)(\S*cfg\.yaml):(\d+):(\d+): (.*)", err)
        self.assertIsNotNone(m, "stderr lacks 'cfg.yaml:line:col: ...': %r" % err[-2000:])
        self.assertTrue(path.endswith(m.group(1)) or m.group(1).endswith("cfg.yaml"))
        line = int(m.group(2))
        self.assertGreaterEqual(int(m.group(3)), 1)
        if marker is not None and exact_line:
            want = line_of(text, marker)
            self.assertEqual(line, want, "error points at line %d, offending text %r is on "
                             "line %d: %r" % (line, marker, want, m.group(0)))
        if field is not None:
            self.assertIn(field, m.group(4), "message does not name the field: %r" % m.group(0))
        self.assertNotIn(b"OK", r.stdout)
        return m

    def test_base_config_is_valid(self):
        _, r, err = self.validate(base())
        self.assertEqual(r.returncode, 0, err[-2000:])
        self.assertIn(b"OK", r.stdout)

    def test_unknown_field(self):
        text = base().replace("    connect_timeout: 0.25s\n",
                              "    connect_timeout: 0.25s\n    bogus_field: 1\n")
        self.assert_rejected(text, "bogus_field", "bogus_field")

    def test_unknown_top_level_field(self):
        text = base() + "nonsense_key: true\n"
        self.assert_rejected(text, "nonsense_key", "nonsense_key")

    def test_wrong_type_port(self):
        text = base()
        lines = text.splitlines(True)
        i = line_of(text, "endpoint: {address") - 1
        lines[i] = re.sub(r"port_value: \d+", "port_value: notanumber", lines[i])
        text = "".join(lines)
        self.assert_rejected(text, "notanumber", "port_value")

    def test_wrong_type_map_for_scalar(self):
        text = base().replace("    type: STATIC\n", "    type: {a: b}\n")
        self.assert_rejected(text, "type: {a: b}", "type")

    def test_port_out_of_range(self):
        lines = base().splitlines(True)
        i = line_of("".join(lines), "endpoint: {address") - 1
        lines[i] = re.sub(r"port_value: \d+", "port_value: 70000", lines[i])
        self.assert_rejected("".join(lines), "70000", "port_value")

    def test_bad_duration(self):
        text = base().replace("connect_timeout: 0.25s", "connect_timeout: soon")
        self.assert_rejected(text, "connect_timeout: soon", "connect_timeout")

    def test_missing_required_cluster_name(self):
        text = base().replace("  - name: up\n    type: STATIC\n", "  - type: STATIC\n")
        self.assertNotIn("- name: up", text)
        self.assert_rejected(text)

    def test_missing_required_listener_address(self):
        lines = [ln for ln in base().splitlines(True)
                 if not ln.startswith("    address: {socket_address")]
        self.assert_rejected("".join(lines), field=None)

    def test_duplicate_cluster(self):
        text = base()
        start = text.index("  - name: up\n")
        text = text + text[start:]
        m = self.assert_rejected(text)
        self.assertIn("up", m.group(4))

    def test_undefined_cluster(self):
        text = base().replace("route: {cluster: up}", "route: {cluster: nosuchcluster}")
        m = self.assert_rejected(text, "nosuchcluster")
        self.assertIn("nosuchcluster", m.group(4))

    def test_undefined_weighted_cluster(self):
        text = base().replace(
            "route: {cluster: up}",
            "route: {weighted_clusters: {clusters: [{name: up, weight: 50}, "
            "{name: ghost, weight: 50}]}}")
        m = self.assert_rejected(text, "ghost")
        self.assertIn("ghost", m.group(4))

    def test_unsupported_lb_policy(self):
        text = base().replace("    type: STATIC\n", "    type: STATIC\n    lb_policy: CLUSTER_PROVIDED\n")
        self.assert_rejected(text, "CLUSTER_PROVIDED", "lb_policy")

    def test_unknown_cluster_type(self):
        text = base().replace("    type: STATIC\n", "    type: EDS_MAGIC\n")
        self.assert_rejected(text, "EDS_MAGIC", "type")

    def test_yaml_syntax_error(self):
        text = base().replace('domains: ["*"]', 'domains: ["*"')
        self.assert_rejected(text, exact_line=False)

    def test_bad_config_in_serve_mode(self):
        text = base().replace("route: {cluster: up}", "route: {cluster: nosuchcluster}")
        path, r, err = self.validate(text, mode=None)
        self.assertEqual(r.returncode, 1, err[-2000:])
        self.assertRegex(err, r"cfg\.yaml:\d+:\d+:")

    def test_bad_config_yaml_overlay(self):
        r = run_binary(["--config-yaml", "static_resources: {clusters: [{name: x, "
                        "bogus: 1}]}", "--mode", "validate"])
        err = r.stderr.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 1, err)
        self.assertRegex(err, r"\S+:\d+:\d+:")


if __name__ == "__main__":
    pftest.main()
