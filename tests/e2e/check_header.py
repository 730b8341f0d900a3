#!/usr/bin/env python3
"""check_header.py TFMC EXAMPLES_DIR FIXTURES_DIR: the header of generated C.

`TFMC FILE -o DIR/NAME.c` also writes DIR/NAME.h. A driver written here, in a file of its own
that includes only NAME.h, calls the entry points the header declares, and is linked with NAME.c
(which stays self-contained: it also builds alone). For every RASP example the driver encodes
tokens, runs NAME_forward and prints NAME_value_name or the number; for model fixtures it prefills
ids and prints the argmax at each position (RASP programs with a numerical output are left to
check_compiled.py, which reads their numbers). Their output must equal `tfmc eval` / `tfmc run` on
the same inputs. The same with `--backend=simd` (the file holds the runtime: linked with -lm only).
`-o -` writes no header. Standard library only."""
import glob
import os
import re
import shlex
import subprocess
import sys
import tempfile

RASP_DRIVER = r'''
#include <stdio.h>
#include <stdlib.h>
#include "%(P)s.h"
static float arena[%(U)s_ARENA_FLOATS];
int main(int argc, char **argv)
{
    %(P)s_ctx ctx;
    int tokens[%(U)s_MAX_LEN], i;
    %(P)s_out_t out[%(U)s_MAX_LEN];
    if (argc - 1 > %(U)s_MAX_LEN || %(P)s_init(&ctx, arena, sizeof arena) != 0) return 2;
    for (i = 1; i < argc; i++)
        if ((tokens[i - 1] = %(P)s_encode(argv[i])) < 0) return 3;
    if (%(P)s_forward(&ctx, tokens, argc - 1, out) != 0) return 4;
    for (i = 0; i < argc - 1; i++) printf("%%s%%s", i ? " " : "", %(P)s_value_name(out[i]));
    printf("\n");
    return 0;
}
'''

MODEL_DRIVER = r'''
#include <stdio.h>
#include <stdlib.h>
#include "%(P)s.h"
static float arena[%(U)s_ARENA_FLOATS];
static float logits[%(U)s_MAX_LEN * %(U)s_VOCAB];
int main(int argc, char **argv)
{
    %(P)s_ctx ctx;
    int ids[%(U)s_MAX_LEN], i, v;
    if (argc - 1 > %(U)s_MAX_LEN || %(P)s_init(&ctx, arena, sizeof arena) != 0) return 2;
    for (i = 1; i < argc; i++) ids[i - 1] = atoi(argv[i]);
    if (%(P)s_prefill(&ctx, ids, argc - 1, logits) != 0) return 4;
    for (i = 0; i < argc - 1; i++) {
        int best = 0;
        for (v = 1; v < %(U)s_VOCAB; v++)
            if (logits[i * %(U)s_VOCAB + v] > logits[i * %(U)s_VOCAB + best]) best = v;
        printf("%%s%%d", i ? " " : "", best);
    }
    printf("\n");
    return 0;
}
'''


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


def main(argv):
    tfmc, examples, fixtures = (os.path.abspath(a) for a in argv[1:4])
    flags = shlex.split(run([tfmc, "config", "--cflags", "--libs"]).stdout)
    san = [f for f in os.environ.get("CHECK_HEADER_CFLAGS", "").split() if f]
    failed = passed = 0
    cases = []
    for f in sorted(glob.glob(os.path.join(examples, "*.tfm"))):
        head = open(f).read()
        vocab = head[head.index("vocab {") + 7:head.index("}", head.index("vocab {"))]
        words = []
        for t in vocab.split(","):
            t = t.strip().strip('"')
            if ".." in t:  # a range: its first values
                lo, hi = (int(x) for x in t.split(".."))
                words += [str(v) for v in range(lo, min(hi, lo + 3) + 1)]
            elif t:
                words.append(t)
        inputs = (words[:3] + words[:1] * 3)[:4]  # distinct values first, four tokens
        cases.append((f, "rasp", inputs))
    for name in ("gpt2", "llama", "moe"):
        cases.append((os.path.join(fixtures, name + ".tfm"), "model", ["1", "5", "9", "3"]))
    with tempfile.TemporaryDirectory(prefix="check_header.") as top:
        for backend in ("c", "simd"):
            tmp = os.path.join(top, backend)
            os.makedirs(tmp)
            link = flags if backend == "c" else ["-lm"]
            for path, kind, inputs in cases:
                stem = os.path.splitext(os.path.basename(path))[0]
                out_c = os.path.join(tmp, stem + ".c")
                p = run([tfmc, path, "-o", out_c, "--backend=" + backend])
                if p.returncode != 0 or not os.path.exists(os.path.join(tmp, stem + ".h")):
                    print("FAIL %s: no header (%s)" % (stem, p.stderr.strip()))
                    failed += 1
                    continue
                prog = open(out_c).read()
                pname = re.search(r"^typedef struct (\w+)_ctx \{", prog, re.M).group(1)
                if kind == "rasp":
                    if "typedef float %s_out_t" % pname in prog:
                        continue  # a numerical output
                    src = RASP_DRIVER % {"P": pname, "U": pname.upper()}
                    want = run([tfmc, "eval", path] + inputs).stdout.split()
                else:
                    src = MODEL_DRIVER % {"P": pname, "U": pname.upper()}
                    want = run([tfmc, "run", path, "--threads", "1"] + inputs).stdout.split()
                driver = os.path.join(tmp, stem + "_driver.c")
                with open(driver, "w") as d:
                    d.write(src)
                exe = os.path.join(tmp, stem + "_exe")
                b = run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", "-I", tmp, driver, out_c,
                         "-o", exe] + san + link)
                alone = run(["gcc", "-std=c99", "-O0", "-c", out_c, "-o", os.path.join(tmp, stem + ".o")] + san + link)
                if b.returncode != 0 or alone.returncode != 0:
                    print("FAIL %s: the driver with %s.h does not build:\n%s%s" % (stem, stem, b.stderr, alone.stderr))
                    failed += 1
                    continue
                got = run([exe] + inputs)
                ok = got.returncode == 0 and len(want) == len(inputs) and got.stdout.split() == want
                print("%s %s (%s, --backend=%s): driver %s, tfmc %s" % ("ok  " if ok else "FAIL", stem, kind, backend,
                                                                      got.stdout.split(), want))
                passed += ok
                failed += not ok
        p = run([tfmc, cases[0][0], "-o", "-"], cwd=top)
        if p.returncode != 0 or glob.glob(os.path.join(top, "-.h")):
            print("FAIL -o - wrote a header or failed")
            failed += 1
        else:
            passed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
