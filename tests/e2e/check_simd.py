#!/usr/bin/env python3
"""check_simd.py TFMC EXAMPLES_DIR FIXTURES_DIR [-j N]: the SIMD backend against the portable one.

For a few RASP examples and model fixtures (PROGRAMS below), `TFMC FILE -o OUT.c --main` (the
portable backend, built with `gcc -std=c99 -O2 OUT.c $(TFMC config --cflags --libs)`) is the
reference, and `TFMC FILE -o OUT.c --main --backend=simd --target=T` must be one file that builds
with nothing but `CC -std=c99 -O2 -Wall -Wextra -Werror -pedantic OUT.c -lm`, exports no runtime
function, and gives the reference's outputs on the same inputs (check_cross.py's): the same text
for a RASP program, every model logit within 1e-5 x max|logit|. The builds:

  native-gcc, native-clang   --target=native, run here (clang: `skipped` when absent)
  avx512, avx2               run here when this CPU has the extensions; else the run must fail
                             with the message naming the first missing one. avx2 also runs under
                             `qemu-x86_64 -cpu Haswell` (AVX2 and FMA, no AVX-512), where the
                             avx512 build must fail the same way: exit status 1, "lacks avx512f"
                             on standard error, never "Illegal instruction"
  neon                       aarch64-linux-gnu-gcc -static, run under qemu-aarch64
  avx512-on-aarch64          the avx512 file built for aarch64: the portable fallback, same output
  baseline                   --target=baseline, run here

A model's SIMD file must also call the packed product (its weights packed at compile time). A
tool that is absent (clang, qemu-x86_64, the aarch64 cross compiler, qemu-aarch64) makes its
checks print `skipped: ...`, never `ok`. Prints a line per program and check and `N passed, M
failed, K skipped`; exits 1 on any failure. Standard library only.
"""

import argparse
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
import time

from check_cross import (Failure, compare_logits, has_weights, model_inputs, must, rasp_inputs, run, show,
                         toolchain_problem)

# a categorical and a numerical RASP output, sparse and dense products; the model kinds whose
# kernels differ (norms, positions, attention kinds, experts, shared and bidirectional blocks)
RASP = ["sort", "frac_prevs", "shuffle_dyck2"]
MODELS = ["gpt2", "llama", "moe", "alibi", "bidir"]
STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]
BUILD_SECONDS = 120
QEMU_X86 = "qemu-x86_64"
# Haswell without the features qemu's TCG cannot give (it warns of each on standard error)
HASWELL = "Haswell,-pcid,-x2apic,-tsc-deadline,-hle,-invpcid,-rtm"
CROSS_CC = "aarch64-linux-gnu-gcc"
QEMU_ARM = "qemu-aarch64"


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


FLAGS = cpu_flags()
# __builtin_cpu_supports' names against /proc/cpuinfo's
HAS = {
    "avx512": all(f in FLAGS for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl")),
    "avx2": all(f in FLAGS for f in ("avx2", "fma")),
}
FIRST_MISSING = {"avx512": next((f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl")
                                 if f not in FLAGS), None),
                 "avx2": next((f for f in ("avx2", "fma") if f not in FLAGS), None)}


class Program:
    def __init__(self, ctx, path, kind):
        self.ctx, self.path, self.kind = ctx, path, kind
        self.name = os.path.basename(path)[:-len(".tfm")]
        self.dir = os.path.join(ctx.tmp, kind + "-" + self.name)
        os.makedirs(self.dir)
        self.lines = rasp_inputs(self.name, path) if kind == "rasp" else model_inputs(self.name, path)
        self.stdin = "".join(line + "\n" for line in self.lines)
        self.args = [] if kind == "rasp" else ["--logits", "--threads", "1"]
        self.results = []

    def report(self, status, check, message):
        self.results.append((status, "%s %s: %s" % (self.kind, self.name, check), message))

    def generate(self, target):
        c = os.path.join(self.dir, "%s_%s.c" % (self.name, target or "portable"))
        cmd = [self.ctx.tfmc, self.path, "-o", c, "--main"] + (["--backend=simd", "--target=" + target] if target else [])
        must(cmd, seconds=BUILD_SECONDS)
        return c

    def build(self, cc, source, exe, extra=()):
        must([cc] + STRICT + list(extra) + [source, "-o", exe, "-lm"], seconds=BUILD_SECONDS)
        if not cc.startswith("aarch64") and shutil.which("nm"):
            syms = run(["nm", "-g", "--defined-only", exe]).stdout.split()
            leaked = [s for s in syms if s.startswith("tfmcrt_")]
            if leaked:
                raise Failure("%s exports runtime functions: %s" % (exe, ", ".join(leaked[:4])))
        return exe

    def same(self, runner, want):
        got = must(runner + self.args, self.stdin)
        if self.kind == "rasp":
            if got != want:
                raise Failure("output differs from the portable backend's:\n      %r\n      %r" % (got[:300], want[:300]))
            return "%d inputs, the same text" % len(self.lines)
        worst = compare_logits(self.lines, want, got)
        return "%d inputs, max|diff| %.2g x max|logit|" % (len(self.lines), worst)

    def refuses(self, runner, missing):
        p = run(runner + self.args, self.stdin)
        if p.returncode != 1 or ("lacks %s" % missing) not in p.stderr or p.stdout.strip():
            raise Failure("`%s`: exit %d, stderr %r, stdout %r: wanted exit 1 naming %s" % (
                show(runner), p.returncode, p.stderr.strip()[-300:], p.stdout[:100], missing))
        return "exit 1: %s" % p.stderr.strip().splitlines()[-1][:90]

    def check(self, label, fn):
        try:
            self.report("ok", label, fn())
        except Failure as e:
            self.report("FAIL", label, str(e))

    def check_all(self):
        try:
            ref_c = self.generate(None)
            must(["gcc", "-std=c99", "-O2", ref_c] + self.ctx.config_flags + ["-o", os.path.join(self.dir, "ref")],
                 seconds=BUILD_SECONDS)
            want = must([os.path.join(self.dir, "ref")] + self.args, self.stdin)
            files = {t: self.generate(t) for t in ("native", "avx512", "avx2", "neon", "baseline")}
        except Failure as e:
            self.report("FAIL", "generate", str(e))
            return self.results
        exe = lambda tag: os.path.join(self.dir, tag)  # noqa: E731
        if self.kind == "model":
            def packed():
                text = open(files["avx512"], encoding="ascii").read()
                n = text.count("tfmcrt_linear_packed_ex(ex,")
                if n == 0:
                    raise Failure("no packed product in %s" % files["avx512"])
                return "%d packed products" % n
            self.check("weights packed", packed)
        self.check("native gcc", lambda: self.same([self.build("gcc", files["native"], exe("native-gcc"))], want))
        if shutil.which("clang"):
            self.check("native clang", lambda: self.same([self.build("clang", files["native"], exe("native-clang"))], want))
        else:
            self.report("skipped", "native clang", "clang not found")
        for t in ("avx512", "avx2"):
            def here(t=t):
                b = self.build("gcc", files[t], exe(t))
                return self.same([b], want) if HAS[t] else self.refuses([b], FIRST_MISSING[t])
            self.check(t + (" here" if HAS[t] else " refused here"), here)
        if self.ctx.qemu_x86:
            self.check("avx2 under qemu Haswell", lambda: self.same([QEMU_X86, "-cpu", HASWELL, exe("avx2")], want))
            self.check("avx512 refused under qemu Haswell",
                       lambda: self.refuses([QEMU_X86, "-cpu", HASWELL, exe("avx512")], "avx512f"))
        else:
            self.report("skipped", "qemu Haswell", self.ctx.qemu_x86_why)
        self.check("baseline", lambda: self.same([self.build("gcc", files["baseline"], exe("baseline"))], want))
        if self.ctx.arm_problem:
            self.report("skipped", "neon", self.ctx.arm_problem)
        else:
            self.check("neon under qemu-aarch64", lambda: self.same(
                [QEMU_ARM, self.build(CROSS_CC, files["neon"], exe("neon"), ["-static"])], want))
            self.check("avx512 file on aarch64 (portable fallback)", lambda: self.same(
                [QEMU_ARM, self.build(CROSS_CC, files["avx512"], exe("avx512-arm"), ["-static"])], want))
        return self.results


class Context:
    pass


def main(argv):
    parser = argparse.ArgumentParser(prog="check_simd.py", description=__doc__.split("\n")[0])
    parser.add_argument("tfmc")
    parser.add_argument("examples_dir")
    parser.add_argument("fixtures_dir")
    parser.add_argument("-j", "--jobs", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="the first RASP program and two models only (the sanitizer build: the same "
                             "generated files, tfmc itself under the sanitizers)")
    args = parser.parse_args(argv[1:])
    t0 = time.monotonic()
    import limits
    ctx = Context()
    ctx.tfmc = os.path.abspath(args.tfmc)
    limits.configure(ctx.tfmc)
    counts = {"ok": 0, "FAIL": 0, "skipped": 0}
    with tempfile.TemporaryDirectory(prefix="check_simd.") as tmp:
        ctx.tmp = tmp
        ctx.arm_problem = toolchain_problem(tmp)
        ctx.qemu_x86 = shutil.which(QEMU_X86) is not None
        ctx.qemu_x86_why = "%s not found (Debian: apt-get install qemu-user)" % QEMU_X86
        p = subprocess.run([ctx.tfmc, "config", "--cflags", "--libs"], capture_output=True, text=True)
        ctx.config_flags = p.stdout.split()
        programs = []
        for name in RASP[:1] if args.quick else RASP:
            programs.append(Program(ctx, os.path.join(os.path.abspath(args.examples_dir), name + ".tfm"), "rasp"))
        for name in MODELS[:2] if args.quick else MODELS:
            path = os.path.join(os.path.abspath(args.fixtures_dir), name + ".tfm")
            if not has_weights(path):
                print("FAIL fixture %s has no weights file" % name)
                counts["FAIL"] += 1
                continue
            programs.append(Program(ctx, path, "model"))
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs or os.cpu_count() or 2) as pool:
            for results in pool.map(lambda prog: prog.check_all(), programs):
                for status, label, message in results:
                    counts[status] += 1
                    print("%-7s %s: %s" % (status, label, message), flush=True)
    print("CPU here: avx512 %s, avx2 %s; %.1f s" % (HAS["avx512"], HAS["avx2"], time.monotonic() - t0))
    print("%d passed, %d failed, %d skipped" % (counts["ok"], counts["FAIL"], counts["skipped"]))
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    sys.exit(main(sys.argv))
