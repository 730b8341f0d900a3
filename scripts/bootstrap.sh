#!/usr/bin/env bash
# Set up a fresh Debian 12 machine for tfmc: install the build dependencies that are missing
# (apt-get), configure the build in build/ and compile. Safe to run again: it only does what is left.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(gcc clang flex bison meson ninja-build pkg-config libcunit1-dev python3 valgrind liblapacke-dev libopenblas-dev python3-numpy
          # the aarch64 cross build and its emulator (tests/e2e/check_cross.py)
          gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
          # the LLVM JIT backend (optional: auto-detected), libffi entry points, the Python package's tests
          llvm-19-dev libffi-dev python3-pytest)
missing=()
for p in "${packages[@]}"; do
    # the status as a whole string (no pipe: under pipefail a pipe's early exit could count as missing)
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing ${missing[*]}" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
