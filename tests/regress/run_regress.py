#!/usr/bin/env python3
"""run_regress.py TFMC DIR: each DIR/*.tfm states `# expect: TOKENS => OUTPUT`; the interpreter,
the compiled transformer (run, at -O0 and -O2) must print OUTPUT, and verify must pass."""
import os, re, subprocess, sys

tfmc, folder = sys.argv[1], sys.argv[2]
passed = failed = 0
for f in sorted(os.listdir(folder)):
    if not f.endswith(".tfm"):
        continue
    path = os.path.join(folder, f)
    m = re.search(r"#\s*expect:\s*(.*?)\s*=>\s*(.*)", open(path).read())
    toks, want = m.group(1).split(), m.group(2).strip()
    # `# eval-only`: the program is outside what the compiled transformer represents exactly
    # (a categorical aggregate of differing values), so only the interpreter is checked
    eval_only = "# eval-only" in open(path).read()
    for cmd in (["eval"],) if eval_only else (["eval"], ["run", "-O0"], ["run", "-O2"]):
        p = subprocess.run([tfmc] + cmd + [path, "--"] + toks, capture_output=True, text=True)
        ok = p.returncode == 0 and p.stdout.strip() == want
        passed, failed = passed + ok, failed + (not ok)
        if not ok:
            print("FAIL %s %s: got %r want %r %s" % (f, " ".join(cmd), p.stdout.strip(), want, p.stderr.strip()))
    if eval_only:
        continue
    p = subprocess.run([tfmc, "verify", path, "-O2"], capture_output=True, text=True)
    ok = p.returncode == 0
    passed, failed = passed + ok, failed + (not ok)
    if not ok:
        print("FAIL %s verify: %s" % (f, p.stdout[-400:]))
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
