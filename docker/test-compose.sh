#!/usr/bin/env bash
# Brings up both compose examples with Debian's podman-compose (1.0.3) and
# podman, checks them through their published ports, and tears them down:
#
#   docker/compose.yaml          demo-certs makes the demo CA and edge
#     certificate; the edge answers over TLS 1.3 with ALPN h2 and http/1.1 (TLS
#     1.2 refused), splits ~90/10 between app v1 and v2 through their sidecars;
#     the client container's openssl requests get through; the edge admin
#     serves /stats/prometheus.  (Prometheus itself is not started: its image
#     needs a registry.)
#   docker/compose-gateway.yaml  traffic goes to cloud A; the gateway and cloud
#     A answer load balancer probes (pilotfish.health); draining A (admin
#     /healthcheck/fail) moves traffic to B and back after /healthcheck/ok;
#     stopping A's container moves traffic to B without a client error.
#
#   docker/test-compose.sh    (root; installs podman-compose and the CNI dnsname
#                              plugin if missing; ~1 min plus an image build)
#   PF_TEST_IMAGE=TAG         use this pilotfish image (tests/packaging/run.sh
#                             passes the one test-image.sh built); otherwise
#                             the script builds and removes its own.
# Host ports are free ones; projects, containers and networks are named after
# this process id and removed on exit.  Prints "SKIP: reason" and exits 0
# where podman cannot run containers.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${PKG_OUT:-$ROOT/build-packaging}
mkdir -p "$OUT"
t0=$SECONDS
log()  { echo "[compose] $*"; }
skip() { echo "[compose] SKIP: $*"; exit 0; }
fail() { echo "[compose] FAIL: $*" >&2; dump_logs; exit 1; }

source docker/podman-lib.sh
podman_setup podman-compose
# Compose service names resolve only with the network backend's DNS helper:
# the dnsname plugin for CNI (Debian's podman 4.3 default), aardvark-dns for netavark.
case $("${PODMAN[@]}" info -f '{{.Host.NetworkBackend}}') in
  cni)      podman_setup golang-github-containernetworking-plugin-dnsname ;;
  netavark) podman_setup aardvark-dns ;;
esac

MESH=pfmesh$$ GW=pfgw$$
TMP=$(mktemp -d "$OUT/compose.XXXXXX")
export PILOTFISH_IMAGE=${PF_TEST_IMAGE:-localhost/pilotfish:compose-$$}
export PF_DEMO_CERTS=$TMP/certs
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export PF_DEMO_HTTPS_PORT=$(port) PF_DEMO_ADMIN_PORT=$(port) PF_DEMO_PROMETHEUS_PORT=$(port)
export PF_GATEWAY_PORT=$(port) PF_GATEWAY_ADMIN_PORT=$(port)

# podman-compose with runc, the ulimits and no HEALTHCHECK timer (no systemd here).
compose() {   # compose PROJECT FILE ARGS...
  local p=$1 f=$2; shift 2
  podman-compose --podman-args="--runtime runc" \
    --podman-run-args="${ULIMITS[*]} --health-interval=disable" -p "$p" -f "$f" "$@"
}
ctr() { echo "${1}_${2}_1"; }   # podman-compose 1.0.3 container name: PROJECT_SERVICE_1

dump_logs() {
  local c
  for c in $("${PODMAN[@]}" ps -a --format '{{.Names}}' | grep -E "^($MESH|$GW)_" || true); do
    echo "---- podman logs $c"; "${PODMAN[@]}" logs --tail 15 "$c" 2>&1 || true
  done
}
down() {   # down PROJECT FILE: containers, then the network podman-compose 1.0.3 leaves
  compose "$1" "$2" down -t 2 >>"$TMP/compose.log" 2>&1 || true
  "${PODMAN[@]}" network rm -f "${1}_default" >/dev/null 2>&1 || true
}
cleanup() {
  down "$MESH" docker/compose.yaml
  down "$GW" docker/compose-gateway.yaml
  if [ -z "${PF_TEST_IMAGE:-}" ]; then   # our own build: the image and its build stage
    "${PODMAN[@]}" rmi -f "$PILOTFISH_IMAGE" >/dev/null 2>&1 || true
    "${PODMAN[@]}" image prune -f >/dev/null 2>&1 || true
  fi
  [ -n "${BASE_IMPORTED:-}" ] && "${PODMAN[@]}" rmi -f debian:bookworm-slim >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 124' TERM INT       # a timeout still tears down (EXIT trap)

if ! "${PODMAN[@]}" image exists "$PILOTFISH_IMAGE"; then
  podman_base_image "$OUT"
  log "podman build (docker/Dockerfile) as $PILOTFISH_IMAGE"
  podman_build_image "$PILOTFISH_IMAGE" "$OUT/compose-image-build.log"
fi

# until SECONDS CMD...: retry CMD every 0.2 s until it succeeds or time is up.
until_ok() {
  local t=$1 i; shift
  for ((i = 0; i < t * 5; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}
served_by() { curl -fsS --max-time 3 -o /dev/null -w '%header{x-served-by}' "http://127.0.0.1:$PF_GATEWAY_PORT/${1:-}"; }
served_by_is() { [ "$(served_by)" = "$1" ]; }

############################ mesh: TLS edge, canary ###########################
log "mesh: podman-compose up ($MESH)"
t=$SECONDS
# podman-compose 1.0.3 orders by depends_on but does not wait for conditions:
# run the certificate init service to completion first.
compose "$MESH" docker/compose.yaml up -d --no-build demo-certs >>"$TMP/compose.log" 2>&1 \
  || { tail -n 20 "$TMP/compose.log"; fail "up demo-certs"; }
rc=$("${PODMAN[@]}" wait "$(ctr "$MESH" demo-certs)")
[ "$rc" = 0 ] || fail "demo-certs exited $rc"
openssl verify -CAfile "$PF_DEMO_CERTS/ca.crt" "$PF_DEMO_CERTS/edge.crt" >/dev/null || fail "demo certificate does not verify"
compose "$MESH" docker/compose.yaml up -d --no-build \
    demo-certs app-v1 app-v1-sidecar app-v2 app-v2-sidecar edge client >>"$TMP/compose.log" 2>&1 \
  || { tail -n 20 "$TMP/compose.log"; fail "up"; }
EDGE=https://localhost:$PF_DEMO_HTTPS_PORT
CURL=(curl -fsS --max-time 5 --cacert "$PF_DEMO_CERTS/ca.crt")
until_ok 30 curl -fsS --max-time 1 "http://127.0.0.1:$PF_DEMO_ADMIN_PORT/ready" || fail "edge admin /ready"
until_ok 30 "${CURL[@]}" "$EDGE/" || fail "no answer through the TLS edge"
log "mesh: up and serving in $((SECONDS - t))s"

v=$("${CURL[@]}" --http2 -o "$TMP/body" -w '%{http_version}' -v "$EDGE/" 2>"$TMP/curl.err")
[ "$v" = 2 ] || fail "curl --http2 got HTTP/$v"
grep -q "SSL connection using TLSv1.3" "$TMP/curl.err" || { cat "$TMP/curl.err"; fail "not TLS 1.3"; }
grep -q "hello from app v" "$TMP/body" || fail "body: $(cat "$TMP/body")"
[ "$("${CURL[@]}" --http1.1 -o /dev/null -w '%{http_version}' "$EDGE/")" = 1.1 ] || fail "ALPN http/1.1"
! "${CURL[@]}" --tls-max 1.2 -o /dev/null "$EDGE/" 2>/dev/null || fail "TLS 1.2 accepted"
log "mesh: TLS 1.3 with ALPN h2 and http/1.1 (TLS 1.2 refused), certificate verified against the demo CA"

# 400 requests on one HTTP/2 connection: v2 should get ~10% (40; 20..70 is > 3 sigma).
N=400
"${CURL[@]}" --http2 $(printf "$EDGE/canary %.0s" $(seq $N)) > "$TMP/canary"
v1=$(grep -c "hello from app v1" "$TMP/canary" || true); v2=$(grep -c "hello from app v2" "$TMP/canary" || true)
[ $((v1 + v2)) -eq $N ] || fail "canary: $v1 + $v2 answers of $N"
[ "$v2" -ge 20 ] && [ "$v2" -le 70 ] || fail "canary: v2 got $v2 of $N (expected ~10%)"
log "mesh: canary split v1 $v1 / v2 $v2 of $N"

client_answered() { "${PODMAN[@]}" logs "$(ctr "$MESH" client)" 2>/dev/null | grep -q 'hello from app v'; }
until_ok 15 client_answered || fail "the client container got no answer through the edge"
curl -fsS "http://127.0.0.1:$PF_DEMO_ADMIN_PORT/stats/prometheus" > "$TMP/prom"
grep -q '^envoy_cluster_upstream_rq_total{envoy_cluster_name="app_v2"}' "$TMP/prom" \
  || fail "edge /stats/prometheus has no app_v2 upstream_rq_total"
log "mesh: client container OK over TLS; /stats/prometheus OK"
down "$MESH" docker/compose.yaml

############################ gateway: failover between clouds ################
log "gateway: podman-compose up ($GW)"
t=$SECONDS
compose "$GW" docker/compose-gateway.yaml up -d --no-build >>"$TMP/compose.log" 2>&1 \
  || { tail -n 20 "$TMP/compose.log"; fail "up"; }
GA=http://127.0.0.1:$PF_GATEWAY_ADMIN_PORT
both_healthy() { [ "$(curl -fsS --max-time 2 "$GA/clusters" | grep -c '^clouds::.*::health_flags::healthy$')" = 2 ]; }
until_ok 30 curl -fsS --max-time 1 "$GA/ready" || fail "gateway admin /ready"
until_ok 30 both_healthy || fail "gateway: both clouds never healthy"
log "gateway: up, both clouds healthy in $((SECONDS - t))s"
for i in $(seq 20); do [ "$(served_by)" = cloud-a ] || fail "request $i not served by cloud-a"; done

# Cloud load balancer probes: the gateway (healthy while a cloud is) and cloud A.
probe() {   # probe URL USER-AGENT -> "STATUS PROBER BODY"
  curl -sS --max-time 3 -A "$2" -o "$TMP/probe" -w '%{http_code} %header{x-pilotfish-probe} ' "$1"; cat "$TMP/probe"
}
p=$(probe "http://127.0.0.1:$PF_GATEWAY_PORT/" GoogleHC/1.0); [ "$p" = "200 gcp OK" ] || fail "gateway GoogleHC probe: $p"
A=$(podman_ip "$(ctr "$GW" cloud-a)")
p=$(probe "http://$A:10000/" ELB-HealthChecker/2.0); [ "$p" = "200 aws-elb OK" ] || fail "cloud A ELB probe: $p"
log "gateway: GoogleHC probe of the gateway and ELB probe of cloud A answered '200 OK'"

# Drain A: its probes answer 503 at once, the gateway's checks move traffic to B.
curl -fsS -X POST "http://$A:9901/healthcheck/fail" >/dev/null
p=$(probe "http://$A:10000/" ELB-HealthChecker/2.0)
[ "$p" = "503 aws-elb UNAVAILABLE: draining" ] || fail "drained cloud A ELB probe: $p"
t=$SECONDS
until_ok 10 served_by_is cloud-b || fail "gateway did not move to cloud-b after A drained"
log "gateway: cloud A drained -> traffic on cloud-b after ~$((SECONDS - t))s"
curl -fsS -X POST "http://$A:9901/healthcheck/ok" >/dev/null
until_ok 10 served_by_is cloud-a || fail "gateway did not return to cloud-a"
until_ok 10 both_healthy || fail "cloud A not healthy again"
log "gateway: /healthcheck/ok -> back on cloud-a"

# Stop A's container under a steady client: every request must still answer 200
# (connect failures to A are retried on B: previous_priorities).
( end=$((SECONDS + 8))
  while [ $SECONDS -lt $end ]; do
    curl -sS --max-time 5 -o /dev/null -w '%{http_code} %header{x-served-by}\n' "http://127.0.0.1:$PF_GATEWAY_PORT/load" 2>&1 || true
  done > "$TMP/load" ) &
LOAD=$!
until_ok 5 test -s "$TMP/load" || fail "no load"
"${PODMAN[@]}" stop -t 10 "$(ctr "$GW" cloud-a)" >/dev/null 2>&1
until_ok 10 served_by_is cloud-b || fail "gateway did not move to cloud-b after cloud A stopped"
wait "$LOAD"
total=$(wc -l < "$TMP/load"); on_b=$(grep -c '^200 cloud-b$' "$TMP/load" || true)
bad=$(grep -vc '^200 cloud-[ab]$' "$TMP/load" || true)
[ "$bad" -eq 0 ] || { grep -v '^200 cloud-[ab]$' "$TMP/load" | sort | uniq -c; fail "$bad of $total requests failed while cloud A stopped"; }
[ "$on_b" -gt 0 ] && [ "$(tail -n 1 "$TMP/load")" = "200 cloud-b" ] || fail "load did not end on cloud-b"
p=$(probe "http://127.0.0.1:$PF_GATEWAY_PORT/" GoogleHC/1.0); [ "$p" = "200 gcp OK" ] || fail "gateway probe with B only: $p"
curl -fsS "$GA/stats" | grep -E '^cluster\.clouds\.(upstream_rq_retry_success|upstream_cx_connect_fail|health_check\.failure):' | tr '\n' ' ' > "$TMP/stats"
log "gateway: cloud A stopped -> $total requests, 0 failed, $on_b on cloud-b; $(cat "$TMP/stats")"
down "$GW" docker/compose-gateway.yaml

log "PASS in $((SECONDS - t0))s"
