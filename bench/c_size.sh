#!/usr/bin/env bash
# bench/c_size.sh: the size of generated C and what `cc -O2` takes to build it (seconds, peak
# memory), weights as hexadecimal floats (--byte-arrays=off) against byte strings (the default),
# in one run. The model: Llama-shaped with random weights, the stories15M shape by default (dim 288,
# 6 layers, vocab 32000: 24M parameters). Usage: bench/c_size.sh [BUILD] [DIM LAYERS VOCAB [WAYS]]
# (WAYS: "off default" by default; "default" alone skips the hex floats, which a GPT-2-small shape
# makes too large for most machines' memory)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
dim=${2:-288}
layers=${3:-6}
vocab=${4:-32000}
ways=${5:-off default}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/m.tfm" <<TFM
model m {
  vocab $vocab; max_len 256; dim $dim;
  init random(seed 1);
  embed token, position rope(base 10000);
  block x $layers {
    attention heads 6, causal, norm rmsnorm(eps 1e-5), bias false;
    mlp hidden $((dim * 8 / 3)), act swiglu, norm rmsnorm(eps 1e-5), bias false;
  }
  norm rmsnorm(eps 1e-5);
  unembed separate;
}
TFM
for way in $ways; do
    opt=""
    [ "$way" = off ] && opt="--byte-arrays=off"
    start=$(date +%s.%N)
    "$build/tfmc" "$tmp/m.tfm" -o "$tmp/$way.c" $opt
    gen=$(echo "$(date +%s.%N) - $start" | bc)
    /usr/bin/time -f "%e %M" -o "$tmp/$way.time" cc -O2 -c "$tmp/$way.c" -o "$tmp/$way.o" -I runtime
    read -r secs kb < "$tmp/$way.time"
    params=$(sed -n 's/.* \([0-9][0-9]*\) parameters\./\1/p' "$tmp/$way.c" | head -1)
    echo "$( [ "$way" = off ] && echo "hex floats  " || echo "byte strings") params=$params C=$(( $(stat -c %s "$tmp/$way.c") / 1048576 )) MB tfmc=${gen}s cc_O2=${secs}s cc_peak=$((kb / 1024)) MB"
done
