#!/usr/bin/env bash
# bench/threads.sh: GPT-2-small shape on 1 and 2 threads (or the counts given): prefill of 128
# tokens, decode tokens/s, and a STREAM triad on the same number of threads in the same run; the
# logits must be identical at every count. Usage: bench/threads.sh [BUILD] [THREADS...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
if [ $# -eq 0 ]; then set -- 1 2; fi
"$build/bench/bench_threads" "$@"
