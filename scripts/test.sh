#!/usr/bin/env bash
# README command 2 (and CI): install dependencies, build, run every test;
# then rebuild with AddressSanitizer + UndefinedBehaviorSanitizer and run
# them again; then run each libFuzzer target for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
JOBS=$(nproc)
FUZZ_SECONDS=${FUZZ_SECONDS:-60}

# gRPC / HTTP/2 interop programs (Go echo server + Go/Java/Python clients) into
# build-interop/bin: tests/integration/test_upstream_h2.py and test_grpc.py use
# them as upstreams and clients.  Installs its own Debian packages; idempotent
# (~2 s when nothing changed).
echo "== interop clients/servers (tests/interop/build.sh)"
tests/interop/build.sh

echo "== build + tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$JOBS"
ctest --test-dir build --output-on-failure -j"$JOBS"

echo "== sanitizers (ASan + UBSan) build + tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPF_SANITIZE=ON
cmake --build build-asan -j"$JOBS"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$JOBS"

echo "== fuzzers (${FUZZ_SECONDS}s each)"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DPF_FUZZ=ON
cmake --build build-fuzz -j"$JOBS"
for f in build-fuzz/tests/fuzz_*; do
  name=$(basename "$f")
  corpus="tests/fuzz/corpus/${name#fuzz_}"
  work=$(mktemp -d)
  [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
  echo "-- $name"
  log="$work.log"
  if ! (cd "$work" && "$OLDPWD/$f" -max_total_time="$FUZZ_SECONDS" -timeout=10 \
          -rss_limit_mb=2048 . > "$log" 2>&1); then
    tail -n 80 "$log"          # the report: what crashed, where, and the input
    exit 1
  fi
  tail -n 2 "$log"
  rm -rf "$work" "$log"
done

# ---- packaging (issue 7): docker/, packaging/, tests/packaging/ ----
# Config/manifest checks, the .deb in a clean debootstrap chroot, the container
# image under podman, both compose examples under podman-compose (TLS canary
# demo, multi-cloud gateway), the arm64 cross build (installs debootstrap,
# podman, podman-compose, runc, the aarch64 toolchain and :arm64 -dev packages
# when missing).  ~4-8 min.
echo "== packaging (.deb in a chroot, container image, compose)"
tests/packaging/run.sh build/pilotfish

echo "== all tests passed"
