#!/usr/bin/env bash
# Installs what pilotfish needs to build and test on Debian 12 (bookworm).
# Idempotent: packages already present are skipped by apt.
set -euo pipefail

BUILD_PKGS=(build-essential cmake pkg-config libuv1-dev libssl-dev libnghttp2-dev
            node-llhttp libyaml-dev libluajit2-5.1-dev libpcre2-dev)
TEST_PKGS=(curl python3 clang libclang-rt-14-dev procps)

want=("${BUILD_PKGS[@]}")
[ "${1:-}" = "--test" ] && want+=("${TEST_PKGS[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
