#!/usr/bin/env python3
"""check_passes.py TFMC EXAMPLES_DIR FIXTURES_DIR

The optimisation passes end to end. RASP examples: at -O0, -O1 and -O2 the transformer equals the
interpreter (`tfmc verify`, exhaustive up to length 5), `tfmc run -O2` prints exactly what `-O0`
prints on every input, the generated C at -O2 (--main) prints what eval prints, and -O2 stores
fewer parameters and FLOPs than -O0 (--report). Model fixtures (lossless passes): --logits at -O2
within 1e-5 x max(1, max|logit|) of -O0. Standard library only."""
import os, re, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from inputs import make_inputs, read_header  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import limits  # noqa: E402  (tests/limits.py: scaled timeouts, confirmed by a rerun)


def sh(args, stdin=None):
    return limits.sprun(args, input=stdin, capture_output=True, text=True, timeout=300)


def report_last(tfmc, args):
    p = sh([tfmc] + args + ["--report", "--emit=graph", "-o", os.devnull])
    row = [l for l in p.stderr.splitlines() if l.startswith("  ")][-1].split()
    return int(row[1]), float(row[3])


def main():
    tfmc, examples, fixtures = os.path.abspath(sys.argv[1]), sys.argv[2], sys.argv[3]
    limits.configure(tfmc)
    passed = failed = 0

    def check(ok, msg):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print("FAIL " + msg)

    flags = sh([tfmc, "config", "--cflags", "--libs"]).stdout.split()
    with tempfile.TemporaryDirectory() as tmp:
        for f in sorted(os.listdir(examples)):
            if not f.endswith(".tfm"):
                continue
            path, name = os.path.join(examples, f), f[:-4]
            vocab, max_len = read_header(path)
            lines = "".join(" ".join(map(str, s)) + "\n" for s in make_inputs(name, vocab, max_len))
            for level in ("-O0", "-O1", "-O2"):
                p = sh([tfmc, "verify", path, level, "--len", str(min(5, max_len))])
                check(p.returncode == 0, "%s verify %s: %s" % (name, level, p.stdout[-300:] + p.stderr))
            o0 = sh([tfmc, "run", "-O0", path], lines)
            o2 = sh([tfmc, "run", "-O2", path], lines)
            check(o0.returncode == 0 and o0.stdout == o2.stdout, "%s: run -O2 differs from run -O0" % name)
            ev = sh([tfmc, "eval", path], lines)
            src, exe = os.path.join(tmp, name + ".c"), os.path.join(tmp, name)
            b = sh([tfmc, path, "-O2", "--main", "-o", src])
            cc = sh(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", src] + flags + ["-o", exe])
            check(b.returncode == 0 and cc.returncode == 0, "%s: -O2 C does not build: %s" % (name, cc.stderr[:300]))
            if cc.returncode == 0:
                got = sh([exe], lines).stdout.splitlines()
                want = ev.stdout.splitlines()
                same = len(got) == len(want) and all(
                    g == w or (re.fullmatch(r"[-0-9.e+ _]+", g) and all(
                        x == y or (x != "_" and y != "_" and abs(float(x) - float(y)) <= 1e-4)
                        for x, y in zip(g.split(), w.split())))
                    for g, w in zip(got, want))
                check(same, "%s: -O2 C differs from eval" % name)
            p0, f0 = report_last(tfmc, [path, "-O0"])
            p2, f2 = report_last(tfmc, [path, "-O2"])
            check(p2 < p0 and f2 < f0, "%s: -O2 stores %d params, %g FLOPs; -O0 %d, %g" % (name, p2, f2, p0, f0))
        # a selector that never selects a later key makes the fused head causal (and only then);
        # verify proves the outputs unchanged
        for cmp, causal in (("<", True), ("<=", True), ("==", True), (">", False), (">=", False), ("!=", False)):
            path = os.path.join(tmp, "sel.tfm")
            with open(path, "w") as fh:
                fh.write('rasp sel {\n  vocab {1, 2, 3};\n  max_len 5;\n'
                         '  return numerical(aggregate(select(indices, indices, %s), numerical(tokens)));\n}\n' % cmp)
            g = sh([tfmc, path, "-O1", "--emit=graph", "-o", "-"])
            fused = [l for l in g.stdout.splitlines() if "fused_attention" in l]
            check(g.returncode == 0 and len(fused) == 1 and ("causal" in fused[0]) == causal,
                  "select(indices, indices, %s): fused head %s causal: %s" % (cmp, "not" if causal else "", g.stdout + g.stderr))
            for level in ("-O1", "-O2"):
                p = sh([tfmc, "verify", path, level])
                check(p.returncode == 0, "select(indices, indices, %s) verify %s: %s" % (cmp, level, p.stdout[-300:]))
        for f in sorted(os.listdir(fixtures)):
            if not f.endswith(".tfm"):
                continue
            path = os.path.join(fixtures, f)
            ids = ["1", "2", "3", "4", "5"]
            a = sh([tfmc, "run", "-O0", path, "--logits"] + ids)
            b = sh([tfmc, "run", "-O2", path, "--logits"] + ids)
            if a.returncode or b.returncode:
                check(False, "%s: %s %s" % (f, a.stderr, b.stderr))
                continue
            x, y = [float(v) for v in a.stdout.split()], [float(v) for v in b.stdout.split()]
            tol = 1e-5 * max(1.0, max(abs(v) for v in x))
            check(len(x) == len(y) and max(abs(p - q) for p, q in zip(x, y)) <= tol, "%s: -O2 logits differ from -O0" % f)
            # the generated C at -O2 (fused QKV, slices) prints what run -O2 prints
            src, exe = os.path.join(tmp, f + ".c"), os.path.join(tmp, f + ".bin")
            gen = sh([tfmc, path, "-O2", "--main", "-o", src])
            cc = sh(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", src] + flags + ["-o", exe])
            ok = gen.returncode == 0 and cc.returncode == 0
            check(ok and sh([exe, "--logits"] + ids).stdout == b.stdout, "%s: -O2 C differs from run -O2 %s" % (f, cc.stderr[:200]))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
