"""Filesystem xDS: dynamic_resources with CDS / LDS files (Envoy's
dynamic-config-fs example), start-up from the files, live endpoint updates by
atomic rename, rejected updates (malformed, or needing a restart) and their
stats, located errors."""

import json
import os
import re
import threading

import pftest
from pftest import HttpConn, ProxyTestCase, cluster, free_port, listener, match_prefix, \
    route, vhost, wait_until

CDS_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
LDS_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"
TF = pftest.TF

# Envoy's examples/dynamic-config-fs, service1 and the ports rewritten to
# loopback (note `filters:` is a single map there, not a list).
EXAMPLE_ENVOY = """\
node:
  id: id_1
  cluster: test

dynamic_resources:
  cds_config:
    path_config_source:
      path: {dir}/cds.yaml
  lds_config:
    path_config_source:
      path: {dir}/lds.yaml

admin:
  address:
    socket_address:
      address: 127.0.0.1
      port_value: {admin}
"""
EXAMPLE_CDS = """\
resources:
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: example_proxy_cluster
  type: STRICT_DNS
  load_assignment:
    cluster_name: example_proxy_cluster
    endpoints:
    - lb_endpoints:
      - endpoint:
          address:
            socket_address:
              address: localhost
              port_value: {up}
"""
EXAMPLE_LDS = """\
resources:
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: listener_0
  address:
    socket_address:
      address: 127.0.0.1
      port_value: {port}
  filter_chains:
  - filters:
      name: envoy.filters.network.http_connection_manager
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
        stat_prefix: ingress_http
        http_filters:
        - name: envoy.filters.http.router
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
        route_config:
          name: local_route
          virtual_hosts:
          - name: local_service
            domains:
            - "*"
            routes:
            - match:
                prefix: "/"
              route:
                cluster: example_proxy_cluster
"""


def replace_file(path, text):
    """Writes text next to path, then renames it into place (atomic, as Envoy expects)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def doc(resources, type_url, version=None, as_json=False):
    d = {}
    if version is not None:
        d["version_info"] = version
    d["resources"] = [dict({"@type": type_url}, **r) for r in resources]
    return json.dumps(d) if as_json else pftest.to_yaml(d)


def stat(admin, name):
    body = pftest.http_get(admin, "/stats").body.decode()
    m = re.search(r"^%s: (\d+)$" % re.escape(name), body, re.M)
    return int(m.group(1)) if m else None


class XdsFsTest(ProxyTestCase):

    def setup_files(self, clusters, listeners, cds_name="cds.yaml", lds_name="lds.json",
                    cds_source=None):
        self.dir = pftest.tmpdir("xdsfs")
        self.cds = os.path.join(self.dir, cds_name)
        self.lds = os.path.join(self.dir, lds_name)
        replace_file(self.cds, doc(clusters, CDS_TYPE, "v1", cds_name.endswith(".json")))
        replace_file(self.lds, doc(listeners, LDS_TYPE, "l1", lds_name.endswith(".json")))
        self.admin = free_port()
        return {
            "node": {"id": "n1", "cluster": "c1"},
            "admin": {"address": pftest.sockaddr(self.admin)},
            "dynamic_resources": {
                "cds_config": cds_source or {"resource_api_version": "V3",
                                             "path_config_source": {"path": self.cds}},
                # The older plain `path` form.
                "lds_config": {"resource_api_version": "V3", "path": self.lds},
            },
        }

    def start(self, clusters, listeners, port, **kw):
        boot = self.setup_files(clusters, listeners, **kw)
        return self.start_proxy(boot, listen_ports=[port], admin_port=self.admin)

    def wait_stat(self, name, value):
        wait_until(lambda: stat(self.admin, name) == value, 10 * TF,
                   what="%s == %d (now %s)" % (name, value, stat(self.admin, name)))

    def test_envoy_example_runs(self):
        up = self.start_upstream("svc1", also_ipv6=True)
        port, admin = free_port(), free_port()
        d = pftest.tmpdir("example")
        with open(os.path.join(d, "cds.yaml"), "w") as f:
            f.write(EXAMPLE_CDS.format(up=up.port))
        with open(os.path.join(d, "lds.yaml"), "w") as f:
            f.write(EXAMPLE_LDS.format(port=port))
        self.start_proxy(EXAMPLE_ENVOY.format(dir=d, admin=admin), listen_ports=[port],
                         admin_port=admin)
        with HttpConn(port) as c:
            r = c.get("/hello")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.headers.get("x-upstream-name"), "svc1")
        self.assertEqual(stat(admin, "cluster_manager.cds.update_success"), 1)
        self.assertEqual(stat(admin, "listener_manager.lds.update_success"), 1)

    def run_switch(self, ctype, address):
        a = self.start_upstream("A")
        b = self.start_upstream("B")
        port = free_port()
        lst = [listener("l0", port, [vhost("v", ["*"], [route(match_prefix("/"), "dyn")])])]
        # A long DNS refresh: only the update itself may move the traffic.
        dns = {"dns_refresh_rate": "600s"} if ctype != "STATIC" else {}
        self.start([cluster("dyn", [(address, a.port)], type=ctype, **dns)], lst, port)
        failures, seen_b = [], 0
        # Two more clients keep requests in flight through the switch, each on
        # one keep-alive connection, until it is over.
        stop = threading.Event()

        def load():
            try:
                with HttpConn(port) as lc:
                    while not stop.is_set():
                        r = lc.get("/load")
                        if r.status != 200:
                            failures.append(r)
            except Exception as e:      # a reset connection is a failure too
                failures.append(e)
        loaders = [threading.Thread(target=load) for _ in range(2)]
        for t in loaders:
            t.start()
        with HttpConn(port) as c:
            for _ in range(5):
                r = c.get("/before")
                self.assertEqual((r.status, r.headers.get("x-upstream-name")), (200, "A"))
            replace_file(self.cds, doc([cluster("dyn", [(address, b.port)], type=ctype, **dns)],
                                       CDS_TYPE, "v2"))

            def switched():
                nonlocal seen_b
                r = c.get("/during")
                if r.status != 200:
                    failures.append(r)
                seen_b = seen_b + 1 if r.headers.get("x-upstream-name") == "B" else 0
                return seen_b >= 5   # every request goes to B now
            try:
                wait_until(switched, 10 * TF, interval=0, what="traffic moved to B")
            finally:
                stop.set()
                for t in loaders:
                    t.join()
        self.assertEqual(failures, [])
        self.assertGreater(len(b.requests), 5)
        self.wait_stat("cluster_manager.cds.update_success", 2)
        self.assertIn('cluster_manager.cds.version_text: "v2"\n',
                      pftest.http_get(self.admin, "/stats").body.decode())
        js = json.loads(pftest.http_get(self.admin, "/stats?format=json&filter=version_text").body)
        self.assertIn({"name": "cluster_manager.cds.version_text", "value": "v2"}, js["stats"])
        self.assertIn({"name": "listener_manager.lds.version_text", "value": "l1"}, js["stats"])
        # /config_dump: the bootstrap names the files; the clusters in use are dynamic.
        dump = json.loads(pftest.http_get(self.admin, "/config_dump").body)["configs"]
        boot = dump[0]["bootstrap"]
        self.assertEqual(boot["static_resources"]["clusters"], [])
        self.assertEqual(boot["dynamic_resources"]["cds_config"]["path_config_source"]["path"],
                         self.cds)
        self.assertEqual(boot["node"], {"id": "n1", "cluster": "c1"})
        cds = [c for c in dump if c["@type"].endswith("ClustersConfigDump")][0]
        self.assertEqual(cds["version_info"], "v2")
        active = cds["dynamic_active_clusters"][0]
        self.assertEqual(active["cluster"]["name"], "dyn")
        self.assertEqual(active["cluster"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
                         ["endpoint"]["address"]["socket_address"]["port_value"], b.port)
        lds = [c for c in dump if c["@type"].endswith("ListenersConfigDump")][0]
        self.assertEqual(lds["dynamic_listeners"][0]["name"], "l0")
        self.assertEqual(stat(self.admin, "cluster_manager.cds.update_attempt"), 2)
        self.assertEqual(stat(self.admin, "cluster_manager.cds.config_reload"), 2)
        self.assertEqual(stat(self.admin, "cluster_manager.cds.update_rejected"), 0)

    def test_static_cluster_endpoints_switch(self):
        self.run_switch("STATIC", "127.0.0.1")

    def test_strict_dns_cluster_reresolves(self):
        self.run_switch("STRICT_DNS", "localhost")

    def test_bad_updates_rejected_traffic_flows(self):
        a = self.start_upstream("A")
        b = self.start_upstream("B")
        port = free_port()
        lst = [listener("l0", port, [vhost("v", ["*"], [route(match_prefix("/"), "dyn")])])]
        good = [cluster("dyn", [a.port])]
        p = self.start(good, lst, port)
        c = HttpConn(port)
        self.addCleanup(c.close)

        def check_a():
            r = c.get("/x")
            self.assertEqual((r.status, r.headers.get("x-upstream-name")), (200, "A"))

        rejected = 0
        # YAML syntax error; a validation error (located in cds.yaml);
        # then changes that need a restart: a field, an added and a removed cluster.
        cases = [
            ("resources: [", r"cds\.yaml:\d+:\d+: "),
            (doc([dict(cluster("dyn", [b.port]), type="STRIC")], CDS_TYPE),
             r"cds\.yaml:\d+:\d+: resources\[0\]\.type: invalid value 'STRIC'"),
            (doc([cluster("dyn", [b.port], lb_policy="RANDOM")], CDS_TYPE),
             r"cluster 'dyn': field 'lb_policy' changed \(needs a restart"),
            (doc([cluster("dyn", [b.port]), cluster("more", [b.port])], CDS_TYPE),
             r"cluster 'more' added \(needs a restart"),
            (doc([], CDS_TYPE), r"cluster 'dyn' removed \(needs a restart"),
        ]
        for text, log_re in cases:
            replace_file(self.cds, text)
            rejected += 1
            self.wait_stat("cluster_manager.cds.update_rejected", rejected)
            self.assertRegex(p.log(), log_re)
            for _ in range(3):
                check_a()
        self.assertEqual(stat(self.admin, "cluster_manager.cds.update_success"), 1)
        self.assertEqual(stat(self.admin, "cluster_manager.cds.update_attempt"), 1 + rejected)
        # Writing in place (no move) is not an update, as in Envoy.
        with open(self.cds, "w") as f:
            f.write(doc([cluster("dyn", [b.port])], CDS_TYPE))
        check_a()
        # A good update still applies after all that.
        replace_file(self.cds, doc([cluster("dyn", [b.port])], CDS_TYPE, "v9"))
        self.wait_stat("cluster_manager.cds.update_success", 2)
        wait_until(lambda: c.get("/y").headers.get("x-upstream-name") == "B", 10 * TF,
                   interval=0, what="traffic moved to B")

    def test_lds_changes_rejected_unchanged_accepted(self):
        a = self.start_upstream("A")
        port = free_port()
        lst = [listener("l0", port, [vhost("v", ["*"], [route(match_prefix("/"), "dyn")])])]
        p = self.start([cluster("dyn", [a.port])], lst, port)
        # Same listeners, new version: accepted.
        replace_file(self.lds, doc(lst, LDS_TYPE, "l2", as_json=True))
        self.wait_stat("listener_manager.lds.update_success", 2)
        # A route change: needs a restart today.
        lst2 = [listener("l0", port, [vhost("v", ["*"], [route(match_prefix("/b"), "dyn")])])]
        replace_file(self.lds, doc(lst2, LDS_TYPE, "l3", as_json=True))
        self.wait_stat("listener_manager.lds.update_rejected", 1)
        self.assertIn("listener 'l0' changed", p.log())
        # An unknown cluster: a located validation error.
        replace_file(self.lds, doc(lst2[:0] + [listener("l1", free_port(), [vhost(
            "v", ["*"], [route(match_prefix("/"), "ghost")])])], LDS_TYPE, as_json=True))
        self.wait_stat("listener_manager.lds.update_rejected", 2)
        self.assertRegex(p.log(), r"lds\.json:1:\d+: resources\[0\]\..*unknown cluster 'ghost'")
        with HttpConn(port) as c:
            self.assertEqual(c.get("/").status, 200)

    def test_watched_directory_symlink_swap(self):
        # The Kubernetes ConfigMap layout: cds.yaml -> ..data/cds.yaml, ..data -> ..v1;
        # an update swaps ..data by renaming a new symlink over it.
        a = self.start_upstream("A")
        b = self.start_upstream("B")
        port = free_port()
        lst = [listener("l0", port, [vhost("v", ["*"], [route(match_prefix("/"), "dyn")])])]
        root = pftest.tmpdir("cm")

        def version(name, up):
            os.mkdir(os.path.join(root, name))
            with open(os.path.join(root, name, "cds.yaml"), "w") as f:
                f.write(doc([cluster("dyn", [up.port])], CDS_TYPE, name))
            os.symlink(name, os.path.join(root, "..tmp"))
            os.replace(os.path.join(root, "..tmp"), os.path.join(root, "..data"))

        version("..v1", a)
        os.symlink("..data/cds.yaml", os.path.join(root, "cds.yaml"))
        src = {"path_config_source": {"path": os.path.join(root, "cds.yaml"),
                                      "watched_directory": {"path": root}}}
        self.start([cluster("dyn", [a.port])], lst, port, cds_source=src)
        with HttpConn(port) as c:
            self.assertEqual(c.get("/").headers.get("x-upstream-name"), "A")
            version("..v2", b)
            wait_until(lambda: c.get("/").headers.get("x-upstream-name") == "B", 10 * TF,
                       interval=0, what="traffic moved to B")

    def validate(self, boot, files):
        d = pftest.tmpdir("xdsval")
        for name, text in files.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        path = os.path.join(d, "envoy.yaml")
        with open(path, "w") as f:
            f.write(boot.format(dir=d))
        return pftest.run_binary(["-c", path, "--mode", "validate"])

    def test_startup_errors_located(self):
        boot = ("dynamic_resources:\n  cds_config:\n    path_config_source:\n"
                "      path: {dir}/cds.yaml\n")
        static = ("static_resources:\n  clusters:\n  - name: dup\n"
                  "    load_assignment: {{cluster_name: dup}}\n")
        cases = [
            (boot, {"cds.yaml": "resources:\n- \"@type\": %s\n  name: x\n  type: STRIC\n"
                                % CDS_TYPE},
             r"cds\.yaml:4:9: resources\[0\]\.type: invalid value 'STRIC'"),
            (boot, {"cds.yaml": "resources:\n- \"@type\": %s\n  name: x\n" % LDS_TYPE},
             r"cds\.yaml:2:\d+: resources\[0\]\.@type: not supported yet: .*Listener"),
            (boot + static, {"cds.yaml": "resources:\n- \"@type\": %s\n  name: dup\n"
                                         % CDS_TYPE},
             r"cds\.yaml:3:9: resources\[0\]\.name: cluster 'dup' is already defined in "
             r"static_resources\.clusters\[0\]"),
            (boot, {}, r"envoy\.yaml:4:13: dynamic_resources\.cds_config\.path_config_source"
                       r"\.path: cannot read '.*cds\.yaml': No such file"),
            (boot.replace("cds.yaml", "cds.pb"), {"cds.pb": ""},
             r"path: not supported yet: '.*cds\.pb'"),
            ("dynamic_resources:\n  ads_config: {{}}\n", {},
             r"envoy\.yaml:2:3: dynamic_resources\.ads_config: not supported yet"),
            ("dynamic_resources:\n  cds_config:\n    ads: {{}}\n", {},
             r"dynamic_resources\.cds_config\.ads: not supported yet"),
            ("dynamic_resources:\n  cds_config:\n    path: {dir}/c.yaml\n"
             "    resource_api_version: V2\n", {"c.yaml": ""},
             r"dynamic_resources\.cds_config\.resource_api_version: .*V2"),
            ("node: {{id: a, cluster: b, bogus: 1}}\n", {}, r"node\.bogus: unknown field"),
        ]
        for b, files, err in cases:
            r = self.validate(b, files)
            self.assertEqual(r.returncode, 1, (b, r.stdout, r.stderr))
            self.assertRegex(r.stderr.decode(), err)
        # An empty CDS file is no clusters; node alone is fine.
        r = self.validate(boot + "node: {{id: a, cluster: b}}\n", {"cds.yaml": ""})
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    pftest.main()
