#!/usr/bin/env python3
"""check_quantize.py TFMC: weight-only int8 (--quantize=int8, int8:group=G; docs/quantize.md).

A declared model with random weights (dim 80, so group 32 leaves a tail group of 16 in every row of
80 and of 200) is compiled float and quantised (per row and group=32), and:
  - the rule: the int8 values and scales written into the generated C (--byte-arrays=off) are those
    computed here from the float weights (`--emit=weights`) by the documented rule, scale =
    max|w| / 127 of the row or group in float32 and q = w / scale rounded half away from zero; the
    embeddings and the output head stay float;
  - accuracy: at every position (each prefix's last-position --logits), max |int8 - float| logit
    error at most 5% of max |float logit| (measured values printed), and the argmax (one prefill,
    every position) the same on at least 90% of positions;
  - agreement: interp at 1 and 2 threads bit-identical (the printed %.9g text), the llvm backend
    identical to interp (`skipped` when this build has no LLVM), the generated portable C (gcc and
    clang `-std=c99 -Wall -Wextra -Werror -pedantic`, byte strings, hexadecimal, --weights=separate;
    1 and 2 threads) identical to interp, the SIMD backend's file (one thread: it has no pool) within
    1e-5 x max|logit|, and so is the SIMD file for NEON under qemu-aarch64 (skipped without
    aarch64-linux-gnu-gcc or qemu-aarch64);
  - size: the weight arrays of the int8 C at least 3x smaller in bytes than the float C's;
  - identity: `block shared x 2` quantises and writes its 7 matrices once, used by 14 calls;
  - a RASP program is refused with a message naming the reason.
Prints a line per check and `N passed, M failed`. Standard library only."""
import json
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile

FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1"]
MODEL = """model qm {
  vocab 40;
  max_len 24;
  dim 80;
  init random(seed 5);
  embed token, position rope(base 10000);
  block %s2 {
    attention heads 4, causal, norm rmsnorm(eps 1e-5), bias false;
    mlp hidden 200, act swiglu, norm rmsnorm(eps 1e-5), bias false;
  }
  norm rmsnorm(eps 1e-5);
  unembed separate;
}
"""
# other targets of the SIMD file, where the tools exist (check_simd.py's): NEON under qemu-aarch64
CROSS_CC, QEMU_ARM = "aarch64-linux-gnu-gcc", "qemu-aarch64"
SEQ = [3, 17, 5, 29, 0, 11, 38, 2, 21, 8, 13, 34, 7, 19, 26, 1, 30, 9, 15, 24]
LOGIT_TOL = 0.05   # max |int8 - float| logit error, as a fraction of max |float logit|
ARGMAX_AGREE = 0.9  # positions whose argmax is unchanged


def run(cmd, stdin=""):
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=600)


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def round_away(v):
    return -int(-v + 0.5) if v < 0 else int(v + 0.5)


def read_safetensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8:8 + n])
    out = {}
    for name, t in head.items():
        if name == "__metadata__":
            continue
        lo, hi = t["data_offsets"]
        out[name] = (t["shape"], struct.unpack("<%df" % ((hi - lo) // 4), b[8 + n + lo:8 + n + hi]))
    return out


def c_arrays(text):
    """The arrays of a generated C file written with --byte-arrays=off: name -> (type, values)."""
    arrays = {}
    for m in re.finditer(r"const (float|int8_t) (\w+)\[(\d+)\] = \{([^}]*)\}", text):
        vals = m.group(4).replace(",", " ").split()
        conv = (lambda s: float.fromhex(s.rstrip("f")) if s != "0" else 0.0) if m.group(1) == "float" else int
        arrays[m.group(2)] = (m.group(1), [conv(v) for v in vals])
    return arrays


def weight_bytes(text):
    """Bytes of the weight arrays of a generated C file (any of its forms)."""
    total = 0
    for m in re.finditer(r"const (float|int8_t) \w+\[(\d+)\] = \{", text):
        total += int(m.group(2)) * (4 if m.group(1) == "float" else 1)
    for m in re.finditer(r"const union \w+ \{ unsigned char b\[(\d+)\];", text):
        total += int(m.group(1))
    return total


def logits_lines(out):
    return [[float(v) for v in line.split()] for line in out.splitlines() if line.strip()]


def main(argv):
    tfmc = os.path.abspath(argv[1])
    lib_flags = shlex.split(run([tfmc, "config", "--cflags", "--libs"]).stdout)
    compilers = [c for c in ("gcc", "clang") if shutil.which(c)]
    passed = failed = 0

    def check(ok, what, detail=""):
        nonlocal passed, failed
        print("%s %s%s" % ("ok  " if ok else "FAIL", what, "" if ok or not detail else "\n     " + str(detail)[-1500:]))
        passed += ok
        failed += not ok

    prefixes = "".join(" ".join(map(str, SEQ[:i])) + "\n" for i in range(1, len(SEQ) + 1))
    whole = " ".join(map(str, SEQ)) + "\n"
    with tempfile.TemporaryDirectory(prefix="check_quantize.") as tmp:
        model = os.path.join(tmp, "qm.tfm")
        with open(model, "w") as f:
            f.write(MODEL % "x ")
        # the float model
        ref = run([tfmc, "run", model, "--logits", "--threads", "1"], prefixes)
        ref_argmax = run([tfmc, "run", model, "--threads", "1"], whole)
        check(ref.returncode == 0 and ref_argmax.returncode == 0, "float model runs", ref.stderr + ref_argmax.stderr)
        if ref.returncode != 0:
            print("%d passed, %d failed" % (passed, failed))
            return 1
        ref_logits = logits_lines(ref.stdout)
        big = max(abs(v) for row in ref_logits for v in row)
        wfile = os.path.join(tmp, "w.safetensors")
        e = run([tfmc, model, "--emit=weights", "-o", wfile])
        check(e.returncode == 0, "float weights exported", e.stderr)
        weights = read_safetensors(wfile)
        fc = os.path.join(tmp, "float.c")
        g = run([tfmc, model, "--byte-arrays=off", "-o", fc])
        float_bytes = weight_bytes(open(fc).read()) if g.returncode == 0 else 0

        for mode, group in (("int8", 0), ("int8:group=32", 32)):
            q = ["--quantize=" + mode]
            # the rule, read back from the generated C
            hc = os.path.join(tmp, "q%d.c" % group)
            g = run([tfmc, model, "--byte-arrays=off", "-o", hc] + q)
            check(g.returncode == 0, "%s: generates C" % mode, g.stderr)
            text = open(hc).read() if g.returncode == 0 else ""
            arrays = c_arrays(text)
            matrices = wrong = 0
            for name, (shape, w) in sorted(weights.items()):
                if len(shape) != 2 or not name.startswith("layers."):
                    continue
                ident = "qm_" + re.sub(r"[^A-Za-z0-9]", "_", name)
                if ident + "_q8" not in arrays:
                    check(False, "%s: %s is in int8" % (mode, name))
                    continue
                rows, cols = shape
                G = group if 0 < group < cols else cols
                groups = (cols + G - 1) // G
                qv, sv = arrays[ident + "_q8"][1], arrays[ident + "_scale"][1]
                matrices += 1
                for r in range(rows):
                    for gi in range(groups):
                        c0, c1 = gi * G, min(cols, gi * G + G)
                        m = max(abs(w[r * cols + c]) for c in range(c0, c1))
                        s = f32(m / 127.0)
                        wrong += sv[r * groups + gi] != s
                        for c in range(c0, c1):
                            want = max(-127, min(127, round_away(f32(w[r * cols + c] / s)))) if s > 0 else 0
                            wrong += qv[r * cols + c] != want
            check(matrices == 14 and wrong == 0, "%s: %d matrices' int8 values and scales follow the rule (%d differ)"
                  % (mode, matrices, wrong))
            check(arrays.get("qm_embed_token_weight", ("",))[0] == "float"
                  and arrays.get("qm_unembed_weight", ("",))[0] == "float" and "qm_unembed_weight_q8" not in arrays, "%s: embeddings and head stay float" % mode,
                  sorted(a for a in arrays if "emb" in a))
            qbytes = weight_bytes(text)
            check(float_bytes > 0 and float_bytes >= 3 * qbytes, "%s: weight bytes of the C %d vs %d float: %.2fx smaller"
                  % (mode, qbytes, float_bytes, float_bytes / max(qbytes, 1)))
            # accuracy against the float model
            r1 = run([tfmc, "run", model, "--logits", "--threads", "1"] + q, prefixes)
            r2 = run([tfmc, "run", model, "--logits", "--threads", "2", "--task-grain", "1"] + q, prefixes)
            am = run([tfmc, "run", model, "--threads", "1"] + q, whole)
            check(r1.returncode == 0 and am.returncode == 0, "%s: runs" % mode, r1.stderr + am.stderr)
            if r1.returncode != 0:
                continue
            ql = logits_lines(r1.stdout)
            err = max(abs(a - b) for x, y in zip(ql, ref_logits) for a, b in zip(x, y))
            check(len(ql) == len(ref_logits) and err <= LOGIT_TOL * big,
                  "%s: max logit error %.3g = %.2f%% of max |logit| %.3g (allowed %.0f%%)"
                  % (mode, err, 100 * err / big, big, 100 * LOGIT_TOL))
            a, b = am.stdout.split(), ref_argmax.stdout.split()
            agree = sum(x == y for x, y in zip(a, b)) / max(len(b), 1)
            check(len(a) == len(b) == len(SEQ) and agree >= ARGMAX_AGREE,
                  "%s: argmax unchanged at %d of %d positions" % (mode, sum(x == y for x, y in zip(a, b)), len(b)))
            check(r2.returncode == 0 and r2.stdout == r1.stdout, "%s: interp 2 threads bit-identical to 1" % mode,
                  r2.stderr)
            lv = run([tfmc, "run", model, "--logits", "--backend=llvm", "--threads", "2"] + q, prefixes)
            if lv.returncode != 0 and "llvm" in lv.stderr and ("not" in lv.stderr or "unavailable" in lv.stderr):
                print("skipped %s: llvm backend not in this build (%s)" % (mode, lv.stderr.strip()[:120]))
            else:
                check(lv.returncode == 0 and lv.stdout == r1.stdout, "%s: llvm identical to interp" % mode,
                      lv.stderr[:500])
            # the generated C, each way
            for way, opts in (("bytes", ["--byte-arrays=1"]), ("hex", ["--byte-arrays=off"]),
                              ("separate", ["--byte-arrays=1", "--weights=separate"]), ("simd", ["--backend=simd"])):
                d = os.path.join(tmp, "%s-%d" % (way, group))
                os.makedirs(d)
                c = os.path.join(d, "qm.c")
                g = run([tfmc, model, "-o", c, "--main"] + q + opts)
                if g.returncode != 0:
                    check(False, "%s %s: generates" % (mode, way), g.stderr)
                    continue
                sources = [c] + ([os.path.join(d, "qm_weights.c")] if way == "separate" else [])
                link = ["-lm"] if way == "simd" else lib_flags
                for cc in compilers:
                    exe = os.path.join(d, "qm-" + cc)
                    bld = run([cc] + FLAGS + (["-O2"] if way == "simd" else []) + sources + ["-o", exe] + link)
                    if bld.returncode != 0:
                        check(False, "%s %s: builds with %s" % (mode, way, cc), bld.stderr)
                        continue
                    # (the SIMD file runs on the calling thread: its main takes no pool)
                    outs = [run([exe, "--logits", "--threads", str(t)], prefixes) for t in ((1,) if way == "simd" else (1, 2))]
                    if way == "simd":
                        sl = logits_lines(outs[0].stdout) if outs[0].returncode == 0 else []
                        d_max = max((abs(x - y) for u, v in zip(sl, ql) for x, y in zip(u, v)), default=float("inf"))
                        check(len(sl) == len(ql) and d_max <= 1e-5 * big,
                              "%s simd (%s): within 1e-5 x max|logit| of interp (%.3g)" % (mode, cc, d_max),
                              outs[0].stderr)
                    else:
                        check(outs[0].stdout == r1.stdout, "%s %s (%s): identical to interp" % (mode, way, cc),
                              outs[0].stderr + outs[0].stdout[:200])
                    if way != "simd":
                        check(outs[0].returncode == 0 and outs[1].stdout == outs[0].stdout,
                              "%s %s (%s): 2 threads bit-identical to 1" % (mode, way, cc))
            # the SIMD file for NEON, cross-compiled and run under qemu-aarch64
            if shutil.which(CROSS_CC) and shutil.which(QEMU_ARM):
                d = os.path.join(tmp, "neon-%d" % group)
                os.makedirs(d)
                c, exe = os.path.join(d, "qm.c"), os.path.join(d, "qm")
                g = run([tfmc, model, "-o", c, "--main", "--backend=simd", "--target=neon"] + q)
                bld = run([CROSS_CC] + FLAGS + ["-O2", "-static", c, "-o", exe, "-lm"]) if g.returncode == 0 else g
                out = run([QEMU_ARM, exe, "--logits"], prefixes) if bld.returncode == 0 else bld
                nl = logits_lines(out.stdout) if out.returncode == 0 else []
                d_max = max((abs(x - y) for u, v in zip(nl, ql) for x, y in zip(u, v)), default=float("inf"))
                check(len(nl) == len(ql) and d_max <= 1e-5 * big,
                      "%s neon (qemu-aarch64): within 1e-5 x max|logit| of interp (%.3g)" % (mode, d_max),
                      g.stderr + bld.stderr + out.stderr)
            else:
                print("skipped %s neon: %s or %s not found" % (mode, CROSS_CC, QEMU_ARM))
        # a shared block: its matrices quantised and written once
        shared = os.path.join(tmp, "shared.tfm")
        with open(shared, "w") as f:
            f.write(MODEL % "shared x ")
        sc = os.path.join(tmp, "shared.c")
        g = run([tfmc, shared, "--quantize=int8", "--report", "--byte-arrays=off", "-o", sc])
        text = open(sc).read() if g.returncode == 0 else ""
        decls = re.findall(r"const int8_t (\w+)\[", text)
        logged = [ln for ln in g.stderr.splitlines() if ln.startswith("quantize: layers")]
        check(g.returncode == 0 and len(decls) == 7 and len(set(decls)) == 7 and len(logged) == 7,
              "shared x 2: 7 matrices quantised and written once (%d arrays, %d report lines)" % (len(decls), len(logged)),
              g.stderr[-800:])
        calls = text.count("tfmcrt_linear_q8_ex(ex")
        check(calls == 14, "shared x 2: the int8 kernel called for both applications (%d calls)" % calls)
        table = [ln.split() for ln in g.stderr.splitlines() if ln.strip().startswith("memplan")]
        cbytes = weight_bytes(text)
        check(table and int(table[-1][4]) == cbytes, "--report: weight B %s is the C's weight arrays' %d bytes"
              % (table[-1][4] if table else "?", cbytes))
        rep = [ln for ln in logged if re.search(r"scales [-0-9.e]+\.\.[-0-9.e]+, \|w - q\*s\| max [0-9.e-]+ mean", ln)]
        check(len(rep) == 7, "--report: per matrix the scale range and the max and mean error", "\n".join(logged[:2]))
        # RASP: refused
        rasp = os.path.join(tmp, "r.tfm")
        with open(rasp, "w") as f:
            f.write('rasp p {\n  vocab {"a", "b"};\n  max_len 4;\n  return selector_width(select(tokens, tokens, true));\n}\n')
        g = run([tfmc, "run", rasp, "--quantize=int8", "a", "b"])
        check(g.returncode != 0 and "declared models" in g.stderr, "a RASP program is refused", g.stderr)
        bad = run([tfmc, "run", model, "--quantize=int4", "1"])
        check(bad.returncode != 0 and "--quantize=int8" in bad.stderr, "--quantize=int4 is a usage error", bad.stderr)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
