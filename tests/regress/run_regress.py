#!/usr/bin/env python3
"""run_regress.py TFMC DIR: each DIR/*.tfm states one or more `# expect: TOKENS => OUTPUT`; the
interpreter, the compiled transformer (run, at -O0 and -O2) and the -O2 generated C (--main, one
sequence per line on standard input) must print OUTPUT, and verify must pass."""
import os, re, subprocess, sys, tempfile

tfmc, folder = sys.argv[1], sys.argv[2]
passed = failed = 0


def check(ok, msg):
    global passed, failed
    passed, failed = passed + ok, failed + (not ok)
    if not ok:
        print("FAIL " + msg)


flags = subprocess.run([tfmc, "config", "--cflags", "--libs"], capture_output=True, text=True).stdout.split()
with tempfile.TemporaryDirectory() as tmp:
    for f in sorted(os.listdir(folder)):
        if not f.endswith(".tfm"):
            continue
        path = os.path.join(folder, f)
        text = open(path).read()
        cases = [(m.group(1).split(), m.group(2).strip()) for m in re.finditer(r"#\s*expect:\s*(.*?)\s*=>\s*(.*)", text)]
        # `# eval-only`: the program is outside what the compiled transformer represents exactly
        # (a categorical aggregate of differing values), so only the interpreter is checked
        eval_only = "# eval-only" in text
        for toks, want in cases:
            for cmd in (["eval"],) if eval_only else (["eval"], ["run", "-O0"], ["run", "-O2"]):
                p = subprocess.run([tfmc] + cmd + [path, "--"] + toks, capture_output=True, text=True)
                check(p.returncode == 0 and p.stdout.strip() == want,
                      "%s %s: got %r want %r %s" % (f, " ".join(cmd), p.stdout.strip(), want, p.stderr.strip()))
        if eval_only:
            continue
        src, exe = os.path.join(tmp, f + ".c"), os.path.join(tmp, f + ".bin")
        gen = subprocess.run([tfmc, path, "-O2", "--main", "-o", src], capture_output=True, text=True)
        cc = subprocess.run(["cc", "-std=c99", "-O2", src] + flags + ["-o", exe], capture_output=True, text=True)
        check(gen.returncode == 0 and cc.returncode == 0, "%s: the -O2 C does not build: %s" % (f, cc.stderr[:300]))
        if gen.returncode == 0 and cc.returncode == 0:
            lines = "".join(" ".join(t) + "\n" for t, _ in cases)
            p = subprocess.run([exe], input=lines, capture_output=True, text=True)
            got = p.stdout.splitlines()
            check(got == [w for _, w in cases], "%s C: got %r want %r %s" % (f, got, [w for _, w in cases], p.stderr))
        p = subprocess.run([tfmc, "verify", path, "-O2"], capture_output=True, text=True)
        check(p.returncode == 0, "%s verify: %s" % (f, p.stdout[-400:]))
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
