#!/usr/bin/env bash
# The packaging stage of scripts/test.sh: static checks of docker/ and
# packaging/ files, the .deb in a clean chroot, the container image under
# podman.  All artefacts (debootstrap rootfs shared by the .deb and image tests,
# the CPack build, logs) live in build-packaging/, reused only within one run.
#   tests/packaging/run.sh [PILOTFISH_BINARY]
#   PF_PACKAGING_IMAGE=0  skip the image test     PF_PACKAGING_CROSS=0  skip the arm64 cross build (~1 min)
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
  t=$SECONDS; docker/test-image.sh;                                  log "image took $((SECONDS - t))s"
fi
if [ "${PF_PACKAGING_CROSS:-1}" != 0 ]; then
  t=$SECONDS; packaging/cross-arm64.sh --deb "$PKG_OUT/arm64";       log "arm64 cross build took $((SECONDS - t))s"
fi
log "all packaging tests passed in $((SECONDS - t0))s"
