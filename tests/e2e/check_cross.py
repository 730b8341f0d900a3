#!/usr/bin/env python3
"""check_cross.py TFMC EXAMPLES_DIR FIXTURES_DIR RUNTIME_DIR [-j N]: the generated C on aarch64.

For every RASP example (EXAMPLES_DIR/*.tfm) and every model fixture with weights
(FIXTURES_DIR/*.tfm, the PyTorch fixtures of check_models.py), `TFMC FILE -o OUT.c --main` (the
portable backend) is built twice:

  native   gcc -std=c99 -O2 OUT.c $(TFMC config --cflags --libs)
  aarch64  aarch64-linux-gnu-gcc -std=c99 -O2 -static OUT.c RUNTIME_DIR/*.c -IRUNTIME_DIR -lm
           -pthread (the runtime's sources compiled once, to objects that every program links)

and both run on the same few inputs (standard input, one sequence a line), the aarch64 one under
qemu-aarch64:

  RASP     a seeded handful of check_examples.py's inputs (inputs.py) and a longest one: the two
           outputs must be the same text, exit status 0 and nothing on standard error;
  models   `--logits --threads 1` on the fixture's prompt, two of its prefixes and two seeded
           random sequences: every line's logits within 1e-5 x max|logit| of the native line's;
           and the aarch64 build at `--threads 3 --task-grain 1` must print exactly what it prints
           on one thread (the runtime's promise that threads change no result, checked on the
           other architecture's atomics and kernels).

When aarch64-linux-gnu-gcc or qemu-aarch64 is not installed (or cannot build and run a static
hello program: no libc6-dev-arm64-cross), prints `skipped: ...` and exits 77, meson's skip code.
Otherwise prints a line per program and check (`ok` or `FAIL`) and `N passed, M failed`; exits 1
on any failure. Standard library only.
"""

import argparse
import concurrent.futures
import glob
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

from inputs import format_input, make_inputs, read_header
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import limits  # noqa: E402  (tests/limits.py: scaled timeouts, confirmed by a rerun)

SKIP = 77  # meson's exit code for a skipped test
CROSS_CC = "aarch64-linux-gnu-gcc"
QEMU = "qemu-aarch64"
NATIVE_CC = "gcc"
CFLAGS = ["-std=c99", "-O2"]
RASP_INPUTS = 6          # seeded picks from inputs.py, plus one of the longest
RELATIVE_TOLERANCE = 1e-5
# Budgets (tests/limits.py scales them and confirms a timeout by a rerun).
BUILD_SECONDS = 120
RUN_SECONDS = 60

HELLO = '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n'


class Failure(Exception):
    """A check failed; the message says why."""


def show(cmd):
    return " ".join(shlex.quote(str(c)) for c in cmd)


def run(cmd, stdin_text="", seconds=RUN_SECONDS):
    try:
        return limits.sprun(cmd, input=stdin_text, capture_output=True, text=True, timeout=seconds)
    except subprocess.TimeoutExpired:
        raise Failure("`%s` timed out after %g s (twice)" % (show(cmd), limits.scaled(seconds)))
    except OSError as e:
        raise Failure("cannot run `%s`: %s" % (show(cmd), e))


def must(cmd, stdin_text="", seconds=RUN_SECONDS):
    """run(), which must exit 0 with nothing on standard error; its standard output."""
    p = run(cmd, stdin_text, seconds)
    if p.returncode != 0 or p.stderr.strip():
        raise Failure("`%s`: exit status %d\n      %s" % (show(cmd), p.returncode, p.stderr.strip()[:600]))
    return p.stdout


# --- the toolchain --------------------------------------------------------------------------


def toolchain_problem(tmp):
    """Why aarch64 programs cannot be built and run here, or None."""
    for tool in (CROSS_CC, QEMU):
        if not shutil.which(tool):
            return "%s not found (Debian: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)" % tool
    src, exe = os.path.join(tmp, "hello.c"), os.path.join(tmp, "hello")
    with open(src, "w") as f:
        f.write(HELLO)
    p = subprocess.run([CROSS_CC, "-static", src, "-o", exe], capture_output=True, text=True)
    if p.returncode != 0:
        return "%s cannot build a static hello program (libc6-dev-arm64-cross missing?): %s" % (
            CROSS_CC, p.stderr.strip()[:300])
    p = subprocess.run([QEMU, exe], capture_output=True, text=True)
    if p.returncode != 0 or p.stdout != "hello\n":
        return "%s cannot run a static aarch64 hello program: exit %d %s" % (QEMU, p.returncode, p.stderr.strip()[:300])
    return None


def build_runtime(runtime_dir, tmp, pool):
    """The runtime's sources compiled for aarch64 once: the object files."""
    sources = sorted(glob.glob(os.path.join(runtime_dir, "*.c")))
    if not sources:
        raise Failure("no runtime sources in %s" % runtime_dir)
    objdir = os.path.join(tmp, "runtime-aarch64")
    os.makedirs(objdir)

    def one(src):
        obj = os.path.join(objdir, os.path.basename(src)[:-2] + ".o")
        must([CROSS_CC] + CFLAGS + ["-I" + runtime_dir, "-c", src, "-o", obj], seconds=BUILD_SECONDS)
        return obj

    return list(pool.map(one, sources))


# --- one program ------------------------------------------------------------------------------


class Program:
    """One .tfm file: its inputs, both builds, the checks' results."""

    def __init__(self, ctx, path, kind):
        self.ctx, self.path, self.kind = ctx, path, kind
        self.name = os.path.basename(path)[:-len(".tfm")]
        self.label = ("" if kind == "rasp" else "fixture ") + self.name
        self.dir = os.path.join(ctx.tmp, kind + "-" + self.name)
        os.makedirs(self.dir)
        self.lines = rasp_inputs(self.name, path) if kind == "rasp" else model_inputs(self.name, path)
        self.stdin = "".join(line + "\n" for line in self.lines)
        self.results = []

    def report(self, ok, check, message):
        self.results.append((ok, "%s: %s" % (self.label, check), message))

    def build(self):
        c = os.path.join(self.dir, self.name + ".c")
        must([self.ctx.tfmc, self.path, "-o", c, "--main"], seconds=BUILD_SECONDS)
        self.native = os.path.join(self.dir, self.name + "_native")
        must([NATIVE_CC] + CFLAGS + [c] + self.ctx.config_flags + ["-o", self.native], seconds=BUILD_SECONDS)
        self.cross = os.path.join(self.dir, self.name + "_aarch64")
        try:
            must([CROSS_CC] + CFLAGS + ["-static", c] + self.ctx.runtime_objects +
                 ["-I" + self.ctx.runtime_dir, "-lm", "-pthread", "-o", self.cross], seconds=BUILD_SECONDS)
        except Failure as e:
            raise Failure("aarch64 build: %s" % e)

    def check_rasp(self):
        want = must([self.native], self.stdin)
        got = must([QEMU, self.cross], self.stdin)
        if len(want.splitlines()) != len(self.lines):
            raise Failure("native: %d output lines for %d inputs" % (len(want.splitlines()), len(self.lines)))
        if got != want:
            diffs = [(i, w, g) for i, (w, g) in enumerate(zip(want.splitlines(), got.splitlines())) if w != g]
            shown = "; ".join("input %r: native %r, aarch64 %r" % (self.lines[i], w, g) for i, w, g in diffs[:3])
            raise Failure("aarch64 output differs from native: %s" % (shown or "%d vs %d lines" % (
                len(got.splitlines()), len(want.splitlines()))))
        self.report(True, "aarch64 == native", "%d inputs, the same text" % len(self.lines))

    def check_model(self):
        one = ["--logits", "--threads", "1"]
        want = must([self.native] + one, self.stdin)
        got = must([QEMU, self.cross] + one, self.stdin)
        worst = compare_logits(self.lines, want, got)
        self.report(True, "aarch64 --logits ~ native", "%d inputs, max|diff| %.2g x max|logit| (limit %g)" % (
            len(self.lines), worst, RELATIVE_TOLERANCE))
        threaded = must([QEMU, self.cross, "--logits", "--threads", "3", "--task-grain", "1"], self.stdin)
        if threaded != got:
            raise Failure("aarch64 --threads 3 --task-grain 1 prints other logits than one thread")
        self.report(True, "aarch64 --threads 3 == --threads 1", "the same text")

    def check_all(self):
        try:
            self.build()
        except Failure as e:
            self.report(False, "build", str(e))
            return self.results
        try:
            self.check_rasp() if self.kind == "rasp" else self.check_model()
        except Failure as e:
            self.report(False, "aarch64 vs native", str(e))
        return self.results


def compare_logits(lines, want, got):
    """The largest |aarch64 - native| over a line's max|native logit|; Failure past the limit."""
    w, g = want.splitlines(), got.splitlines()
    if len(w) != len(lines) or len(g) != len(lines):
        raise Failure("%d native and %d aarch64 output lines for %d inputs" % (len(w), len(g), len(lines)))
    worst = 0.0
    for text, wl, gl in zip(lines, w, g):
        a, b = [float(x) for x in wl.split()], [float(x) for x in gl.split()]
        if len(a) != len(b) or not a:
            raise Failure("input %r: %d native logits, %d aarch64" % (text, len(a), len(b)))
        scale = max(abs(x) for x in a)
        diff = max(abs(x - y) for x, y in zip(a, b))
        if not diff <= RELATIVE_TOLERANCE * scale:  # (not <=: a NaN fails)
            raise Failure("input %r: max|diff| %.3g, more than %g x max|logit| %.3g" % (
                text, diff, RELATIVE_TOLERANCE, scale))
        worst = max(worst, diff / scale if scale else 0.0)
    return worst


# --- inputs -----------------------------------------------------------------------------------


def rasp_inputs(name, path):
    """A seeded handful of check_examples.py's inputs and the first of the longest."""
    vocab, max_len = read_header(path)
    every = make_inputs(name, vocab, max_len)
    rng = random.Random("check_cross:" + name)
    picked = rng.sample(every, min(RASP_INPUTS, len(every)))
    longest = max(len(s) for s in every)
    picked.append(next(s for s in every if len(s) == longest))
    return [format_input(s) for s in picked]


def model_inputs(name, path):
    """The fixture's prompt (tests/fixtures/README.md: 8 tokens), two prefixes of it and two
    seeded random sequences (one of max_len tokens) over the model's vocabulary."""
    text = open(path, encoding="utf-8").read()
    vocab = int(re.search(r"\bvocab\s+(\d+)\s*;", text).group(1))
    max_len = int(re.search(r"\bmax_len\s+(\d+)\s*;", text).group(1))
    prompt = fixture_prompt(os.path.join(os.path.dirname(path), name + ".expected.safetensors"))
    rng = random.Random("check_cross:" + name)
    seqs = [prompt, prompt[:1], prompt[:3],
            [rng.randrange(vocab) for _ in range(max_len)], [rng.randrange(vocab) for _ in range(5)]]
    return [format_input(s) for s in seqs]


def fixture_prompt(expected_path):
    """The `tokens` of a fixture's expectations (F32 ids), or a fixed prompt without them."""
    import json
    import struct
    try:
        raw = open(expected_path, "rb").read()
    except OSError:
        return [1, 2, 3, 4, 5, 6, 7, 8]
    (n,) = struct.unpack("<Q", raw[:8])
    t = json.loads(raw[8:8 + n])["tokens"]
    a, b = t["data_offsets"]
    data = raw[8 + n + a:8 + n + b]
    return [int(x) for x in struct.unpack("<%df" % (len(data) // 4), data)]


def has_weights(path):
    """A model declaration that reads a weights file (not seeded random weights)."""
    text = re.sub(r"#[^\n]*", "", open(path, encoding="utf-8").read())
    return re.search(r"^\s*model\b", text, re.M) is not None and re.search(r'\bweights\s+"', text) is not None


# --- main -------------------------------------------------------------------------------------


class Context:
    pass


def main(argv):
    parser = argparse.ArgumentParser(prog="check_cross.py", description=__doc__.split("\n")[0])
    parser.add_argument("tfmc")
    parser.add_argument("examples_dir")
    parser.add_argument("fixtures_dir")
    parser.add_argument("runtime_dir")
    parser.add_argument("-j", "--jobs", type=int, default=0, help="parallel programs (default: CPUs)")
    args = parser.parse_args(argv[1:])
    t0 = time.monotonic()

    ctx = Context()
    ctx.tfmc = os.path.abspath(args.tfmc)
    ctx.runtime_dir = os.path.abspath(args.runtime_dir)
    limits.configure(ctx.tfmc)
    jobs = args.jobs or os.cpu_count() or 2

    with tempfile.TemporaryDirectory(prefix="check_cross.") as tmp:
        ctx.tmp = tmp
        problem = toolchain_problem(tmp)
        if problem:
            print("skipped: " + problem)
            return SKIP
        p = subprocess.run([ctx.tfmc, "config", "--cflags", "--libs"], capture_output=True, text=True)
        if p.returncode != 0:
            print("FAIL `%s config --cflags --libs`: exit %d %s" % (ctx.tfmc, p.returncode, p.stderr.strip()))
            print("0 passed, 1 failed")
            return 1
        ctx.config_flags = shlex.split(p.stdout)
        rasp = sorted(glob.glob(os.path.join(os.path.abspath(args.examples_dir), "*.tfm")))
        models = [f for f in sorted(glob.glob(os.path.join(os.path.abspath(args.fixtures_dir), "*.tfm"))) if has_weights(f)]
        passed = failed = 0
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            try:
                ctx.runtime_objects = build_runtime(ctx.runtime_dir, tmp, pool)
            except Failure as e:
                print("FAIL runtime for aarch64: %s" % e)
                print("0 passed, 1 failed")
                return 1
            programs = [Program(ctx, f, "rasp") for f in rasp] + [Program(ctx, f, "model") for f in models]
            for results in pool.map(lambda prog: prog.check_all(), programs):
                for ok, label, message in results:
                    passed += ok
                    failed += not ok
                    print("%-4s %s: %s" % ("ok" if ok else "FAIL", label, message), flush=True)
    if not rasp or not models:
        print("FAIL no %s found" % ("RASP examples" if not rasp else "model fixtures with weights"))
        failed += 1
    print("%d RASP programs, %d model fixtures, %s and %s, %.1f s" % (
        len(rasp), len(models), CROSS_CC, QEMU, time.monotonic() - t0))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
