#!/bin/sh
# Builds (Release-like flags via the default RelWithDebInfo) and runs the
# stats hot-path micro-benchmark.  Usage: bench/stats_bench.sh [iterations] [threads]
set -e
cd "$(dirname "$0")/.."
cmake -S . -B build >/dev/null
cmake --build build -j2 --target stats_bench >/dev/null
exec build/bench/stats_bench "${1:-100000000}" "${2:-2}"
