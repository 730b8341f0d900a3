#!/usr/bin/env bash
# bench/passes.sh: every RASP example at -O0 and -O2: parameters (stored weights), FLOPs per token
# and arena bytes from --report, and the generated C's time per forward pass at max_len (cc -O2),
# with the ratios. Usage: bench/passes.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
tfmc=$build/tfmc
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%-16s %9s %9s %6s %9s %9s %6s %9s %9s %6s\n' program "params-O0" "-O2" ratio "FLOPs-O0" "-O2" ratio \
    "us-O0" "us-O2" speed
for file in examples/*.tfm; do
    name=$(basename "$file" .tfm)
    up=$(echo "$name" | tr a-z A-Z)
    for level in 0 2; do
        "$tfmc" "$file" -O$level --report -o "$tmp/$name$level.c" 2> "$tmp/report$level.txt"
        cc -std=c99 -O2 -D_POSIX_C_SOURCE=199309L -DGEN="\"$tmp/$name$level.c\"" -DP="$name" -DUP="$up" \
            bench/forward_driver.c $("$tfmc" config --cflags --libs) -o "$tmp/$name$level.bin"
        us[$level]=$("$tmp/$name$level.bin")
        # the last row of the report, after every pass: stored parameters and FLOPs per token
        read -r _ params[$level] _ flops[$level] _ < <(tail -1 "$tmp/report$level.txt")
    done
    printf '%-16s %9d %9d %5.1fx %9.0f %9.0f %5.1fx %9s %9s %5.1fx\n' "$name" "${params[0]}" "${params[2]}" \
        "$(echo "${params[0]} / ${params[2]}" | bc -l)" "${flops[0]}" "${flops[2]}" \
        "$(echo "${flops[0]} / ${flops[2]}" | bc -l)" "${us[0]}" "${us[2]}" "$(echo "${us[0]} / ${us[2]}" | bc -l)"
done
