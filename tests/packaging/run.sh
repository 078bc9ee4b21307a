#!/usr/bin/env bash
# The packaging stage of scripts/test.sh: static checks of docker/ and
# packaging/ files, the .deb in a clean chroot, the container image and both
# compose examples under podman.  All artefacts (debootstrap rootfs shared by
# the .deb and image tests, the CPack build, logs) live in build-packaging/,
# reused only within one run.
#   tests/packaging/run.sh [PILOTFISH_BINARY]
#   PF_PACKAGING_IMAGE=0  skip the image and compose tests   PF_PACKAGING_COMPOSE=0  skip the compose test (~1 min)
#   PF_PACKAGING_CROSS=0  skip the arm64 cross build (~1 min)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
t0=$SECONDS
apt_install debootstrap podman runc python3-yaml man-db groff-base file
PF=${1:-}
if [ -z "$PF" ] || [ ! -x "$PF" ]; then   # no binary given: build the one the .deb test uses
  cmake -S . -B "$PKG_OUT/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
  cmake --build "$PKG_OUT/build" -j"$(nproc)" --target pilotfish >/dev/null
  PF=$PKG_OUT/build/pilotfish
fi
t=$SECONDS; tests/packaging/test-configs.sh "$PF"; log "configs took $((SECONDS - t))s"
t=$SECONDS; tests/packaging/test-deb.sh;                            log "deb took $((SECONDS - t))s"
if [ "${PF_PACKAGING_IMAGE:-1}" != 0 ]; then
  # One image build serves both container tests; removed at exit.
  export PF_TEST_IMAGE=localhost/pilotfish:packaging-$$
  trap 'podman --runtime runc rmi -f "$PF_TEST_IMAGE" >/dev/null 2>&1 || true' EXIT
  t=$SECONDS; docker/test-image.sh;                                  log "image took $((SECONDS - t))s"
  if [ "${PF_PACKAGING_COMPOSE:-1}" = 0 ]; then :
  elif podman --runtime runc image exists "$PF_TEST_IMAGE" 2>/dev/null; then
    t=$SECONDS; timeout 300 docker/test-compose.sh;                  log "compose took $((SECONDS - t))s"
  else
    log "compose: SKIP (no image: podman could not build or run it here)"
  fi
fi
if [ "${PF_PACKAGING_CROSS:-1}" != 0 ]; then
  t=$SECONDS; packaging/cross-arm64.sh --deb "$PKG_OUT/arm64";       log "arm64 cross build took $((SECONDS - t))s"
fi
log "all packaging tests passed in $((SECONDS - t0))s"
