#!/usr/bin/env bash
# Static checks of everything under docker/ and packaging/ (seconds, no root):
# every pilotfish config (files and the ConfigMaps' embedded pilotfish/app
# YAML) passes `pilotfish --mode validate`; compose, Prometheus and Kubernetes
# files parse as YAML with the expected shape; the shipped demo.yaml is the
# embedded demo config; the man page renders; scripts parse.
#   tests/packaging/test-configs.sh [PILOTFISH_BINARY]   (default build/pilotfish)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
PF=${1:-build/pilotfish}
[ -x "$PF" ] || fail "no binary at $PF (build first)"
PF=$(cd "$(dirname "$PF")" && pwd)/$(basename "$PF")
python3 -c 'import yaml' 2>/dev/null || apt_install python3-yaml
PY=python3; $PY -c 'import yaml' 2>/dev/null || PY=/usr/bin/python3
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
n=0
# The compose edge reads the demo certificate from /etc/pilotfish/certs (made
# by docker/compose/demo-certs.sh at startup): validate against a fresh one.
docker/compose/demo-certs.sh "$TMP/certs" >/dev/null || fail "docker/compose/demo-certs.sh"
openssl verify -CAfile "$TMP/certs/ca.crt" "$TMP/certs/edge.crt" >/dev/null || fail "demo certificate does not verify"
for f in packaging/examples/*.yaml docker/compose/*.yaml; do
  sed "s#/etc/pilotfish/certs/#$TMP/certs/#g" "$f" > "$TMP/validate.yaml"
  "$PF" --mode validate -c "$TMP/validate.yaml" >/dev/null || fail "pilotfish --mode validate -c $f"
  n=$((n + 1))
done
# Structure of compose / Prometheus / Kubernetes files; ConfigMap configs out to $TMP.
mkdir "$TMP/cm"
$PY - "$TMP/cm" <<'PY' || fail "YAML structure checks"
import sys, yaml, glob, os, re
tmp = sys.argv[1]
def interpolate(s):   # compose ${VAR:-default} with the defaults
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", s)
wanted = {"docker/compose.yaml": ("demo-certs", "app-v1", "app-v1-sidecar", "app-v2", "app-v2-sidecar",
                                  "edge", "client", "prometheus"),
          "docker/compose-gateway.yaml": ("cloud-a", "cloud-b", "gateway")}
for path, want in wanted.items():
    svcs = yaml.safe_load(open(path))["services"]
    assert sorted(svcs) == sorted(want), f"{path}: services {sorted(svcs)}"
    for name, s in svcs.items():
        deps = s.get("depends_on", [])
        for d in deps:
            assert d in svcs, f"{path} {name}: depends_on unknown {d}"
        for v in s.get("volumes", []):
            src = interpolate(v).split(":")[0]
            if src.endswith("/demo-certs"):   # made by the demo-certs service
                continue
            assert os.path.exists(os.path.join("docker", src)), f"{path} {name}: {src} missing"
        for p in s.get("ports", []):
            assert re.fullmatch(r"\d+:\d+", interpolate(p)), f"{path} {name}: port {p}"
mesh = yaml.safe_load(open("docker/compose.yaml"))["services"]
assert mesh["edge"]["depends_on"]["demo-certs"]["condition"] == "service_completed_successfully"
assert any(v.endswith(":/etc/pilotfish/certs:ro") for v in mesh["edge"]["volumes"]), "edge: certs mount"
p = yaml.safe_load(open("docker/compose/prometheus.yml"))
assert p["scrape_configs"][0]["metrics_path"] == "/stats/prometheus"
n = 0
for f in sorted(glob.glob("docker/kubernetes/*.yaml")):
    for d in yaml.safe_load_all(open(f)):
        if not d: continue
        assert d.get("apiVersion") and d.get("kind") and d["metadata"].get("name"), f + ": not a k8s object"
        if d["kind"] == "ConfigMap":
            for key, text in d["data"].items():
                if key.endswith(".yaml"):
                    out = os.path.join(tmp, f"{os.path.basename(f)}-{d['metadata']['name']}-{key}")
                    open(out, "w").write(text); n += 1
        if d["kind"] == "Deployment":
            spec = d["spec"]["template"]["spec"]
            assert spec.get("terminationGracePeriodSeconds", 0) > 30, f + ": terminationGracePeriodSeconds"
            pf = [x for x in spec["containers"] if x["name"] == "pilotfish"][0]
            assert pf["readinessProbe"]["httpGet"]["path"] == "/ready", f + ": readinessProbe"
            assert "/healthcheck/fail" in " ".join(pf["lifecycle"]["preStop"]["exec"]["command"])
assert n >= 3, "expected the ConfigMaps' configs"
print(f"[packaging] configs: 2 compose files, prometheus and {len(glob.glob('docker/kubernetes/*.yaml'))} kubernetes files parse; {n} ConfigMap configs extracted")
PY
for f in "$TMP"/cm/*; do
  "$PF" --mode validate -c "$f" >/dev/null || fail "ConfigMap config $(basename "$f") does not validate"
  n=$((n + 1))
done
log "configs: $n pilotfish configs pass --mode validate"

# The shipped example is the config pilotfish embeds (config/default_config.c).
$PY - <<'PY' || fail "packaging/examples/demo.yaml differs from config/default_config.c: regenerate it"
import re, yaml
src = open("config/default_config.c").read()
body = src[src.index("cfg_default_yaml[]"):]
body = body[:body.index(";\n")]
text = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', body)).encode().decode("unicode_escape")
assert yaml.safe_load(text) == yaml.safe_load(open("packaging/examples/demo.yaml"))
PY
log "configs: examples/demo.yaml == the embedded demo config"

# Man page: renders, no groff warnings.
if command -v man >/dev/null; then
  MANWIDTH=80 man -l packaging/pilotfish.1 2>"$TMP/man.err" | grep -q -- "--drain-time-s" || fail "man -l packaging/pilotfish.1"
  [ ! -s "$TMP/man.err" ] || { cat "$TMP/man.err"; fail "man page warnings"; }
  log "configs: man -l packaging/pilotfish.1 renders cleanly"
fi
for s in docker/*.sh docker/pilotfish-ready packaging/*.sh tests/packaging/*.sh; do bash -n "$s"; done
sh -n docker/kubernetes/iptables-init.sh docker/compose/demo-certs.sh packaging/debian/postinst packaging/debian/postrm
log "configs: PASS"
