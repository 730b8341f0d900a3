#!/usr/bin/env python3
"""Golden tests of tfmc diagnostics.

usage: run_golden.py TFMC GOLDEN_DIR [--update]

For each NAME.tfm in GOLDEN_DIR (not its subfolders), runs `TFMC check NAME.tfm` with GOLDEN_DIR
as the working directory (so messages name the bare file) and a 10 s timeout (tests/limits.py:
scaled for a sanitizer build, confirmed by a rerun with ten times as much), then checks that
  - standard error equals NAME.err exactly (a unified diff is shown otherwise),
  - the exit status is 1, or N when the .tfm has a line `# exit: N` among its leading comments,
  - standard output is empty.
Prints one line per failing case and a final line `N passed, M failed`; exits non-zero on any
failure. --update rewrites the .err files from the compiler's output (review them before
committing: a golden file must never bless a wrong diagnostic).
"""
import difflib
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import limits  # noqa: E402  (tests/limits.py: scaled timeouts, confirmed by a rerun)

TIMEOUT = 10
EXIT_RE = re.compile(r"^#\s*exit:\s*(-?\d+)\s*$")


def expected_status(text):
    """The status named by `# exit: N` in the leading comment lines, else 1."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            break
        m = EXIT_RE.match(stripped)
        if m:
            return int(m.group(1))
    return 1


def decode(data):
    return data.decode("utf-8", errors="backslashreplace")


def run_case(tfmc, golden_dir, name, update):
    """Returns a list of problem descriptions (empty when the case passes)."""
    tfm = name + ".tfm"
    err_path = os.path.join(golden_dir, name + ".err")
    with open(os.path.join(golden_dir, tfm), "rb") as f:
        want_status = expected_status(decode(f.read()))
    try:
        r = limits.run_confirmed([tfmc, "check", tfm], None, TIMEOUT * limits.time_factor(tfmc), cwd=golden_dir)
    except OSError as e:
        return ["cannot run %s: %s" % (tfmc, e)]
    if r.timed_out:
        return ["timed out after %g s, and after %g s in a rerun" % (r.limit / limits.RERUN_FACTOR, r.limit)]
    out, err = r.out, r.err

    problems = []
    got_err = decode(err)
    if update:
        with open(err_path, "w", encoding="utf-8", newline="") as f:
            f.write(got_err)
    if os.path.exists(err_path):
        with open(err_path, "rb") as f:
            want_err = decode(f.read())
    else:
        want_err = None
        problems.append("missing %s.err" % name)
    if want_err is not None and got_err != want_err:
        diff = difflib.unified_diff(want_err.splitlines(True), got_err.splitlines(True),
                                    fromfile=name + ".err (expected)", tofile=name + " (stderr)")
        text = "".join(d if d.endswith("\n") else d + "\n\\ No newline at end of file\n" for d in diff)
        problems.append("stderr differs:\n" + text.rstrip("\n"))
    if r.rc != want_status:
        if r.rc < 0:
            problems.append("killed by signal %d (expected exit %d)" % (-r.rc, want_status))
        else:
            problems.append("exit status %d, expected %d" % (r.rc, want_status))
    if out:
        problems.append("standard output is not empty:\n" + decode(out).rstrip("\n"))
    return problems


def main(argv):
    args = [a for a in argv[1:] if a != "--update"]
    update = "--update" in argv[1:]
    if len(args) != 2:
        sys.stderr.write("usage: run_golden.py TFMC GOLDEN_DIR [--update]\n")
        return 2
    tfmc = os.path.abspath(args[0]) if os.sep in args[0] else args[0]
    golden_dir = os.path.abspath(args[1])
    names = sorted(f[:-4] for f in os.listdir(golden_dir)
                   if f.endswith(".tfm") and os.path.isfile(os.path.join(golden_dir, f)))
    passed = failed = 0
    for name in names:
        problems = run_case(tfmc, golden_dir, name, update)
        if problems:
            failed += 1
            print("FAIL %s: %s" % (name, "; ".join(p.splitlines()[0] for p in problems)))
            for p in problems:
                for line in p.splitlines()[1:]:
                    print("    " + line)
        else:
            passed += 1
    if update:
        print("updated the .err files of %d cases: review every one" % len(names))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not names else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
