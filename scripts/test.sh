#!/usr/bin/env bash
# Run the whole test suite: the normal build, then a build with AddressSanitizer and
# UndefinedBehaviorSanitizer (build-san/). Exits non-zero when any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."

meson test -C build --print-errorlogs

[ -f build-san/build.ninja ] || meson setup build-san -Db_sanitize=address,undefined --buildtype=debug >/dev/null
ninja -C build-san >/dev/null
meson test -C build-san --setup=san --print-errorlogs
