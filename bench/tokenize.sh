#!/usr/bin/env bash
# bench/tokenize.sh: tokenizer encode throughput, tfmc (one thread) against the JavaScript
# references on the same texts, with the ratio and whether issue 14's targets hold
# (bench/tokenize.py says how). Usage: bench/tokenize.sh [BUILD]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 bench/tokenize.py "$@"
