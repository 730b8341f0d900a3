#!/usr/bin/env python3
"""Differential test of the compiled transformers against the interpreter.

Usage: check_compiled.py TFMC EXAMPLES_DIR [--cc gcc,clang] [--san]

For every example program (EXAMPLES_DIR/*.tfm), with the inputs of
check_examples.py (inputs.py: every sequence up to max_len when there are few,
else a few hundred seeded random ones), `TFMC eval` gives the expected output
lines and these must agree with it:

  run        `TFMC run FILE` on the same inputs (standard input), and its
             bad-input behaviour;
  CC         for every available compiler CC of --cc (default gcc,clang): the
             C of `TFMC FILE -o OUT.c --main`, built with
             -std=c99 -Wall -Wextra -Werror -pedantic -O2 and the flags of
             `TFMC config --cflags --libs`, run on the same inputs, on one
             argv sequence, and on bad input lines (unknown token, too long,
             empty: an empty stdout line and a stderr line naming the input
             line each, the other lines answered, exit status 1);
  CC+san     with --san, the same built with
             -fsanitize=address,undefined -fno-sanitize-recover=all -g; every
             run must be clean (no sanitizer report, no leak);
  separate   `--weights=separate` (OUT.c and OUT_weights.c), built with the
             first compiler and run on the same inputs;
  verify     `TFMC verify FILE --len min(5, max_len)`: exit status 0 after an
             exhaustive check of every sequence up to that length;
  numpy      when numpy can be imported (/usr/bin/python3 or this
             interpreter): `--emit=weights` and examples/load_weights.py on
             ~20 inputs (its load() and forward() in one process) and once on
             its command line; otherwise a `skip` line.

With --san (meson passes it in a b_sanitize build, where tfmc itself is
sanitized), the programs that run under a sanitizer (tfmc run, the sanitized
binaries, the separate-weights binary, which is then built sanitized too) get
a seeded sample of at most SAN_MAX_INPUTS inputs, and the builds without
-fsanitize are skipped (one `skip` line) when they cannot link because the
runtime library of `tfmc config` is itself instrumented.

Output values compare equal when they are the same string, or when both parse
as numbers within 1e-4 (numerical outputs of a transformer are approximate).

Prints one line per example per check (`ok`, `FAIL` or `skip`) and a final
`N passed, M failed`; exits 1 on any failure. Standard library only.
"""

import argparse
import concurrent.futures
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

from inputs import count_sequences, format_input, make_inputs, read_header
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import limits  # noqa: E402  (tests/limits.py: scaled timeouts, confirmed by a rerun)

TOLERANCE = 1e-4
TIMEOUT_SECONDS = 120
VERIFY_MAX_LEN = 5
NUMPY_INPUTS = 20
# With --san (a sanitizer build of tfmc, sanitized binaries), programs under a
# sanitizer run on a seeded sample of at most this many of the inputs: they
# are 5 to 10 times slower, and the point is memory safety, not coverage.
SAN_MAX_INPUTS = 500
SHOWN_MISMATCHES = 5

CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"]
SAN_CFLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]
SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:exitcode=99:abort_on_error=0",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1:exitcode=99",
}
# What a link against a sanitizer-instrumented runtime library (a b_sanitize
# build tree) without -fsanitize reports.
SANITIZED_RUNTIME = re.compile(r"undefined reference to `__(asan|ubsan)_")

NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")

# Runs load_weights.py's load() once and forward() on each standard input line.
NUMPY_DRIVER = r"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("load_weights", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
meta, tensors = module.load(sys.argv[2])
for line in sys.stdin:
    print(" ".join(module.forward(meta, tensors, line.split())))
"""


class Failure(Exception):
    """A check failed; the message says why."""


# --- running ----------------------------------------------------------------


def run(cmd, stdin_text=None, env=None):
    try:
        return limits.sprun(
            cmd,
            input=stdin_text if stdin_text is not None else "",
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise Failure("`%s` timed out after %d s (twice)" % (show_cmd(cmd), limits.scaled(TIMEOUT_SECONDS)))
    except OSError as e:
        raise Failure("cannot run `%s`: %s" % (show_cmd(cmd), e))


def show_cmd(cmd):
    return " ".join(shlex.quote(str(c)) for c in cmd)


def first_lines(text, count=6):
    lines = text.rstrip("\n").split("\n")
    shown = "\n      ".join(lines[:count])
    if len(lines) > count:
        shown += "\n      ... (%d lines)" % len(lines)
    return shown


def output_lines(text):
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def stderr_lines(text):
    return [l for l in text.split("\n") if l.strip() != ""]


# --- comparing --------------------------------------------------------------


def values_match(expected, got):
    if expected == got:
        return True
    if NUMBER.fullmatch(expected) and NUMBER.fullmatch(got):
        return abs(float(expected) - float(got)) <= TOLERANCE
    return False


def line_matches(expected, got):
    e, g = expected.split(" "), got.split(" ")
    return len(e) == len(g) and all(values_match(a, b) for a, b in zip(e, g))


def compare_outputs(inputs_text, expected, got):
    """Returns a list of problems (empty when every line matches)."""
    problems = []
    if len(got) != len(expected):
        problems.append("%d output lines for %d inputs" % (len(got), len(expected)))
    bad = [
        (text, e, g)
        for text, e, g in zip(inputs_text, expected, got)
        if not line_matches(e, g)
    ]
    if bad:
        problems.append("%d of %d inputs differ from eval" % (len(bad), len(expected)))
        for text, e, g in bad[:SHOWN_MISMATCHES]:
            problems.append("input %r: eval %r, got %r" % (text, e, g))
    return problems


def check_clean_run(result, cmd, inputs_text, expected):
    """A run on good inputs: exit status 0, no stderr, outputs equal to eval."""
    problems = []
    if result.returncode != 0:
        problems.append("exit status %d" % result.returncode)
    if result.stderr.strip():
        problems.append("stderr:\n      %s" % first_lines(result.stderr))
    problems += compare_outputs(inputs_text, expected, output_lines(result.stdout))
    if problems:
        raise Failure("`%s`: %s" % (show_cmd(cmd), "\n    ".join(problems)))


# --- one example --------------------------------------------------------------


class Example:
    def __init__(self, ctx, path):
        self.ctx = ctx
        self.path = path
        self.name = os.path.basename(path)[: -len(".tfm")]
        self.vocab, self.max_len = read_header(path)
        self.inputs = make_inputs(self.name, self.vocab, self.max_len)
        self.inputs_text = [format_input(seq) for seq in self.inputs]
        self.stdin_text = "".join(t + "\n" for t in self.inputs_text)
        # One argv sequence: the first of the longest inputs.
        longest = max(len(seq) for seq in self.inputs)
        self.argv_seq = [str(t) for t in next(s for s in self.inputs if len(s) == longest)]
        if ctx.san and len(self.inputs) > SAN_MAX_INPUTS:
            rng = random.Random("check_compiled:san:" + self.name)
            self.san_subset = sorted(rng.sample(range(len(self.inputs)), SAN_MAX_INPUTS))
        else:
            self.san_subset = None
        self.workdir = os.path.join(ctx.tmpdir, self.name)
        os.makedirs(self.workdir)
        self.results = []

    def report(self, status, check, message):
        self.results.append((status, "%s: %s" % (self.name, check), message))

    def attempt(self, check, func):
        """Runs func(), which returns a message or raises Failure."""
        try:
            self.report("ok", check, func())
        except Failure as e:
            self.report("FAIL", check, str(e))

    # The expected outputs, from the interpreter.

    def evaluate(self):
        tfmc = self.ctx.tfmc
        cmd = [tfmc, "eval", self.path]
        result = run(cmd, self.stdin_text)
        if result.returncode != 0 or result.stderr.strip():
            raise Failure(
                "`%s` (%d inputs on stdin): exit status %d, stderr:\n      %s"
                % (show_cmd(cmd), len(self.inputs), result.returncode, first_lines(result.stderr))
            )
        self.expected = output_lines(result.stdout)
        if len(self.expected) != len(self.inputs):
            raise Failure(
                "`%s`: %d output lines for %d inputs"
                % (show_cmd(cmd), len(self.expected), len(self.inputs))
            )
        self.argv_expected = self.eval_argv(self.argv_seq)
        self.bad_cases = self.make_bad_cases()
        good = [text for text, is_good in self.bad_cases if is_good]
        result = run([tfmc, "eval", self.path], "".join(t + "\n" for t in good))
        good_out = output_lines(result.stdout)
        if result.returncode != 0 or len(good_out) != len(good):
            raise Failure("eval fails on the good lines of the bad-input check: %r" % good)
        self.bad_expected = []
        for text, is_good in self.bad_cases:
            self.bad_expected.append(good_out.pop(0) if is_good else "")
        # A bad argv sequence: the interpreter's behaviour is the reference.
        self.bad_argv = [str(self.vocab[0]), self.unknown_token()]
        result = run([tfmc, "eval", self.path] + self.bad_argv)
        self.bad_argv_eval = (result.returncode, result.stdout, len(stderr_lines(result.stderr)))

    def eval_argv(self, seq):
        cmd = [self.ctx.tfmc, "eval", self.path] + seq
        result = run(cmd)
        if result.returncode != 0:
            raise Failure("`%s`: exit status %d" % (show_cmd(cmd), result.returncode))
        return output_lines(result.stdout)

    def unknown_token(self):
        unknown = "zz"
        while unknown in [str(v) for v in self.vocab]:
            unknown += "z"
        return unknown

    def make_bad_cases(self):
        """(line, is_good) pairs: bad lines between good ones."""
        vocab, max_len = self.vocab, self.max_len
        cases = [
            (format_input(vocab[:2]), True),
            (format_input([vocab[0], self.unknown_token()]), False),
        ]
        if all(isinstance(v, int) for v in vocab):
            cases.append((format_input([vocab[0], max(vocab) + 1]), False))
        cases += [
            (format_input([vocab[0]] * (max_len + 1)), False),
            ("", False),
            (format_input([vocab[-1]] * max_len), True),
        ]
        return cases

    # Checks on a program that reads tokens like `tfmc eval`.

    def check_io(self, cmd, env=None, sanitized=False):
        """Same inputs on stdin, and one argv sequence, as eval; a sample of
        the inputs when the program runs under a sanitizer."""
        if sanitized and self.san_subset is not None:
            texts = [self.inputs_text[i] for i in self.san_subset]
            expected = [self.expected[i] for i in self.san_subset]
            stdin_text = "".join(t + "\n" for t in texts)
            what = "%d of the %d inputs" % (len(texts), len(self.inputs))
        else:
            texts, expected, stdin_text = self.inputs_text, self.expected, self.stdin_text
            what = "%d inputs" % len(texts)
        check_clean_run(run(cmd, stdin_text, env), cmd, texts, expected)
        full = cmd + self.argv_seq
        result = run(full, None, env)
        check_clean_run(result, full, [format_input(self.argv_seq)], self.argv_expected)
        return what + " + argv equal eval"

    def check_bad_input(self, cmd, env=None):
        stdin_text = "".join(text + "\n" for text, _ in self.bad_cases)
        result = run(cmd, stdin_text, env)
        problems = []
        if result.returncode != 1:
            problems.append("exit status %d, expected 1" % result.returncode)
        got = output_lines(result.stdout)
        if len(got) != len(self.bad_expected) or not all(
            line_matches(e, g) if e else g == ""
            for e, g in zip(self.bad_expected, got)
        ):
            problems.append("stdout %r, expected %r" % (got, self.bad_expected))
        errors = stderr_lines(result.stderr)
        bad_numbers = [n for n, (_, good) in enumerate(self.bad_cases, 1) if not good]
        if len(errors) != len(bad_numbers):
            problems.append(
                "%d stderr lines, expected %d:\n      %s"
                % (len(errors), len(bad_numbers), first_lines(result.stderr))
            )
        else:
            for number, err in zip(bad_numbers, errors):
                if not re.search(r"(?<![0-9])%d(?![0-9])" % number, err):
                    problems.append("stderr line %r does not name input line %d" % (err, number))
        full = cmd + self.bad_argv
        result = run(full, None, env)
        argv_got = (result.returncode, result.stdout, len(stderr_lines(result.stderr)))
        if argv_got != self.bad_argv_eval:
            problems.append(
                "`%s`: (exit status, stdout, stderr lines) %r, eval gives %r"
                % (show_cmd(full), argv_got, self.bad_argv_eval)
            )
        if problems:
            shown = "\n      ".join(repr(text) for text, _ in self.bad_cases)
            raise Failure(
                "`%s` with stdin lines\n      %s\n    %s"
                % (show_cmd(cmd), shown, "\n    ".join(problems))
            )
        return "%d bad lines (unknown token, too long, empty) and a bad argv rejected" % len(
            bad_numbers
        )

    # The checks.

    def check_run(self):
        cmd = [self.ctx.tfmc, "run", self.path]
        # With --san, tfmc itself is a sanitizer build.
        self.attempt("run == eval", lambda: self.check_io(cmd, sanitized=self.ctx.san))
        self.attempt("run bad input", lambda: self.check_bad_input(cmd))

    def generate_c(self, stem, extra):
        out_c = os.path.join(self.workdir, stem + ".c")
        cmd = [self.ctx.tfmc, self.path, "-o", out_c, "--main"] + extra
        result = run(cmd)
        if result.returncode != 0:
            raise Failure(
                "`%s`: exit status %d\n      %s"
                % (show_cmd(cmd), result.returncode, first_lines(result.stderr))
            )
        return out_c

    def build(self, cc, sources, exe, san):
        cmd = [cc] + CFLAGS + (SAN_CFLAGS if san else []) + sources
        cmd += self.ctx.config_flags + ["-o", exe]
        result = run(cmd)
        if result.returncode != 0:
            raise Failure(
                "`%s`: exit status %d\n      %s"
                % (show_cmd(cmd), result.returncode, first_lines(result.stderr, 12)),
            )
        return [exe]

    def check_c(self):
        try:
            out_c = self.generate_c(self.name, [])
        except Failure as e:
            self.report("FAIL", "C", str(e))
            return
        variants = [(cc, False) for cc in self.ctx.compilers if self.ctx.plain_links]
        if self.ctx.san:
            variants += [(cc, True) for cc in self.ctx.compilers]
        for cc, san in variants:
            label = cc + ("+san" if san else "")
            exe = os.path.join(self.workdir, "%s_%s" % (self.name, label.replace("+", "_")))
            env = self.ctx.san_env if san else None
            try:
                cmd = self.build(cc, [out_c], exe, san)
            except Failure as e:
                self.report("FAIL", label, str(e))
                continue
            self.attempt(label + " == eval", lambda: self.check_io(cmd, env, san))
            self.attempt(label + " bad input", lambda: self.check_bad_input(cmd, env))

    def check_separate(self):
        def check():
            stem = self.name + "_sep"
            out_c = self.generate_c(stem, ["--weights=separate"])
            weights_c = os.path.join(self.workdir, stem + "_weights.c")
            if not os.path.isfile(weights_c):
                raise Failure("--weights=separate wrote no %s" % os.path.basename(weights_c))
            cc = self.ctx.compilers[0]
            cmd = self.build(cc, [out_c, weights_c], os.path.join(self.workdir, stem), self.ctx.san)
            env = self.ctx.san_env if self.ctx.san else None
            return "%s (%s%s): %s" % (
                os.path.basename(weights_c),
                cc,
                "+san" if self.ctx.san else "",
                self.check_io(cmd, env, self.ctx.san),
            )

        self.attempt("--weights=separate", check)

    def check_verify(self):
        length = min(VERIFY_MAX_LEN, self.max_len)

        def check():
            cmd = [self.ctx.tfmc, "verify", self.path, "--len", str(length)]
            result = run(cmd)
            if result.returncode != 0:
                raise Failure(
                    "`%s`: exit status %d\n      %s"
                    % (show_cmd(cmd), result.returncode, first_lines(result.stdout + result.stderr, 30))
                )
            want = count_sequences(self.vocab, length)
            m = re.search(r"on (\d+) inputs", result.stdout)
            if not m or int(m.group(1)) != want or "every sequence" not in result.stdout:
                raise Failure(
                    "`%s`: expected an exhaustive check of %d inputs, got: %s"
                    % (show_cmd(cmd), want, result.stdout.strip())
                )
            return "exhaustive up to length %d (%d inputs)" % (length, want)

        self.attempt("verify --len %d" % length, check)

    def check_numpy(self):
        python = self.ctx.numpy_python
        if python is None:
            self.report("skip", "numpy", "no python3 with numpy (tried /usr/bin/python3 and %s)" % sys.executable)
            return

        def check():
            weights = os.path.join(self.workdir, self.name + ".safetensors")
            cmd = [self.ctx.tfmc, self.path, "--emit=weights", "-o", weights]
            result = run(cmd)
            if result.returncode != 0:
                raise Failure("`%s`: exit status %d\n      %s" % (show_cmd(cmd), result.returncode, first_lines(result.stderr)))
            rng = random.Random("check_compiled:" + self.name)
            picked = sorted(rng.sample(range(len(self.inputs)), min(NUMPY_INPUTS, len(self.inputs))))
            texts = [self.inputs_text[i] for i in picked]
            expected = [self.expected[i] for i in picked]
            script = self.ctx.load_weights
            cmd = [python, "-c", NUMPY_DRIVER, script, weights]
            result = run(cmd, "".join(t + "\n" for t in texts))
            if result.returncode != 0:
                raise Failure("`%s`: exit status %d\n      %s" % (show_cmd(cmd), result.returncode, first_lines(result.stderr)))
            problems = compare_outputs(texts, expected, output_lines(result.stdout))
            # The script's own command line, once.
            cmd = [python, script, weights] + self.argv_seq
            result = run(cmd)
            if result.returncode != 0:
                problems.append("`%s`: exit status %d\n      %s" % (show_cmd(cmd), result.returncode, first_lines(result.stderr)))
            else:
                problems += compare_outputs(
                    [format_input(self.argv_seq)], self.argv_expected, output_lines(result.stdout)
                )
            if problems:
                raise Failure("load_weights.py: " + "\n    ".join(problems))
            return "load_weights.py on %d inputs + argv equals eval" % len(texts)

        self.attempt("numpy", check)

    def check_all(self):
        try:
            self.evaluate()
        except Failure as e:
            self.report("FAIL", "eval", "cannot get the expected outputs: %s" % e)
            return self.results
        self.check_run()
        if self.ctx.compilers:
            self.check_c()
            self.check_separate()
        else:
            self.report("FAIL", "C", "no C compiler among %s" % ",".join(self.ctx.wanted_compilers))
        self.check_verify()
        self.check_numpy()
        return self.results


# --- setup --------------------------------------------------------------------


class Context:
    pass


def find_numpy_python():
    for python in ["/usr/bin/python3", sys.executable]:
        if python and os.path.exists(python):
            try:
                result = subprocess.run(
                    [python, "-c", "import numpy"],
                    capture_output=True,
                    timeout=TIMEOUT_SECONDS,
                )
            except (OSError, subprocess.TimeoutExpired):
                continue
            if result.returncode == 0:
                return python
    return None


def plain_link_problem(ctx, path):
    """With --san: whether the generated C links without -fsanitize. In a
    sanitizer build tree the runtime library is instrumented, so it does not,
    unless `tfmc config` adds the sanitizer flags. Returns why not, or None."""
    out_c = os.path.join(ctx.tmpdir, "probe.c")
    exe = os.path.join(ctx.tmpdir, "probe")
    try:
        result = run([ctx.tfmc, path, "-o", out_c, "--main"])
        if result.returncode != 0:
            return None  # reported by the example's own checks
        result = run([ctx.compilers[0]] + CFLAGS + [out_c] + ctx.config_flags + ["-o", exe])
    except Failure:
        return None
    if result.returncode != 0 and SANITIZED_RUNTIME.search(result.stderr):
        return (
            "the runtime library in `tfmc config --libs` is sanitizer-instrumented "
            "and `tfmc config --cflags --libs` has no -fsanitize"
        )
    return None


def main(argv):
    parser = argparse.ArgumentParser(
        prog="check_compiled.py",
        description="Checks tfmc run, the generated C, verify and the weights export against tfmc eval.",
    )
    parser.add_argument("tfmc")
    parser.add_argument("examples_dir")
    parser.add_argument("--cc", default="gcc,clang", help="compilers to try (default gcc,clang)")
    parser.add_argument("--san", action="store_true", help="also build with ASan+UBSan")
    parser.add_argument("-j", "--jobs", type=int, default=0, help="parallel examples (default: CPUs)")
    args = parser.parse_args(argv[1:])

    ctx = Context()
    ctx.tfmc = os.path.abspath(args.tfmc)
    limits.configure(ctx.tfmc)
    ctx.san = args.san
    ctx.wanted_compilers = [c for c in args.cc.split(",") if c]
    ctx.compilers = [c for c in ctx.wanted_compilers if shutil.which(c)]
    ctx.load_weights = os.path.abspath(os.path.join(args.examples_dir, "load_weights.py"))
    ctx.san_env = dict(os.environ, **SAN_ENV)

    result = subprocess.run([ctx.tfmc, "config", "--cflags", "--libs"], capture_output=True, text=True)
    if result.returncode != 0:
        print("FAIL config: `%s config --cflags --libs`: exit status %d\n    %s"
              % (ctx.tfmc, result.returncode, result.stderr.strip()))
        print("0 passed, 1 failed")
        return 1
    ctx.config_flags = shlex.split(result.stdout)
    ctx.numpy_python = find_numpy_python() if os.path.isfile(ctx.load_weights) else None

    files = sorted(f for f in os.listdir(args.examples_dir) if f.endswith(".tfm"))
    paths = [os.path.abspath(os.path.join(args.examples_dir, f)) for f in files]
    print("compilers: %s; tfmc config: %s; numpy: %s%s" % (
        ",".join(ctx.compilers) or "none",
        " ".join(ctx.config_flags),
        ctx.numpy_python or "none",
        "; sanitizers on" if ctx.san else "",
    ), flush=True)

    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="check_compiled.") as tmpdir:
        ctx.tmpdir = tmpdir
        ctx.plain_links = True
        if ctx.san and ctx.compilers and paths:
            reason = plain_link_problem(ctx, paths[0])
            if reason:
                ctx.plain_links = False
                print("skip builds without -fsanitize: %s" % reason, flush=True)

        def check(path):
            try:
                return Example(ctx, path).check_all()
            except (OSError, ValueError) as e:
                return [("FAIL", os.path.basename(path), "cannot check: %s" % e)]

        jobs = args.jobs or os.cpu_count() or 2
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            for results in pool.map(check, paths):
                for status, label, message in results:
                    if status == "ok":
                        passed += 1
                    elif status == "FAIL":
                        failed += 1
                    print("%-4s %s: %s" % (status, label, message), flush=True)
    if not paths:
        print("FAIL no .tfm files in %s" % args.examples_dir)
        failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
