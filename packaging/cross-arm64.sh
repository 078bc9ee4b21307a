#!/usr/bin/env bash
# Cross-builds pilotfish for arm64 on an amd64 Debian bookworm host (as root):
# gcc-aarch64-linux-gnu plus the arm64 -dev packages through dpkg multiarch.
# llhttp's sources (node-llhttp) are architecture-independent and compiled as
# part of the build.  Result: build-arm64/pilotfish (and, with --deb, the
# arm64 .deb; its Depends are computed by dpkg-shlibdeps from the arm64
# libraries).  Checks the binary is an ARM aarch64 ELF; runs it under
# qemu-user when qemu-user is installed (not installed by this script).
#   packaging/cross-arm64.sh [--deb] [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DEB=; [ "${1:-}" = --deb ] && { DEB=1; shift; }
B=${1:-build-arm64}
t0=$SECONDS
export DEBIAN_FRONTEND=noninteractive
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
  apt-get update -qq
fi
PKGS=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross cmake pkg-config node-llhttp
      libuv1-dev:arm64 libssl-dev:arm64 libnghttp2-dev:arm64 libyaml-dev:arm64
      libluajit2-5.1-dev:arm64 libpcre2-dev:arm64)
apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null \
  || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null; }
echo "[cross-arm64] toolchain + arm64 libraries installed in $((SECONDS - t0))s"
t1=$SECONDS
cmake -S . -B "$B" -DCMAKE_TOOLCHAIN_FILE=packaging/aarch64-toolchain.cmake \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
cmake --build "$B" -j"$(nproc)" --target pilotfish >/dev/null
ft=$(file -b "$B/pilotfish"); echo "[cross-arm64] $B/pilotfish: $ft"
[[ $ft == *"ARM aarch64"* ]] || { echo "[cross-arm64] FAIL: not an aarch64 binary"; exit 1; }
if [ -n "$DEB" ]; then
  rm -f "$B"/pilotfish_*_arm64.deb
  (cd "$B" && cpack -G DEB >/dev/null)
  echo "[cross-arm64] $(ls "$B"/pilotfish_*_arm64.deb): Depends: $(dpkg-deb -f "$B"/pilotfish_*_arm64.deb Depends)"
fi
if command -v qemu-aarch64 >/dev/null; then
  qemu-aarch64 -L /usr/aarch64-linux-gnu "$B/pilotfish" --version
fi
echo "[cross-arm64] built in $((SECONDS - t1))s; total $((SECONDS - t0))s"
