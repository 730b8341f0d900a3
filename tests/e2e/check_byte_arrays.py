#!/usr/bin/env python3
"""check_byte_arrays.py TFMC EXAMPLES_DIR FIXTURES_DIR: weights as byte strings (--byte-arrays).

For model fixtures and RASP examples, each file is generated three ways: every weight array a
byte string (`--byte-arrays=1`), none (`--byte-arrays=off`: hexadecimal floats), and byte strings
with `--weights=separate`; the SIMD backend's file too (byte strings by default). Each builds with
gcc and clang (`-std=c99 -Wall -Wextra -Werror -pedantic -O1`; clang `skipped` when absent) and
runs on the same inputs: with each compiler, the outputs must be identical to the hexadecimal
floats' build, character for character (the same float bits, so the same logits; the SIMD file
must build and answer every line), and a model's byte-string file must be the smaller. Prints a line per
check and `N passed, M failed`. Standard library only."""
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1"]
MODELS = ["gpt2", "llama", "moe", "shared"]
RASP = [("sort", "3 1 4 2\n5 4 3 2 1\n"), ("frac_prevs", "x y x\nz x y x\n")]


def run(cmd, stdin=""):
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=600)


def main(argv):
    tfmc, examples, fixtures = (os.path.abspath(a) for a in argv[1:4])
    lib_flags = shlex.split(run([tfmc, "config", "--cflags", "--libs"]).stdout)
    compilers = [c for c in ("gcc", "clang") if shutil.which(c)]
    passed = failed = 0

    def check(ok, what, detail=""):
        nonlocal passed, failed
        print("%s %s%s" % ("ok  " if ok else "FAIL", what, "" if ok or not detail else "\n     " + detail[-1500:]))
        passed += ok
        failed += not ok

    if "clang" not in compilers:
        print("skipped clang: not installed")
    cases = [(os.path.join(fixtures, m + ".tfm"), "1 2 3\n4 5 6 7 8\n", ["--logits"]) for m in MODELS]
    cases += [(os.path.join(examples, n + ".tfm"), inputs, []) for n, inputs in RASP]
    with tempfile.TemporaryDirectory(prefix="check_byte_arrays.") as tmp:
        for path, stdin, args in cases:
            name = os.path.basename(path)[:-4]
            ways = {"bytes": ["--byte-arrays=1"], "hex": ["--byte-arrays=off"],
                    "separate": ["--byte-arrays=1", "--weights=separate"], "simd": ["--backend=simd"]}
            outputs, sizes = {}, {}
            for way, opts in ways.items():
                d = os.path.join(tmp, name + "-" + way)
                os.makedirs(d)
                c = os.path.join(d, name + ".c")
                g = run([tfmc, path, "-o", c, "--main"] + opts)
                if g.returncode != 0:
                    check(False, "%s %s: generates" % (name, way), g.stderr)
                    continue
                sizes[way] = os.path.getsize(c)
                sources = [c] + ([os.path.join(d, name + "_weights.c")] if way == "separate" else [])
                link = ["-lm"] if way == "simd" else lib_flags
                for cc in compilers:
                    exe = os.path.join(d, name + "-" + cc)
                    b = run([cc] + FLAGS + sources + ["-o", exe] + link)
                    if b.returncode != 0:
                        check(False, "%s %s: builds with %s" % (name, way, cc), b.stderr)
                        continue
                    r = run([exe] + args, stdin)
                    outputs[(way, cc)] = r.stdout if r.returncode == 0 and r.stdout.strip() else None
            for (way, cc), out in sorted(outputs.items()):
                ref = outputs.get(("hex", cc))
                if way == "hex":
                    continue
                if way != "simd":
                    check(ref is not None and out == ref,
                          "%s %s (%s): output identical to hexadecimal floats" % (name, way, cc),
                          "got %r\nwant %r" % ((out or "")[:300], (ref or "")[:300]))
                else:
                    # the SIMD file's kernels are compiled for this CPU (other fused multiply-adds):
                    # its numbers are check_simd.py's; here it must build and answer every line
                    check(out is not None and len(out.splitlines()) == len(stdin.splitlines()),
                          "%s simd (%s): byte strings build and run" % (name, cc), (out or "")[:300])
            if "bytes" in sizes and "hex" in sizes and args:  # a model's floats; RASP weights are small integers
                check(sizes["bytes"] < sizes["hex"], "%s: the byte strings are smaller (%d vs %d bytes of C)" % (
                    name, sizes["bytes"], sizes["hex"]))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
