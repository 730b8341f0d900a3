#!/usr/bin/env bash
# Run the whole test suite: the normal build (build/), then the README's by-hand sanitizer build
# exactly as written there (build-san/: `meson setup build-san -Db_sanitize=address,undefined &&
# ninja -C build-san && meson test -C build-san`, the default buildtype; the `san` test setup,
# which makes any sanitizer report fail its test, is the default in that build and the san_setup
# test proves it). Exits non-zero when any test fails. CI runs it (.ci/run).
#
# How long it takes on a 2-core machine (measured on our shared 2-core build machine, 2026-12-02):
#   another build beside it (load average ~4): tests 1.6 min in build/, 5.8 min in build-san/;
#     building: build/ 10 s idle, build-san/ 63 s beside another build;
#   several builds beside it (load average 8-12): 23 min in all (6 in build/, 17 in build-san/),
#     every test within its time limits (the slowest, compiled in build-san/, 464 s of 1200);
#   nearly idle (a fresh clone, `bash .ci/run`, 2026-12-02): build/ 95 s with its build, build-san/
#     409 s with its build, 8.6 min in all with the bootstrap (10.8 CPU-minutes user, 3.7 sys).
#   a fresh clone beside another full suite run (load average about 4), 2026-12-02, with the simd,
#     llvm, jit_sweep, byte_arrays and python tests: build/ 472 s, build-san/ 688 s, 19.7 min in all
#     with the bootstrap (which now installs llvm-19-dev); the simd test has since been cut to 48 s idle.
# No test depends on wall-clock luck (docs/design.md section 10): each meson timeout is at least
# four times the test's time beside another build (tests/meson.build; three times larger in
# build-san/); every per-command limit inside the tests scales the same way (TFMC_TEST_TIME_FACTOR
# multiplies them all, e.g. 4 on a very slow machine) and counts only when a rerun with ten times
# as much confirms it; the fuzzers limit memory (1024 MB resident), not time. Likewise here: a
# test that meson stops at its timeout is run again with four times the timeout, and fails only
# if it times out again.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS

# the tests of DIR's last meson test that timed out (timeout) or failed otherwise (other)
failed_tests() {
    python3 -c '
import json, sys
bad = [t for t in map(json.loads, open(sys.argv[1])) if t["result"] not in ("OK", "SKIP", "EXPECTEDFAIL")]
print(" ".join(t["name"] for t in bad if (t["result"] == "TIMEOUT") == (sys.argv[2] == "timeout")))' \
        "$1/meson-logs/testlog.json" "$2"
}

# meson test in DIR; tests that time out are run again with -t 4 and fail only if they time out again
suite() {
    local dir=$1 rc=0
    meson test -C "$dir" --print-errorlogs || rc=$?
    [ "$rc" -eq 0 ] && return 0
    local timed_out others
    timed_out=$(failed_tests "$dir" timeout)
    others=$(failed_tests "$dir" other)
    if [ -n "$others" ] || [ -z "$timed_out" ]; then
        echo "test.sh: failed in $dir/: ${others:-see above}${timed_out:+ (timed out: $timed_out)}" >&2
        return 1
    fi
    echo "test.sh: timed out in $dir/: $timed_out; running again with four times the timeout" >&2
    # shellcheck disable=SC2086
    meson test -C "$dir" --print-errorlogs --no-rebuild -t 4 $timed_out
}

[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
suite build
normal=$((SECONDS - start))

[ -f build-san/build.ninja ] || meson setup build-san -Db_sanitize=address,undefined >/dev/null
ninja -C build-san >/dev/null
suite build-san
echo "test.sh: all tests passed: normal build $normal s, sanitizer build $((SECONDS - start - normal)) s (building included), $((SECONDS - start)) s in all"
