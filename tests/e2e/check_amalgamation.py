#!/usr/bin/env python3
"""The runtime's amalgamation builds on its own and computes what the library computes.

Usage: check_amalgamation.py DUMP REF MAIN_C

DUMP writes the amalgamation (the tfmcrt_amalgamation array of build/runtime/) to standard
output; REF is MAIN_C (tests/e2e/amalgamation_main.c) linked against libtfmcrt. For each compiler
(gcc, clang: a `skipped` line when absent) and each of -march=x86-64, x86-64-v3 and native
(x86-64 hosts), the amalgamation followed by MAIN_C is one file built with
`CC -std=c99 -O2 -Wall -Wextra -Werror -pedantic -march=M FILE.c -lm` (no -pthread, no library),
which must export nothing but main, and run: its own checks must pass (packed == unpacked and a
caller's parallel_for == none, bit for bit; the CPU check finds nothing missing) and its numbers
must equal REF's within 1e-5 relative (builds differ in fused multiply-adds). Then the same with
aarch64-linux-gnu-gcc -static under qemu-aarch64, when both exist (else `skipped`).
Prints one line per build and `N passed, M failed`; exit status 1 when any failed.
"""
import os
import platform
import shutil
import subprocess
import sys
import tempfile

FLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def numbers_match(got, ref):
    """The outputs line by line: words equal, or numbers within 1e-5 relative (1e-5 absolute below 1)."""
    g, r = got.strip().split("\n"), ref.strip().split("\n")
    if len(g) != len(r):
        return "%d lines, the library printed %d" % (len(g), len(r))
    for gl, rl in zip(g, r):
        gw, rw = gl.split(), rl.split()
        if len(gw) != len(rw):
            return "line `%s...`: %d words, the library printed %d" % (rl[:30], len(gw), len(rw))
        for a, b in zip(gw, rw):
            if a == b:
                continue
            try:
                x, y = float(a), float(b)
            except ValueError:
                return "`%s` where the library printed `%s`" % (a, b)
            if abs(x - y) > 1e-5 * max(1.0, abs(y)):
                return "%s where the library printed %s (line `%s...`)" % (a, b, rl[:20])
    return None


def build_and_run(cc, flags, source, exe, runner, ref):
    """None when the build is clean, exports only main and runs as the library does; else why not."""
    obj = exe + ".o"
    r = subprocess.run([cc] + FLAGS + flags + ["-c", source, "-o", obj], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        return "does not compile:\n" + r.stderr[-3000:]
    nm = shutil.which("nm")
    if nm and not cc.startswith("aarch64"):
        syms = subprocess.run([nm, "-g", "--defined-only", obj], capture_output=True, text=True).stdout.split()
        exported = [s for s in syms[2::3] if s != "main"]
        if exported:
            return "exports %s (every runtime function must be static)" % ", ".join(exported[:5])
    r = subprocess.run([cc] + flags + [obj, "-o", exe, "-lm"], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        return "does not link:\n" + r.stderr[-3000:]
    r = subprocess.run(runner + [exe], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        return "exit status %d:\n%s%s" % (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    if not r.stdout.startswith("cpu ok\n"):
        return "the CPU check reports a missing extension: " + r.stdout.split("\n")[0]
    return numbers_match(r.stdout, ref)


def main(argv):
    if len(argv) != 4:
        sys.stderr.write(__doc__)
        return 2
    dump, ref_exe, main_c = argv[1:]
    text = subprocess.run([dump], capture_output=True, check=True).stdout.decode("ascii")
    ref = subprocess.run([ref_exe], capture_output=True, text=True, check=True).stdout
    with open(main_c, encoding="ascii") as f:
        program = f.read()
    passed = failed = 0

    def report(label, why):
        nonlocal passed, failed
        if why is None:
            passed += 1
            print("ok   %s" % label, flush=True)
        else:
            failed += 1
            print("FAIL %s: %s" % (label, why), flush=True)

    for needle in ("#define TFMCRT_API static", "#define TFMCRT_NO_POOL"):
        report("amalgamation has `%s`" % needle, None if needle in text else "missing")
    for forbidden in ("pthread_", "<pthread.h>", "_Thread_local", '#include "tfmcrt'):
        report("amalgamation has no `%s`" % forbidden, "present" if forbidden in text else None)
    with tempfile.TemporaryDirectory(prefix="tfmc_amalgamation_") as tmp:
        source = os.path.join(tmp, "model.c")
        with open(source, "w", encoding="ascii") as f:
            f.write(text + "\n" + program)
        x86 = platform.machine() in ("x86_64", "AMD64")
        marches = ["x86-64", "x86-64-v3", "native"] if x86 else ["native"]
        for cc in ("gcc", "clang"):
            if not shutil.which(cc):
                print("skipped %s: not found" % cc)
                continue
            for march in marches:
                exe = os.path.join(tmp, "%s_%s" % (cc, march))
                report("%s -march=%s" % (cc, march), build_and_run(cc, ["-march=" + march], source, exe, [], ref))
        cross, qemu = shutil.which("aarch64-linux-gnu-gcc"), shutil.which("qemu-aarch64")
        if cross and qemu:
            exe = os.path.join(tmp, "aarch64")
            report("aarch64-linux-gnu-gcc -static, qemu-aarch64",
                   build_and_run(cross, ["-static"], source, exe, [qemu], ref))
        else:
            print("skipped aarch64: %s not found" % ("aarch64-linux-gnu-gcc" if not cross else "qemu-aarch64"))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
