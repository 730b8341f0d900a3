#!/usr/bin/env bash
# bench/lowrank.sh [BUILD] [RANK]: low-rank factorisation on a model whose matrices are rank RANK
# (default 16) plus noise: FLOPs (from --report) and prefill time, dense against --low-rank=error:1e-3.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
rank=${2:-16}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 bench/lowrank_model.py "$tmp" "$rank"
"$build/bench/bench_lowrank" "$tmp/lowrank.tfm" | grep -v "^  [a-z_.0-9]* *[0-9]" || true
