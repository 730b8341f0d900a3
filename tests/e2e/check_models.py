#!/usr/bin/env python3
"""check_models.py TFMC FIXTURES_DIR [--cc gcc,clang] [--san]

Every model fixture (tests/fixtures, made from PyTorch by gen.py) through the command line:
`tfmc run` plain (argmax per position), `--logits` (last position) and `--generate 8`, and the
generated C built with `--main` (gcc and clang, -std=c99 -pedantic -Werror) in the same three
modes, each against the PyTorch expectations: logits within 1e-4 x max(1, max|logit|), argmax and
generated ids equal. Then both again at 2, 3 and 4 threads (prefill and decode on different counts
too, every kernel cut as finely as it goes: --task-grain 1): the output must equal one thread's
character for character (the logits are printed with %.9g, which tells every float apart).
Standard library only."""
import json, os, shutil, struct, subprocess, sys, tempfile
from concurrent.futures import ThreadPoolExecutor
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import limits  # noqa: E402  (tests/limits.py: scaled timeouts, confirmed by a rerun)


def read_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    data = raw[8 + n:]
    out = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        assert t["dtype"] == "F32"
        vals = list(struct.unpack("<%df" % ((b - a) // 4), data[a:b]))
        shape = t["shape"]
        out[name] = [vals[i * shape[1]:(i + 1) * shape[1]] for i in range(shape[0])] if len(shape) == 2 else vals
    return out


def argmax(v):
    return max(range(len(v)), key=lambda i: (v[i], -i))


def check_outputs(label, run, tokens, exp):
    """run(args) -> stdout; returns a list of (ok, message)."""
    res = []
    toks = [str(t) for t in tokens]
    logits = exp["logits"]
    tol = 1e-4 * max(1.0, max(abs(x) for row in logits for x in row))
    plain = run(toks)
    want = " ".join(str(argmax(r)) for r in logits)
    res.append((plain.strip() == want, "%s plain: got %r want %r" % (label, plain.strip()[:80], want[:80])))
    got = [float(x) for x in run(["--logits"] + toks).split()]
    diff = max(abs(a - b) for a, b in zip(got, logits[-1])) if len(got) == len(logits[-1]) else float("inf")
    res.append((diff <= tol, "%s --logits: max|diff| %.3g (tolerance %.3g)" % (label, diff, tol)))
    gen = run(["--generate", "8"] + toks).split()
    want = [str(int(x)) for x in exp["generated"]]
    res.append((gen == want, "%s --generate 8: got %s want %s" % (label, " ".join(gen), " ".join(want))))
    return res


THREADS = ["2", "3", "4", "4,2", "1,3"]


def check_threads(label, run, tokens):
    """The three modes at several thread counts against one thread, exactly."""
    res = []
    toks = [str(t) for t in tokens]
    for mode in ([], ["--logits"], ["--generate", "8"]):
        want = run(["--threads", "1"] + mode + toks)
        for t in THREADS:
            got = run(["--threads", t, "--task-grain", "1"] + mode + toks)
            res.append((got == want and not got.startswith("exit"),
                        "%s %s --threads %s: %r, one thread %r" % (label, " ".join(mode), t, got[:60], want[:60])))
    return res


def one(tfmc, fixtures, name, compilers, san, tmp):
    tfm = os.path.join(fixtures, name + ".tfm")
    exp = read_safetensors(os.path.join(fixtures, name + ".expected.safetensors"))
    tokens = [int(x) for x in exp["tokens"]]

    def run_tfmc(args):
        p = limits.sprun([tfmc, "run", tfm] + args, capture_output=True, text=True, timeout=120)
        if p.returncode:
            return "exit %d: %s" % (p.returncode, p.stderr.strip())
        return p.stdout

    results = check_outputs(name + " tfmc run", run_tfmc, tokens, exp)
    results += check_threads(name + " tfmc run", run_tfmc, tokens)
    # --emit=weights writes any model's weights in our scheme: reading them back `as tfmc` must
    # give the very same logits (a GPT-2 or Llama checkpoint included).
    exported = os.path.join(tmp, name + ".ours.safetensors")
    p = subprocess.run([tfmc, tfm, "--emit=weights", "-o", exported], capture_output=True, text=True)
    text = open(tfm).read()
    import re
    mirror = os.path.join(tmp, name + ".ours.tfm")
    open(mirror, "w").write(re.sub(r'weights\s+"[^"]*"(\s+as\s+\w+)?', 'weights "%s"' % exported, text))
    again = subprocess.run([tfmc, "run", mirror, "--logits"] + [str(t) for t in tokens], capture_output=True, text=True)
    results.append((p.returncode == 0 and again.returncode == 0 and again.stdout == run_tfmc(["--logits"] + [str(t) for t in tokens]),
                    "%s --emit=weights round trip: %s" % (name, (p.stderr + again.stderr).strip()[:200])))
    src = os.path.join(tmp, name + ".c")
    p = subprocess.run([tfmc, tfm, "-o", src, "--main"], capture_output=True, text=True)
    if p.returncode:
        return results + [(False, "%s: tfmc -o failed: %s" % (name, p.stderr.strip()))]
    flags = subprocess.run([tfmc, "config", "--cflags", "--libs"], capture_output=True, text=True).stdout.split()
    for cc in compilers:
        exe = os.path.join(tmp, "%s_%s" % (name, cc))
        # a ThreadSanitizer build's runtime brings -fsanitize=thread in its flags (ASan cannot join it)
        extra = ([] if "-fsanitize=thread" in flags else ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]) + ["-g"] if san else []
        b = subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"] + extra + [src] + flags +
                           ["-o", exe], capture_output=True, text=True)
        if b.returncode:
            results.append((False, "%s: %s build failed: %s" % (name, cc, b.stderr[:400])))
            continue

        def run_c(args, exe=exe):
            p = limits.sprun([exe] + args, capture_output=True, text=True, timeout=120)
            if p.returncode or p.stderr:
                return "exit %d: %s" % (p.returncode, p.stderr.strip()[:300])
            return p.stdout

        results += check_outputs("%s C (%s)" % (name, cc), run_c, tokens, exp)
        results += check_threads("%s C (%s)" % (name, cc), run_c, tokens)
    return results


def main():
    args = sys.argv[1:]
    san = "--san" in args
    compilers = ["gcc", "clang"]
    if "--cc" in args:
        compilers = args[args.index("--cc") + 1].split(",")
    pos = [a for i, a in enumerate(args) if not a.startswith("--") and (i == 0 or args[i - 1] != "--cc")]
    tfmc, fixtures = os.path.abspath(pos[0]), pos[1]
    limits.configure(tfmc)
    compilers = [c for c in compilers if shutil.which(c)]
    names = sorted(f[:-len(".expected.safetensors")] for f in os.listdir(fixtures) if f.endswith(".expected.safetensors"))
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=2) as pool:
        for results in pool.map(lambda n: one(tfmc, fixtures, n, compilers, san, tmp), names):
            for ok, msg in results:
                if ok:
                    passed += 1
                else:
                    failed += 1
                    print("FAIL " + msg)
    print("%d fixtures, compilers: %s" % (len(names), ", ".join(compilers) or "none"))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not names else 0


if __name__ == "__main__":
    sys.exit(main())
