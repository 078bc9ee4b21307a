#!/usr/bin/env bash
# README command 1: install dependencies, build, and start pilotfish on its
# embedded demo config: listener :10000 splitting 90/10 between the built-in
# "stable" and "canary" upstreams, admin on :9901.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
echo "pilotfish: try  curl -s localhost:10000/   and   curl -s localhost:9901/ready"
exec build/pilotfish "$@"
