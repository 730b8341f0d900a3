#!/usr/bin/env python3
"""What the command line itself says: the header of generated C, the help texts, verify's verdicts.

usage: check_cli.py TFMC EXAMPLES_DIR

  options  the "Options:" line of generated C (a RASP program and a model) keeps every option with
           its value (`-o OUT`, `-p NAME`, `--program NAME`), shell-quoted: shlex.split gives the
           command line back, also for a path holding `*/`, a quote and a space (the file still
           compiles: the comment is not ended early); a very long command line ends in ` ...`;
  help     `tfmc --help`, `tfmc help run`, `tfmc run --help` and `tfmc help compile` describe
           models (--logits, --generate K, token ids, prefill/decode/reset), and what they say
           holds: each model mode runs and prints what the help says, every NAME_function that
           `help compile` names is defined in the generated C of a model or a RASP program;
  verify   an exhaustive check says "verified `NAME`", a sampled one "no difference on K sampled
           inputs" and never "verified `"; counterexamples name their likely cause (a categorical
           aggregate of differing values, an undefined value beside defined ones, an undefined
           numerical SOp, `not` over an undefined SOp), none of them on the trace's lines.

Prints one line per check (`ok` or `FAIL`) and `N passed, M failed`; exits 1 on any failure.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

MODEL = """model tiny {
  vocab 16; max_len 8; dim 8;
  init random(seed 1);
  embed token, position learned;
  block x 1 { attention heads 2, causal; mlp hidden 8; }
}
"""

# Programs whose compiled weights meet a limit of docs/compiling.md, with the cause verify names.
CAUSES = {
    "mix": ("""rasp mix {
  vocab {1, 2, 3};
  max_len 4;
  prev = select(indices, indices, <=);
  got = aggregate(prev, tokens);
  return got;
}
""", "likely cause: the categorical aggregate `got` at line 5 selects differing values for position 2 (2 at 0, 1 at 1)"),
    "undef": ("""rasp undef {
  vocab {0, 1, 2};
  max_len 3;
  x = map(t -> t == 0 ? 1 / t : t, tokens);
  return aggregate(select(indices, indices, <=), x);
}
""", "likely cause: the categorical aggregate at line 5 selects an undefined value (at 2) beside 1 (at 0) for position 2"),
    "inv": ("""rasp inv {
  vocab {0, 1, 2};
  max_len 3;
  inv = numerical(map(t -> 6 / t, tokens));
  return inv;
}
""", "likely cause: the numerical SOp `inv` at line 4 is undefined at position 0"),
    "notsel": ("""rasp notsel {
  vocab {0, 1, 2};
  max_len 3;
  half = map(t -> t == 0 ? 1 / t : t, tokens);
  far = not select(half, half, ==);
  return numerical(aggregate(far, numerical(map(t -> 1, tokens))));
}
""", "likely cause: the selector `far` at line 5 uses `not` over `half`, which is undefined at position 0"),
}


class Checker:
    def __init__(self, tfmc, examples, tmp):
        self.tfmc, self.examples, self.tmp = tfmc, examples, tmp
        self.passed = self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print("ok   " + name)
        else:
            self.failed += 1
            print("FAIL " + name + ("\n    " + detail.replace("\n", "\n    ") if detail else ""))

    def tf(self, *args, stdin=None):
        return subprocess.run([self.tfmc, *args], input=stdin, capture_output=True, text=True, timeout=120)

    def options_line(self, path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith(" * Options: "):
                    return line[len(" * Options: "):].rstrip("\n")
        return None

    def cflags(self):
        return shlex.split(self.tf("config", "--cflags").stdout)

    # ------------------------------------------------------------------ options

    def options(self):
        reverse = os.path.join(self.examples, "reverse.tfm")
        out = os.path.join(self.tmp, "reverse.c")
        argv = ["-o", out, "--main", "-O2", "-p", "reverse", "--no-prune"]
        p = self.tf(reverse, *argv)
        got = self.options_line(out) if p.returncode == 0 else None
        self.check("options: a RASP program's values kept", got == " ".join(argv),
                   "exit %d, Options: %r, want %r\n%s" % (p.returncode, got, " ".join(argv), p.stderr))

        model = os.path.join(self.tmp, "tiny.tfm")
        with open(model, "w") as f:
            f.write(MODEL)
        out = os.path.join(self.tmp, "tiny.c")
        argv = ["--program", "tiny", "-o", out, "--main", "--emit=c", "-O1"]
        p = self.tf(model, *argv)
        got = self.options_line(out) if p.returncode == 0 else None
        self.check("options: a model's values kept", got == " ".join(argv),
                   "exit %d, Options: %r, want %r\n%s" % (p.returncode, got, " ".join(argv), p.stderr))

        # a path that would end the comment early, with a quote and a space: quoted, read back exactly
        odd_dir = os.path.join(self.tmp, "a*")
        os.mkdir(odd_dir)
        out = os.path.join(odd_dir, "b 'c'.c")
        argv = ["-o", out, "-p", "reverse", "--main"]
        p = self.tf(reverse, *argv)
        got = self.options_line(out) if p.returncode == 0 else None
        back = shlex.split(got) if got else None
        self.check("options: quoted words read back", back == argv and "*/" not in got,
                   "exit %d, Options: %r, read back as %r\n%s" % (p.returncode, got, back, p.stderr))
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc and p.returncode == 0:
            c = subprocess.run([cc, "-std=c99", "-fsyntax-only", *self.cflags(), out], capture_output=True, text=True)
            self.check("options: the quoted header still compiles", c.returncode == 0, c.stderr[-800:])

        out = os.path.join(self.tmp, "long.c")
        argv = ["-o", out] + ["-O1"] * 1000
        p = self.tf(reverse, *argv)
        got = self.options_line(out) if p.returncode == 0 else ""
        self.check("options: a long command line ends in ` ...`",
                   got.startswith("-o " + out + " -O1 -O1") and got.endswith(" -O1 ...") and len(got) < 2100,
                   "exit %d, %d characters, ends %r" % (p.returncode, len(got), got[-40:]))

    # --------------------------------------------------------------------- help

    def help(self):
        main = self.tf("--help").stdout
        run = self.tf("help", "run").stdout
        compile_ = self.tf("help", "compile").stdout
        for word in ["--logits", "--generate K", "ID..."]:
            self.check("help: --help names %s" % word, word in main, main)
        for word in ["--logits", "--generate K", "token ids 0..vocab-1", "prefill", "decode step", "KV cache",
                     "bidirectional", "max_len"]:
            self.check("help: help run names %s" % word, word in run, run)
        self.check("help: run --help is help run", self.tf("run", "--help").stdout == run)
        for word in ["NAME_prefill", "NAME_prefill_last", "NAME_decode", "NAME_reset", "--generate K"]:
            self.check("help: help compile names %s" % word, word in compile_, compile_)

        # what help run says of a model holds
        model = os.path.join(self.tmp, "tiny.tfm")
        plain = self.tf("run", model, "1", "2", "3")
        self.check("help: run MODEL prints an id per position",
                   plain.returncode == 0 and re.fullmatch(r"\d+ \d+ \d+\n", plain.stdout) is not None,
                   plain.stdout + plain.stderr)
        logits = self.tf("run", model, "--logits", "1", "2", "3")
        self.check("help: --logits prints vocab numbers",
                   logits.returncode == 0 and len(logits.stdout.split()) == 16 and
                   all(re.fullmatch(r"-?[0-9.e+-]+", v) for v in logits.stdout.split()), logits.stdout + logits.stderr)
        gen = self.tf("run", "-p", "tiny", model, "--generate", "4", "-O2", "1", "2", "3")
        self.check("help: --generate K prints K ids",
                   gen.returncode == 0 and re.fullmatch(r"\d+ \d+ \d+ \d+\n", gen.stdout) is not None,
                   gen.stdout + gen.stderr)
        first = gen.stdout.split()[:1]
        self.check("help: the first generated id is the prefill's last argmax", first == plain.stdout.split()[-1:],
                   "generate %r, argmax %r" % (gen.stdout, plain.stdout))
        over = self.tf("run", model, "--generate", "6", "1", "2", "3")
        self.check("help: length plus K over max_len is a bad line",
                   over.returncode == 1 and over.stdout == "\n" and "max_len" in over.stderr, over.stdout + over.stderr)
        lines = self.tf("run", model, stdin="1 2 3\n99\n1 2 3\n")
        self.check("help: stdin lines are fresh sequences, an id outside 0..vocab-1 a bad line",
                   lines.returncode == 1 and lines.stdout == plain.stdout + "\n" + plain.stdout and
                   "input line 2" in lines.stderr and "0..15" in lines.stderr, lines.stdout + lines.stderr)

        # every NAME_function help compile names is defined in generated C
        names = set(re.findall(r"NAME_([a-z_]+)", compile_))
        with open(os.path.join(self.tmp, "tiny.c"), encoding="utf-8") as f:
            model_c = f.read()
        with open(os.path.join(self.tmp, "reverse.c"), encoding="utf-8") as f:
            rasp_c = f.read()
        # the tokenizer's functions are in a model's C that carries one
        tok = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "hf", "gpt2", "tokenizer.json")
        with_tok = os.path.join(self.tmp, "tiny_tok.c")
        if self.tf(os.path.join(self.tmp, "tiny.tfm"), "-o", with_tok, "--tokenizer", tok).returncode == 0:
            with open(with_tok, encoding="utf-8") as f:
                model_c += f.read()
        missing = [n for n in sorted(names)
                   if not re.search(r"^\w[\w *]*\b(tiny|reverse)_%s\(" % n, model_c + rasp_c, re.M)]
        self.check("help: every NAME_function of help compile exists (%s)" % ", ".join(sorted(names)),
                   len(names) >= 7 and not missing, "missing: %r" % missing)

    # ------------------------------------------------------------------- verify

    def verify(self):
        sort = os.path.join(self.examples, "sort.tfm")
        p = self.tf("verify", sort, "--len", "2")
        self.check("verify: exhaustive says verified",
                   p.returncode == 0 and p.stdout.startswith("verified `sort`: ") and "sampled" not in p.stdout,
                   p.stdout + p.stderr)
        p = self.tf("verify", sort, "--samples", "100")
        self.check("verify: sampled says no difference on K sampled inputs",
                   p.returncode == 0 and "no difference on 100 sampled inputs" in p.stdout and
                   "verified `" not in p.stdout, p.stdout + p.stderr)
        p = self.tf("verify", sort, "--samples", "1", "--len", "3")
        self.check("verify: one sampled input is singular",
                   p.returncode == 0 and "no difference on 1 sampled input " in p.stdout, p.stdout + p.stderr)
        for name, (src, cause) in CAUSES.items():
            path = os.path.join(self.tmp, name + ".tfm")
            with open(path, "w") as f:
                f.write(src)
            p = self.tf("verify", path)
            lines = p.stdout.splitlines()
            at = next((i for i, l in enumerate(lines) if l.strip().startswith("transformer:")), None)
            self.check("verify: %s's counterexample names its cause" % name,
                       p.returncode == 1 and at is not None and at + 1 < len(lines) and
                       lines[at + 1].strip().startswith(cause) and "docs/compiling.md" in lines[at + 1] and
                       sum("likely cause" in l for l in lines) == 1, p.stdout + p.stderr)
        # a program that verifies has no cause line
        p = self.tf("verify", os.path.join(self.examples, "reverse.tfm"), "--len", "3")
        self.check("verify: no cause without a counterexample", p.returncode == 0 and "likely" not in p.stdout,
                   p.stdout)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    with tempfile.TemporaryDirectory(prefix="tfmc-cli-") as tmp:
        c = Checker(os.path.abspath(argv[1]), argv[2], tmp)
        c.options()
        c.help()
        c.verify()
    print("%d passed, %d failed" % (c.passed, c.failed))
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
