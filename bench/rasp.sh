#!/usr/bin/env bash
# bench/rasp.sh: the RASP compiler's numbers for every example: compile-to-C time, model size,
# and the time per forward pass at max_len of the generated C (cc -O2) against the in-process
# graph interpreter measured in the same run. Usage: bench/rasp.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
tfmc=$build/tfmc
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$build/bench/bench_rasp" examples/*.tfm > "$tmp/table.txt"
printf '%s %12s %8s\n' "$(head -1 "$tmp/table.txt")" "C us/fwd" "speedup"
tail -n +2 "$tmp/table.txt" | while read -r name rest; do
    file=examples/$name.tfm
    "$tfmc" "$file" -o "$tmp/$name.c"
    up=$(echo "$name" | tr a-z A-Z)
    cc -std=c99 -O2 -D_POSIX_C_SOURCE=199309L -DGEN="\"$tmp/$name.c\"" -DP="$name" -DUP="$up" \
        -I"$tmp" bench/forward_driver.c $("$tfmc" config --cflags --libs) -o "$tmp/$name.bin"
    c_us=$("$tmp/$name.bin")
    run_us=$(echo "$rest" | awk '{print $NF}')
    printf '%-16s %s %12s %7.1fx\n' "$name" "$rest" "$c_us" "$(echo "$run_us / $c_us" | bc -l)"
done
