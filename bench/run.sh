#!/usr/bin/env bash
# bench/run.sh: the frontend benchmark (bench_frontend.c) on every example: parse+check time and
# the time to interpret 1000 random inputs, per example.
# Usage: bench/run.sh [BUILD_DIR | BENCH_FRONTEND_EXE] [EXAMPLES_DIR]   (defaults: build, examples)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${1:-$root/build}
examples=${2:-$root/examples}
if [ -d "$target" ]; then exe=$target/bench/bench_frontend; else exe=$target; fi
if [ ! -x "$exe" ]; then
    echo "bench/run.sh: no $exe; build it first (ninja -C build bench/bench_frontend)" >&2
    exit 2
fi
exec "$exe" "$examples"/*.tfm
