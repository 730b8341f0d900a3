#!/usr/bin/env bash
# bench/threads.sh: GPT-2-small shape on 1 and 2 threads (or the counts given): prefill of 128
# tokens, decode tokens/s, and a STREAM triad on the same number of threads in the same run; the
# logits must be identical at every count; and PyTorch (bench/torch_gpt2.py) on the same shape at
# each count, with tfmc's ratio to it. Usage: bench/threads.sh [BUILD] [THREADS...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
if [ $# -eq 0 ]; then set -- 1 2; fi
ours=$("$build/bench/bench_threads" "$@")
echo "$ours"
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    echo "torch: not installed (apt-get install python3-torch) - no PyTorch ratio"
    exit 0
fi
get() { echo "$1" | sed -n "s/^$2=//p"; }
for t in "$@"; do
    # OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set on these machines and slow a current OpenBLAS
    theirs=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS="$t" /usr/bin/python3 bench/torch_gpt2.py "$t")
    echo "t${t}_torch_prefill128_ms=$(get "$theirs" torch_prefill128_ms)"
    echo "t${t}_torch_decode_tok_s=$(get "$theirs" torch_decode_tok_s)"
    echo "t${t}_prefill_vs_torch=$(echo "$(get "$theirs" torch_prefill128_ms) / $(get "$ours" "t${t}_prefill128_ms")" | bc -l | cut -c1-5)x"
    echo "t${t}_decode_vs_torch=$(echo "$(get "$ours" "t${t}_decode_tok_s") / $(get "$theirs" torch_decode_tok_s)" | bc -l | cut -c1-5)x"
done
