#!/usr/bin/env bash
# bench/models.sh: GPT-2-small shape, one thread: tfmc's portable kernels (the ones generated C
# calls) against PyTorch and the memory-bandwidth bound, all in one run. Usage: bench/models.sh [BUILD]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
ours=$("$build/bench/bench_models")
echo "$ours"
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    # OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set on these machines and slow a current OpenBLAS
    theirs=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 /usr/bin/python3 bench/torch_gpt2.py)
    echo "$theirs"
    get() { echo "$ours $theirs" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
    echo "decode_vs_torch=$(echo "$(get decode_tok_s) / $(get torch_decode_tok_s)" | bc -l | cut -c1-5)x"
    echo "prefill_vs_torch=$(echo "$(get torch_prefill128_ms) / $(get prefill128_ms)" | bc -l | cut -c1-5)x"
else
    echo "torch: not installed (apt-get install python3-torch) - no PyTorch ratio"
fi
