#!/usr/bin/env python3
"""Warnings through every command: check_warnings.py TFMC GOLDEN_DIR

selector_constant.tfm (a golden case) has warnings and no error. `tfmc check`, `eval`, `run`,
`verify` and `FILE -o OUT.c` must each succeed (exit 0) and print the warnings exactly once, as
`check` prints them (the golden .err file); eval and run still answer. A bad input line still
fails (exit 1) with the warnings shown once and its own error after them.
"""
import os
import subprocess
import sys
import tempfile

CASE = "selector_constant"


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: check_warnings.py TFMC GOLDEN_DIR\n")
        return 2
    tfmc, golden = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    with open(os.path.join(golden, CASE + ".err"), encoding="utf-8") as f:
        warnings = f.read()
    failures = []

    def run(args, want_status, want_out=None, want_err=None, stdin=None):
        p = subprocess.run([tfmc] + args, cwd=golden, input=stdin, capture_output=True, text=True, timeout=120)
        what = "tfmc " + " ".join(args)
        if p.returncode != want_status:
            failures.append("%s: exit %d, expected %d\n%s" % (what, p.returncode, want_status, p.stderr[-800:]))
        if want_out is not None and p.stdout != want_out:
            failures.append("%s: stdout %r, expected %r" % (what, p.stdout, want_out))
        if want_err is not None and p.stderr != want_err:
            failures.append("%s: stderr differs:\n%s\nexpected:\n%s" % (what, p.stderr, want_err))
        return p

    if warnings.count("warning:") < 2 or "error:" in warnings:
        failures.append("%s.err should hold warnings only" % CASE)
    tfm = CASE + ".tfm"
    run(["check", tfm], 0, "", warnings)
    run(["eval", tfm, "a", "b", "c"], 0, "12 12 12\n", warnings)
    run(["run", tfm, "a", "b", "c"], 0, "12 12 12\n", warnings)
    p = run(["verify", tfm], 0, None, warnings)
    if not p.stdout.startswith("verified"):
        failures.append("verify: %r" % p.stdout)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "p.c")
        run([tfm, "-o", out], 0, "", warnings)
        if not os.path.exists(out):
            failures.append("-o wrote no file")
    bad = "tfmc: input line 2: unknown token `z`: it is not in the vocabulary of `p`\n"
    run(["eval", tfm], 1, "8 8\n\n", warnings + bad, stdin="a b\nz\n")
    for f in failures:
        print("FAIL " + f)
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
