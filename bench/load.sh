#!/usr/bin/env bash
# bench/load.sh [BUILD_DIR] [15M|110M]: a Hugging Face Llama folder of llama2.c's stories shape
# (random F32 weights, made once by make_hf_llama.py under BUILD_DIR/bench-load-SHAPE/) from
# `tfmc import` to the first decoded token, against one read of its weight file in the same run
# (bench_load.c; bench/README.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
shape=${2:-110M}
dir=$build/bench-load-$shape
[ -f "$dir/model.safetensors" ] || /usr/bin/python3 "$here/make_hf_llama.py" "$dir" "$shape"
"$build/bench/bench_load" -r 7 "$dir"
