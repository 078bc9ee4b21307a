#!/usr/bin/env bash
# Builds the pilotfish image from docker/Dockerfile with podman and checks it:
# runs it with host networking and a mounted config on free ports, probes the
# admin /ready and a request through the listener, runs the image's HEALTHCHECK
# command, checks it runs as non-root, and that SIGTERM stops it with exit 0.
# Removes the container and image it made (trap).
#
#   docker/test-image.sh            (as root; installs podman/runc/debootstrap if missing)
#   PF_TEST_IMAGE=TAG docker/test-image.sh    build as TAG and leave it (for test-compose.sh)
#
# No registry is reachable here, so when debian:bookworm-slim is not in podman's
# storage it is made with debootstrap from the Debian mirror apt already uses
# (packaging/debootstrap-rootfs.sh) and imported under that name.  Prints
# "SKIP: reason" and exits 0 where podman cannot run containers at all.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${PKG_OUT:-$ROOT/build-packaging}
mkdir -p "$OUT"
TAG=${PF_TEST_IMAGE:-localhost/pilotfish:test-$$}   # PF_TEST_IMAGE: the caller keeps (and removes) it
CTR=pilotfish-test-$$
t0=$SECONDS
log()  { echo "[image] $*"; }
skip() { echo "[image] SKIP: $*"; exit 0; }
fail() { echo "[image] FAIL: $*" >&2; exit 1; }

source docker/podman-lib.sh
podman_setup
# No systemd here to drive the HEALTHCHECK timer: keep the check, drop the
# timer, and run the check by hand with `podman healthcheck run`.
NOTIMER=(--health-interval=disable)

cleanup() {
  "${PODMAN[@]}" rm -f -t 0 "$CTR" >/dev/null 2>&1 || true
  [ -n "${PF_TEST_IMAGE:-}" ] || "${PODMAN[@]}" rmi -f "$TAG" >/dev/null 2>&1 || true
  [ -n "${BASE_IMPORTED:-}" ] && [ -z "${KEEP_BASE:-}" ] && "${PODMAN[@]}" rmi -f debian:bookworm-slim >/dev/null 2>&1 || true
  "${PODMAN[@]}" image prune -f >/dev/null 2>&1 || true
}
trap cleanup EXIT
podman_base_image "$OUT"

log "podman build (docker/Dockerfile)"
t1=$SECONDS
podman_build_image "$TAG" "$OUT/image-build.log"
log "built $TAG in $((SECONDS - t1))s, $("${PODMAN[@]}" image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.1f MB", $1/1e6}')"

user=$("${PODMAN[@]}" image inspect -f '{{.Config.User}}' "$TAG")
[ -n "$user" ] && [ "${user%%:*}" != 0 ] && [ "${user%%:*}" != root ] || fail "image runs as root ($user)"
"${PODMAN[@]}" image inspect -f '{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{json .Config.ExposedPorts}}' "$TAG"
hc=$("${PODMAN[@]}" image inspect -f '{{json .Config.Healthcheck}}' "$TAG")
[[ $hc == *pilotfish-ready* ]] || fail "no HEALTHCHECK in the image: $hc"

# The default command (demo config at /etc/pilotfish/pilotfish.yaml) validates.
"${PODMAN[@]}" run --rm "${ULIMITS[@]}" "${NOTIMER[@]}" --network none "$TAG" --mode validate -c /etc/pilotfish/pilotfish.yaml
"${PODMAN[@]}" run --rm "${ULIMITS[@]}" "${NOTIMER[@]}" --network none --entrypoint ls "$TAG" /usr/share/pilotfish/lua/README.md >/dev/null

# Host networking with a mounted config on free ports (no clash with 10000/9901).
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ADMIN=$(port); LISTEN=$(port); UP=$(port)
cat > "$OUT/image-test.yaml" <<YAML
# front listener -> cluster "app" -> a second listener answering directly
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: $ADMIN } }
static_resources:
  listeners:
  - name: front
    address: { socket_address: { address: 127.0.0.1, port_value: $LISTEN } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: front
          route_config:
            virtual_hosts:
            - { name: all, domains: ["*"], routes: [ { match: { prefix: "/" }, route: { cluster: app } } ] }
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
  - name: app
    address: { socket_address: { address: 127.0.0.1, port_value: $UP } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: app
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [ { match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "hello from the image" } } } ]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
  clusters:
  - name: app
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: app
      endpoints: [ { lb_endpoints: [ { endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $UP } } } } ] } ]
YAML
chmod 0644 "$OUT/image-test.yaml"
log "run: host network, admin :$ADMIN, listener :$LISTEN"
"${PODMAN[@]}" run -d --name "$CTR" --network host "${ULIMITS[@]}" "${NOTIMER[@]}" \
  -e PILOTFISH_ADMIN_PORT="$ADMIN" \
  -v "$OUT/image-test.yaml:/etc/pilotfish/pilotfish.yaml:ro,Z" \
  "$TAG" -c /etc/pilotfish/pilotfish.yaml --concurrency 1 --drain-time-s 3 >/dev/null
ok=
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$ADMIN/ready" 2>/dev/null && { ok=1; break; }
  sleep 0.1
done
[ -n "$ok" ] || { "${PODMAN[@]}" logs "$CTR"; fail "admin /ready did not answer 200"; }
body=$(curl -fsS --max-time 5 "http://127.0.0.1:$LISTEN/hello")
[ "$body" = "hello from the image" ] || fail "proxied request answered '$body'"
log "/ready 200, proxied request OK"
"${PODMAN[@]}" healthcheck run "$CTR" || fail "the image's HEALTHCHECK failed"
[ "$("${PODMAN[@]}" inspect -f '{{.State.Health.Status}}' "$CTR")" = healthy ] || fail "container not healthy"
uid=$("${PODMAN[@]}" exec "$CTR" id -u)
[ "$uid" != 0 ] || fail "container process runs as root"
log "HEALTHCHECK: healthy; running as uid $uid"

"${PODMAN[@]}" stop -t 15 "$CTR" >/dev/null
rc=$("${PODMAN[@]}" inspect -f '{{.State.ExitCode}}' "$CTR")
[ "$rc" = 0 ] || { "${PODMAN[@]}" logs "$CTR"; fail "exit code $rc after SIGTERM"; }
log "SIGTERM -> drained, exit 0"
log "PASS in $((SECONDS - t0))s"
