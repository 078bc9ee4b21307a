# Podman setup shared by docker/test-image.sh and docker/test-compose.sh
# (sourced after `cd` to the repository root; defines log/skip/fail first).
#
# These machines have no Docker engine and no reachable registry, but podman
# from Debian works as root with two adjustments: crun refuses the hybrid
# cgroup v1 layout (use runc), and containers must keep their ulimits within
# the sandbox's hard limits.

PODMAN=(podman --runtime runc)
_hn=$(ulimit -Hn); _hu=$(ulimit -Hu)
[ "$_hn" = unlimited ] && _hn=1048576
[ "$_hu" = unlimited ] && _hu=32768
PODMAN_NOFILE=$(( _hn < 20000 ? _hn : 20000 )); PODMAN_NPROC=$(( _hu < 32768 ? _hu : 32768 ))
ULIMITS=(--ulimit "nofile=$PODMAN_NOFILE:$PODMAN_NOFILE" --ulimit "nproc=$PODMAN_NPROC:$PODMAN_NPROC")

# podman_setup PKG...: root, then podman + runc + PKG installed (SKIP otherwise).
podman_setup() {
  [ "$(id -u)" -eq 0 ] || skip "needs root (rootless podman needs subuid setup this script does not do)"
  local missing=() p
  for p in podman runc "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || skip "${missing[*]} missing and no apt-get"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } \
    || skip "could not install ${missing[*]}"
}

# podman_base_image OUT_DIR: make sure debian:bookworm-slim exists, importing a
# debootstrap root (packaging/debootstrap-rootfs.sh) under that name when no
# registry can provide it; sets BASE_IMPORTED=1 then.  SKIPs when podman
# cannot run a container at all here.
podman_base_image() {
  if ! "${PODMAN[@]}" image exists debian:bookworm-slim; then
    command -v debootstrap >/dev/null || apt-get install -y -qq --no-install-recommends debootstrap >/dev/null 2>&1 \
      || skip "no debian:bookworm-slim and could not install debootstrap"
    local tar
    tar=$(packaging/debootstrap-rootfs.sh "$1")
    log "importing $tar as debian:bookworm-slim (a debootstrap stand-in for the official image)"
    "${PODMAN[@]}" import --change 'CMD ["bash"]' "$tar" debian:bookworm-slim >/dev/null 2>&1
    BASE_IMPORTED=1
  fi
  local err
  if ! err=$("${PODMAN[@]}" run --rm --network host "${ULIMITS[@]}" debian:bookworm-slim true 2>&1); then
    skip "podman cannot run a container here: $err"
  fi
}

# podman_build_image TAG LOG: build docker/Dockerfile as TAG (Docker format
# keeps the HEALTHCHECK), build output to LOG.
podman_build_image() {
  "${PODMAN[@]}" build --network=host --format docker "${ULIMITS[@]}" --pull=never \
    --ignorefile docker/Dockerfile.dockerignore -f docker/Dockerfile -t "$1" . > "$2" 2>&1 \
    || { tail -n 40 "$2"; fail "podman build"; }
}

# podman_ip CONTAINER: its address on its (first) network.
podman_ip() {
  "${PODMAN[@]}" inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$1" | awk '{print $1}'
}
