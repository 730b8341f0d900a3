#!/usr/bin/env python3
"""check_llvm.py TFMC EXAMPLES_DIR REGRESS_DIR FIXTURES_DIR: the LLVM JIT backend end to end.

  RASP     every example on inputs.py's inputs (a seeded sample of at most SAMPLE) and every
           regression program (but those marked `# eval-only`, which the compiled transformer does
           not represent exactly) on its `# expect:` lines: `tfmc run --backend=llvm` must print
           exactly what `tfmc eval` prints (a regression: its hand-written outputs), line for line,
           at -O1 and at -O2; and `tfmc verify --backend=llvm` on each must find no difference;
  models   every model fixture with weights: `tfmc run --backend=llvm --logits` on check_cross.py's
           inputs within 1e-6 x max|logit| of `tfmc run --logits` (the interpreter backend, which
           check_models.py compares with PyTorch), and `--generate 4` the same ids.

And `ldd TFMC` names no libLLVM: the JIT is a module opened only when asked for.
When this build has no llvm backend (`tfmc run --backend=llvm` says "not in this build" or that
its module does not load), prints `skipped: ...` and exits 77. Prints a line per check and
`N passed, M failed`. Standard library only."""
import glob
import os
import random
import re
import shutil
import subprocess
import sys

from check_cross import has_weights, model_inputs
from inputs import format_input, make_inputs, read_header

SKIP = 77
SAMPLE = 150
TOLERANCE = 1e-6


def run(cmd, stdin=""):
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=600)


def main(argv):
    tfmc, examples, regress, fixtures = (os.path.abspath(a) for a in argv[1:5])
    probe = run([tfmc, "run", "--backend=llvm", os.path.join(examples, "sort.tfm"), "1"])
    if probe.returncode != 0 and ("not in this build" in probe.stderr or "does not load" in probe.stderr):
        print("skipped: " + probe.stderr.strip().splitlines()[-1])
        return SKIP
    passed = failed = 0

    def check(ok, what, detail=""):
        nonlocal passed, failed
        print("%s %s%s" % ("ok  " if ok else "FAIL", what, "" if ok or not detail else "\n     " + detail[:800]))
        passed += ok
        failed += not ok

    # the JIT is a module opened on demand: the command itself does not link libLLVM
    ldd = subprocess.run(["ldd", tfmc], capture_output=True, text=True) if shutil.which("ldd") else None
    if ldd and ldd.returncode == 0:
        check("libLLVM" not in ldd.stdout, "tfmc does not link libLLVM (the JIT's module is opened on demand)", ldd.stdout)

    rasp = sorted(glob.glob(os.path.join(examples, "*.tfm")))
    rasp += [f for f in sorted(glob.glob(os.path.join(regress, "*.tfm"))) if "# eval-only" not in open(f).read()]
    for path in rasp:
        name = os.path.basename(path)[:-4]
        text = open(path).read()
        expect = [(m.group(1).strip(), m.group(2).strip()) for m in re.finditer(r"#\s*expect:\s*(.*?)\s*=>\s*(.*)", text)]
        if path.startswith(regress):
            # a regression's own inputs and hand-written outputs (tests/regress), `--` before tokens
            picked = [t for t, _ in expect]
            stdin = "".join(t + "\n" for t in picked)
            want = subprocess.CompletedProcess([], 0, "".join(w + "\n" for _, w in expect), "")
        else:
            vocab, max_len = read_header(path)
            every = make_inputs(name, vocab, max_len)
            picked = random.Random("check_llvm:" + name).sample(every, min(SAMPLE, len(every)))
            stdin = "".join(format_input(s) + "\n" for s in picked)
            want = run([tfmc, "eval", path], stdin)
        for level in ("-O1", "-O2"):
            got = run([tfmc, "run", "--backend=llvm", level, path], stdin)
            check(got.returncode == want.returncode and got.stdout == want.stdout,
                  "%s %s: run --backend=llvm == %s on %d inputs" % (
                      name, level, "its expected outputs" if path.startswith(regress) else "eval", len(picked)),
                  "exit %d vs %d; stderr %s" % (got.returncode, want.returncode, got.stderr.strip()))
        v = run([tfmc, "verify", "--backend=llvm", path])
        # verified on every input, or no difference on a sample (a long program's inputs are too many)
        check(v.returncode == 0 and (v.stdout.startswith("verified") or "no difference on" in v.stdout),
              "%s: verify --backend=llvm" % name,
              v.stdout + v.stderr)

    models = [f for f in sorted(glob.glob(os.path.join(fixtures, "*.tfm"))) if has_weights(f)]
    for path in models:
        name = os.path.basename(path)[:-4]
        lines = model_inputs(name, path)
        stdin = "".join(line + "\n" for line in lines)
        want = run([tfmc, "run", "--logits", "--threads", "1", path], stdin)
        got = run([tfmc, "run", "--backend=llvm", "--logits", "--threads", "1", path], stdin)
        worst, why = 0.0, ""
        if got.returncode != 0 or want.returncode != 0:
            why = "exit %d/%d: %s %s" % (got.returncode, want.returncode, got.stderr.strip(), want.stderr.strip())
        else:
            for w, g in zip(want.stdout.splitlines(), got.stdout.splitlines()):
                a, b = [float(x) for x in w.split()], [float(x) for x in g.split()]
                scale = max(abs(x) for x in a) or 1.0
                if len(a) != len(b):
                    why = "%d logits vs %d" % (len(b), len(a))
                    break
                worst = max(worst, max(abs(x - y) for x, y in zip(a, b)) / scale)
            if len(want.stdout.splitlines()) != len(lines) or len(got.stdout.splitlines()) != len(lines):
                why = "line counts differ"
        check(not why and worst <= TOLERANCE, "%s: --backend=llvm --logits within %g x max|logit| (%.2g)" % (
            name, TOLERANCE, worst), why)
        short = "".join(line + "\n" for line in lines if len(line.split()) + 4 <= 16)  # room for 4 more
        want = run([tfmc, "run", "--generate", "4", path], short)
        got = run([tfmc, "run", "--backend=llvm", "--generate", "4", path], short)
        check(want.returncode == 0 and got.returncode == 0 and got.stdout == want.stdout and bool(want.stdout.strip()),
              "%s: --backend=llvm --generate 4 == interp" % name, got.stderr + want.stderr)
    if not rasp or not models:
        check(False, "programs found", "no RASP programs or no model fixtures")
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    sys.exit(main(sys.argv))
