#!/usr/bin/env bash
# bench/simd.sh: the SIMD backend's file (--backend=simd --target=native, built with nothing but
# `cc -O2 FILE.c -lm`) against the portable backend's (the same kernel calls, linked with
# libtfmcrt), one thread, same model, same run; with the memory bandwidth (STREAM triad) and the
# decode bound it gives (weight bytes per token / bandwidth). The model: Llama-shaped, random
# weights, dim 288, 6 layers (the stories15M shape) with a 4096-token vocabulary (so that the C
# builds in seconds), 128 prompt tokens then decode to max_len 256.
# Usage: bench/simd.sh [BUILD] [CC]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
cc=${2:-gcc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/m.tfm" <<'TFM'
model m {
  vocab 4096;
  max_len 256;
  dim 288;
  init random(seed 1);
  embed token, position rope(base 10000);
  block x 6 {
    attention heads 6, causal, norm rmsnorm(eps 1e-5), bias false;
    mlp hidden 768, act swiglu, norm rmsnorm(eps 1e-5), bias false;
  }
  norm rmsnorm(eps 1e-5);
  unembed separate;
}
TFM
tfmc=$build/tfmc
"$tfmc" "$tmp/m.tfm" -o "$tmp/portable.c"
"$tfmc" "$tmp/m.tfm" -o "$tmp/simd.c" --backend=simd --target=native
target=$(sed -n 's/^ \* compiled for \([a-z0-9]*\).*/\1/p; s/^\/\* -* compiled for \([a-z0-9]*\)$/\1/p' "$tmp/simd.c" | head -1)
flags="-DP=m -DUP=M"
start=$SECONDS
$cc -O2 $flags -DGEN="\"$tmp/portable.c\"" bench/model_driver.c -o "$tmp/portable" $("$tfmc" config --cflags --libs)
t_port=$((SECONDS - start)); start=$SECONDS
$cc -O2 $flags -DGEN="\"$tmp/simd.c\"" bench/model_driver.c -o "$tmp/simd" -lm
t_simd=$((SECONDS - start))
params=$(sed -n 's/.* \([0-9][0-9]*\) parameters\./\1/p' "$tmp/portable.c" | head -1)
triad=$("$build/bench/bench_matvec" 3 | sed -n 's/^triad \([0-9.]*\) GB\/s.*/\1/p')
port=$("$tmp/portable")
simd=$("$tmp/simd")
get() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
echo "model: dim 288, 6 layers, vocab 4096, ${params:-?} parameters; target $target; $cc -O2"
echo "build: portable ${t_port} s, simd ${t_simd} s (C: $(stat -c %s "$tmp/portable.c") and $(stat -c %s "$tmp/simd.c") bytes)"
echo "portable: $port"
echo "simd:     $simd"
echo "triad=${triad} GB/s"
if [ -n "$params" ] && [ -n "$triad" ]; then
    bound=$(echo "$triad * 1000000000 / ($params * 4)" | bc -l)
    echo "decode_bound_tok_s=$(printf %.0f "$bound") (every weight read once per token)"
    echo "decode: portable $(echo "$(get "$port" decode_tok_s) / $bound" | bc -l | cut -c1-5), simd $(echo "$(get "$simd" decode_tok_s) / $bound" | bc -l | cut -c1-5) of the bound"
fi
echo "simd_vs_portable: prefill $(echo "$(get "$simd" prefill_tok_s) / $(get "$port" prefill_tok_s)" | bc -l | cut -c1-5)x, decode $(echo "$(get "$simd" decode_tok_s) / $(get "$port" decode_tok_s)" | bc -l | cut -c1-5)x"
