#!/usr/bin/env python3
"""Deterministic fuzzing of the tfmc frontend (parser, checker, interpreter).

Usage: fuzz_frontend.py TFMC [--iterations N] [--seed S] [--examples DIR]
                             [--start I] [--timeout SECONDS] [--failures DIR]
                             [--progress N] [--verbose]

Every iteration builds one input file, from a generator picked at random:

  bytes     random bytes (NULs, invalid UTF-8 and all)
  soup      a random sequence of the language's tokens
  grammar   a random, mostly well-formed program (defs, rasp programs)
  mutant    an example program (examples/*.tfm or the spec's examples) after
            1 to 4 mutations: delete / duplicate / swap / insert / replace
            tokens or bytes, truncate, deep nesting (up to 10000 `(`), long
            operator chains and lambdas, huge integers, odd headers, NUL
            bytes, invalid UTF-8, long names and strings, repeated lines,
            the file repeated, splices of other examples
  scale     a valid program that is large in one direction (many calls, a
            function that calls the previous one twice, long chains of
            functions or statements, many programs, many selectors)

and runs `TFMC check FILE` on it. When the file checks, every rasp program of
it (up to two) also runs through `TFMC eval FILE -p NAME`: once with lines on
standard input (random sequences drawn from the program's vocabulary, of
lengths 0..max_len+1, mixed with garbage lines: random bytes, NULs, huge,
negative and odd numbers such as 0x10 / nan / 1.0, thousands of tokens) and
once with one random sequence on the command line (sometimes with --trace).

A run fails when it
  - exits with a status other than 0 or 1 (usage errors, 2, included),
  - dies from a signal, or takes longer than the timeout (10 s, see Limits) twice,
  - takes more memory than the limit (1024 MB resident),
  - prints `AddressSanitizer`, `LeakSanitizer` or `runtime error` on stderr,
  - exits 1 with nothing on stderr (an error must always be explained),
  - (eval from standard input, without --trace) prints a number of output
    lines different from the number of input lines (spec section 3),
  - (eval, when the program's vocabulary is plain: only integers, or only
    strings without blanks) accepts an input line that spec section 3
    rejects or rejects one it accepts: a line is good when it has 1..max_len
    tokens, each one of the vocabulary (read as a decimal integer when the
    vocabulary is integers, else as a string); the bad lines, and only those,
    must be named on stderr (`... line K ...`) and make the exit status 1.
Limits (tests/limits.py): a run that takes more than the timeout (10 s times
TFMC_TEST_TIME_FACTOR, times 3 for a sanitizer build) is run again with ten
times that, and only a run that exceeds that too is a failure ("timeout");
a slow or loaded machine is not. Memory is what the limits really guard: a run
whose resident set passes --memory-mb (1024 MB) is killed and is a finding
("memory limit"), as is a peak RSS above it (wait4's ru_maxrss), its input
saved. A plain build also gets RLIMIT_AS (4 GB) as a backstop, so that one huge
allocation fails (the library must report `out of memory`); a sanitizer build,
which cannot use RLIMIT_AS, gets ASAN_OPTIONS allocator_may_return_null=1 and
hard_rss_limit_mb (1536 MB) instead.

Every failing input is saved under --failures (default
/tmp/tfmc-fuzz-failures/) with the command that reproduces it. The last line
of the output is exactly `N passed, M failed` (one count per iteration); the
exit status is 1 when anything failed. Iteration I of seed S is the same on
every run: `--seed S --start I --iterations 1` replays it.

Standard library only.
"""

import argparse
import os
import random
import re
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import limits  # noqa: E402  (tests/limits.py)

DEFAULT_TIMEOUT = 10.0           # seconds per run, times limits.time_factor()
MEMORY_LIMIT_MB = 1024           # a run whose resident set passes this is a finding
HARD_MEMORY_LIMIT_MB = 1536      # sanitizer backstop (hard_rss_limit_mb): the process is killed
PLAIN_ADDRESS_SPACE_MB = 4096    # RLIMIT_AS backstop for a build without sanitizers
MEMORY_MARKER = "fuzz: memory limit:"   # what Runner.run appends to stderr over the limit
DEFAULT_FAILURES_DIR = "/tmp/tfmc-fuzz-failures"
STDERR_SHOWN_LINES = 12
MAX_TEXT = 2 * 1000 * 1000       # the largest generated file, in bytes

SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error")
UBSAN_LINE_RE = re.compile(r"(?m)^\S+: runtime error: ")

# ---------------------------------------------------------------- the language

KEYWORDS = ["def", "rasp", "model", "return", "true", "false", "and", "or", "not"]
BUILTIN_NAMES = ["tokens", "indices", "length", "select", "aggregate", "selector_width",
                 "map", "numerical", "categorical", "min", "max", "abs", "floor",
                 "vocab", "max_len", "causal"]
MODEL_NAMES = ["dim", "weights", "as", "gpt2", "llama", "tfmc", "init", "random", "seed",
               "embed", "token", "position", "learned", "sinusoidal", "rope", "base", "alibi",
               "none", "block", "shared", "x", "attention", "heads", "kv_heads", "head_dim",
               "window", "score", "softmax", "softmax1", "linear", "hard", "norm", "bias",
               "parallel", "mlp", "hidden", "act", "relu", "gelu", "gelu_tanh", "silu",
               "swiglu", "geglu", "moe", "experts", "top", "layernorm", "rmsnorm", "dyt",
               "alpha", "eps", "post_norm", "unembed", "tied", "separate"]
PUNCT = ["(", ")", "{", "}", ",", ";", "=", "<", ">", "+", "-", "*", "/", "%", "?", ":",
         "->", "..", "==", "!=", "<=", ">="]
BAD_PUNCT = ["&&", "||", "!", "@", "$", "`", "\\", "'", "[", "]", "^", "~", "|", "&", ".", "\"",
             "...", "=>", "<-", "::"]
IDENTS = ["x", "y", "k", "q", "a", "b", "s", "sel", "prevs", "flip", "opp", "f", "g", "_",
          "make_hist", "make_frac_prevs", "abc_123", "tokens_", "Select", "MAP"]
INTS = ["0", "1", "2", "3", "5", "7", "8", "10", "64", "1024", "1025", "255", "65536",
        "2147483647", "2147483648", "4294967296", "9223372036854775807", "9223372036854775808",
        "99999999999999999999999999", "00", "007"]
FLOATS = ["0.5", "1.0", "0.0", "1e5", "1e-5", "2.5e3", "1e308", "1e309", "1e-400", "3.14159",
          "10000.0", "1E+2"]
STRINGS = ['"a"', '"b"', '"c"', '"x"', '"("', '")"', '"{"', '""', '"ab c"', '"\\n"', '"\\t"',
           '"\\\\"', '"\\""', '"\\q"', '"#"', '"\xc3\xa9"', '"\xff"', '"unterminated']
COMMENTS = ["# comment", "#", "# rasp x { vocab {1}; max_len 1; return tokens; }"]

ALL_TOKENS = (KEYWORDS * 3 + BUILTIN_NAMES * 2 + MODEL_NAMES + PUNCT * 4 + BAD_PUNCT + IDENTS * 2
              + INTS + FLOATS + STRINGS + COMMENTS)

# The examples of the spec (/work/shared/spec/tfm-language.md), always part of the corpus.
SPEC_EXAMPLES = {
    "spec_reverse.tfm": """\
# reverse.tfm
rasp reverse {
  vocab {"a", "b", "c", "d"};
  max_len 8;
  opp  = length - indices - 1;
  flip = select(indices, opp, ==);
  return aggregate(flip, tokens);
}
""",
    "spec_frac_prevs.tfm": """\
def frac_prevs(bools) {
  prevs = select(indices, indices, <=);
  return numerical(aggregate(prevs, bools));
}

rasp frac {
  vocab {"x", "y"};
  max_len 5;
  return frac_prevs(numerical(tokens == "x"));
}
""",
    "spec_model.tfm": """\
model llama_tiny {
  vocab 256;
  max_len 64;
  dim 64;
  weights "llama_tiny.safetensors" as llama;
  embed token, position rope(base 10000);
  block x 2 {
    attention heads 4, kv_heads 2, causal, norm rmsnorm(eps 1e-5), bias false;
    mlp hidden 172, act swiglu, norm rmsnorm(eps 1e-5), bias false;
  }
  norm rmsnorm(eps 1e-5);
  unembed separate;
}
""",
    "spec_model2.tfm": """\
model tiny {
  vocab 16;
  max_len 8;
  dim 8;
  init random(seed 1);
  embed token, position learned;
  block shared x 2 {
    attention heads 2, window 4, score softmax1, norm layernorm(eps 1e-5);
    moe hidden 16, act gelu, experts 4, top 2, post_norm dyt(alpha 0.5);
  }
  norm none;
  unembed tied;
}
""",
}

# ---------------------------------------------------------------- tokenizing

TOKEN_RE = re.compile(r"""
   (?P<ws>[ \t\r\n]+)
 | (?P<comment>\#[^\n]*)
 | (?P<string>"(?:[^"\\\n]|\\.)*")
 | (?P<float>[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+)
 | (?P<int>[0-9]+)
 | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
 | (?P<op>->|\.\.|==|!=|<=|>=|&&|\|\||[(){},;=<>+\-*/%?:!])
 | (?P<other>.)
""", re.X | re.S)


def tokenize(text):
    """Split text (a str holding bytes as latin-1) into (kind, text) pairs, whitespace included."""
    return [(m.lastgroup, m.group()) for m in TOKEN_RE.finditer(text)]


def significant(tokens):
    return [t for t in tokens if t[0] not in ("ws", "comment")]


def unescape(lit):
    """The value of a string literal token (without its quotes)."""
    out = []
    body = lit[1:-1]
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            i += 1
            c = {"n": "\n", "t": "\t"}.get(body[i], body[i])
        out.append(c)
        i += 1
    return "".join(out)


def find_programs(text):
    """The rasp programs of a file: a list of (name, Header)."""
    toks = significant(tokenize(text))
    progs = []
    i = 0
    while i + 2 < len(toks):
        if toks[i][1] in ("rasp", "def", "model") and toks[i + 1][0] == "ident":
            kind, name = toks[i][1], toks[i + 1][1]
            j = i + 2
            while j < len(toks) and toks[j][1] != "{":
                j += 1
            depth, start = 0, j
            while j < len(toks):
                if toks[j][1] == "{":
                    depth += 1
                elif toks[j][1] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if kind == "rasp":
                progs.append((name, program_header(toks[start + 1:j])))
            i = j + 1
        else:
            i += 1
    return progs


class Header:
    """What the fuzzer knows of a program's header, read from its tokens."""

    def __init__(self):
        self.vocab = []         # the token words, as typed on an input line
        self.max_len = None
        self.kinds = set()      # "str", "int", "float", "bool"
        self.complete = True    # every value of the vocabulary is in self.vocab
        self.nvocab = 0         # how many `vocab` statements

    def oracle(self):
        """True when the fuzzer can tell for sure which input lines tfmc must accept."""
        if self.nvocab != 1 or not self.complete or not self.vocab or self.max_len is None:
            return False
        if self.kinds == {"int"}:
            return True
        return self.kinds == {"str"} and all(re.fullmatch(r"[\x21-\x7e]{1,200}", w) for w in self.vocab)

    def accepts(self, words):
        """Whether a sequence of words is a good input: spec section 3, a token is read as an
        integer when the vocabulary is integers, else as a string."""
        if not 1 <= len(words) <= self.max_len:
            return False
        if self.kinds == {"int"}:
            values = {int(w) for w in self.vocab}
            return all(re.fullmatch(r"[+-]?[0-9]{1,30}", w) and -2**63 <= int(w) < 2**63 and int(w) in values
                       for w in words)
        return all(w in self.vocab for w in words)


def program_header(body):
    h = Header()
    for i, (_, t) in enumerate(body):
        if t == "max_len" and i + 1 < len(body) and body[i + 1][0] == "int":
            h.max_len = int(body[i + 1][1])
        if t == "vocab" and i + 1 < len(body) and body[i + 1][1] == "{":
            h.nvocab += 1
            j = i + 2
            while j < len(body) and body[j][1] != "}":
                kind, s = body[j]
                neg = j > 0 and body[j - 1][1] == "-"
                if kind == "string":
                    h.vocab.append(unescape(s))
                    h.kinds.add("str")
                elif kind == "int":
                    h.kinds.add("int")
                    lo = -int(s) if neg else int(s)
                    if j + 2 < len(body) and body[j + 1][1] == "..":
                        k = j + 2
                        hi_neg = body[k][1] == "-"
                        if hi_neg:
                            k += 1
                        if k < len(body) and body[k][0] == "int":
                            hi = -int(body[k][1]) if hi_neg else int(body[k][1])
                            if hi >= lo:
                                if hi - lo < 64:
                                    h.vocab.extend(str(v) for v in range(lo, hi + 1))
                                else:
                                    h.vocab.extend(str(v) for v in (lo, hi, (lo + hi) // 2))
                                    h.complete = False
                            j = k
                        else:
                            h.complete = False
                    else:
                        h.vocab.append(str(lo))
                elif kind == "float":
                    h.vocab.append(("-" if neg else "") + s)
                    h.kinds.add("float")
                elif s in ("true", "false"):
                    h.vocab.append(s)
                    h.kinds.add("bool")
                elif s not in (",", "-"):
                    h.complete = False
                j += 1
    return h

# ---------------------------------------------------------------- generators


def rand_bytes(rng, n):
    return "".join(chr(rng.randrange(256)) for _ in range(n))


def gen_random_bytes(rng, corpus):
    n = rng.choice([0, 1, 2, 8, 64, 512, 4096])
    n = rng.randint(0, n)
    if rng.random() < 0.5:
        # printable-heavy bytes reach further into the lexer
        alphabet = "abcdefghijklmnopqrstuvwxyz_0123456789(){},;=<>+-*/%?:.\"#\\ \n\t!&|" + "\x00\xff\x80\xc3"
        return "".join(rng.choice(alphabet) for _ in range(n))
    return rand_bytes(rng, n)


def gen_token_soup(rng, corpus):
    n = rng.choice([1, 5, 20, 100, 400])
    n = rng.randint(1, n)
    parts = []
    for _ in range(n):
        parts.append(rng.choice(ALL_TOKENS))
        parts.append(rng.choice([" ", " ", " ", "\n", "", "\t"]))
    text = "".join(parts)
    if rng.random() < 0.3:
        # the soup inside a program frame gets past the item level
        text = ("rasp p {\n  vocab {\"a\", \"b\"};\n  max_len 4;\n  " + text + "\n  return tokens;\n}\n")
    return text


class ProgramGen:
    """Random programs from the grammar: mostly well-formed, often well-typed."""

    CMP = ["==", "!=", "<", "<=", ">", ">="]
    ARITH = ["+", "-", "*", "/", "%"]

    def __init__(self, rng):
        self.rng = rng
        self.defs = []      # (name, arity)

    def const(self):
        r = self.rng
        return r.choice(["0", "1", "2", "3", "-1", "0.5", "2.5", "true", "false", '"a"', '"b"',
                         '"x"', "1000000", "9223372036854775807", "1e300"])

    def scalar(self, params, d):
        r = self.rng
        if d <= 0 or r.random() < 0.3:
            return r.choice(params) if params and r.random() < 0.7 else self.const()
        c = r.randrange(9)
        if c < 3:
            op = r.choice(self.ARITH + self.CMP + ["and", "or"])
            return f"{self.scalar(params, d - 1)} {op} {self.scalar(params, d - 1)}"
        if c == 3:
            return f"-{self.scalar(params, d - 1)}"
        if c == 4:
            return f"not {self.scalar(params, d - 1)}"
        if c == 5:
            return f"{self.scalar(params, d - 1)} ? {self.scalar(params, d - 1)} : {self.scalar(params, d - 1)}"
        if c == 6:
            f = r.choice(["min", "max"])
            return f"{f}({self.scalar(params, d - 1)}, {self.scalar(params, d - 1)})"
        if c == 7:
            f = r.choice(["abs", "floor"])
            return f"{f}({self.scalar(params, d - 1)})"
        return f"({self.scalar(params, d - 1)})"

    def sop(self, env, d):
        r = self.rng
        sops = ["tokens", "indices", "length"] + env["sops"]
        if d <= 0 or r.random() < 0.25:
            return r.choice(sops)
        c = r.randrange(14)
        if c == 0:
            return f"{self.sop(env, d - 1)} {r.choice(self.ARITH + self.CMP)} {self.const()}"
        if c == 1:
            return f"{self.sop(env, d - 1)} {r.choice(self.ARITH + self.CMP + ['and', 'or'])} {self.sop(env, d - 1)}"
        if c == 2:
            return f"map(x -> {self.scalar(['x'], 2)}, {self.sop(env, d - 1)})"
        if c == 3:
            return f"map((x, y) -> {self.scalar(['x', 'y'], 2)}, {self.sop(env, d - 1)}, {self.sop(env, d - 1)})"
        if c in (4, 5):
            return f"aggregate({self.sel(env, d - 1)}, {self.sop(env, d - 1)})"
        if c == 6:
            return f"numerical(aggregate({self.sel(env, d - 1)}, numerical({self.sop(env, d - 1)})))"
        if c == 7:
            return f"selector_width({self.sel(env, d - 1)})"
        if c == 8:
            return f"{r.choice(['numerical', 'categorical'])}({self.sop(env, d - 1)})"
        if c == 9:
            return f"{r.choice(['-', 'not '])}{self.sop(env, d - 1)}"
        if c == 10:
            return f"({self.sop(env, d - 1)} ? {self.sop(env, d - 1)} : {self.const()})"
        if c == 11:
            f = r.choice(["min", "max"])
            return f"{f}({self.sop(env, d - 1)}, {self.const()})"
        if c == 12 and self.defs:
            name, arity = r.choice(self.defs)
            return f"{name}({', '.join(self.sop(env, d - 1) for _ in range(arity))})"
        return f"({self.sop(env, d - 1)})"

    def sel(self, env, d):
        r = self.rng
        if env["sels"] and (d <= 0 or r.random() < 0.3):
            return r.choice(env["sels"])
        c = r.randrange(6)
        if d <= 0 or c < 2:
            return f"select({self.sop(env, d - 1)}, {self.sop(env, d - 1)}, {r.choice(self.CMP + ['true', 'false'])})"
        if c == 2:
            return f"select({self.sop(env, d - 1)}, {self.sop(env, d - 1)}, (k, q) -> {self.scalar(['k', 'q'], 2)})"
        if c == 3:
            return f"{self.sel(env, d - 1)} {r.choice(['and', 'or'])} {self.sel(env, d - 1)}"
        if c == 4:
            return f"not {self.sel(env, d - 1)}"
        return f"({self.sel(env, d - 1)})"

    def body(self, env, nstmts):
        lines = []
        for i in range(nstmts):
            if self.rng.random() < 0.4:
                name = f"sel{i}"
                lines.append(f"  {name} = {self.sel(env, 2)};")
                env["sels"].append(name)
            else:
                name = f"v{i}"
                lines.append(f"  {name} = {self.sop(env, 2)};")
                env["sops"].append(name)
        lines.append(f"  return {self.sop(env, 2)};")
        return lines

    def vocab(self):
        r = self.rng
        c = r.randrange(5)
        if c == 0:
            items = r.sample(['"a"', '"b"', '"c"', '"x"', '"("', '")"', '"{"', '"}"', '"ab"', '"Z"'], r.randint(1, 5))
        elif c == 1:
            items = [str(v) for v in r.sample(range(-5, 10), r.randint(1, 5))]
        elif c == 2:
            lo = r.randint(-5, 5)
            items = [f"{lo}..{lo + r.randint(0, 8)}"]
        elif c == 3:
            items = r.sample(["0.5", "1.5", "2.0", "-1.5"], r.randint(1, 3))
        else:
            items = r.sample(["true", "false"], r.randint(1, 2))
        return "{" + ", ".join(items) + "}"

    def program(self):
        r = self.rng
        out = []
        for k in range(r.choice([0, 0, 1, 2])):
            arity = r.randint(0, 2)
            params = [f"p{j}" for j in range(arity)]
            env = {"sops": list(params), "sels": []}
            out.append(f"def f{k}({', '.join(params)}) {{")
            out.extend(self.body(env, r.randint(0, 3)))
            out.append("}")
            self.defs.append((f"f{k}", arity))
        for k in range(r.choice([1, 1, 1, 2])):
            env = {"sops": [], "sels": []}
            out.append(f"rasp prog{k} {{")
            out.append(f"  vocab {self.vocab()};")
            out.append(f"  max_len {r.choice([1, 2, 3, 4, 5, 6, 8, 10, 16])};")
            if r.random() < 0.2:
                out.append("  causal;")
            out.extend(self.body(env, r.randint(0, 5)))
            out.append("}")
        return "\n".join(out) + "\n"


def gen_grammar(rng, corpus):
    return ProgramGen(rng).program()


def long_chain(rng, atom):
    n = rng.choice([100, 1000, 3000, 10000])
    kind = rng.randrange(6)
    if kind == 0:
        return atom + (" " + rng.choice(["+", "-", "*", "==", "and", "or"]) + " " + atom) * n
    if kind == 1:
        return "not " * n + atom
    if kind == 2:
        return "- " * n + atom
    if kind == 3:
        return "(" * n + atom + ")" * n
    if kind == 4:
        return (atom + " ? ") * n + atom + " : 1" * n
    return "map(x -> x" + " + x" * n + ", " + atom + ")"


def huge_number(rng):
    return rng.choice(["9223372036854775807", "9223372036854775808", "-9223372036854775808",
                       "-9223372036854775807", "99999999999999999999999999999", "0", "-1", "1024",
                       "1025", "2147483647", "2147483648", "4294967295", "4294967296", "1e308",
                       "1e309", "-1e309", "4.9e-324", "1" + "0" * 400, "0" * 300 + "1"])


ODD_HEADERS = [
    "vocab {-9223372036854775807..9223372036854775807};",
    "vocab {9223372036854775806..9223372036854775807};",
    "vocab {-9223372036854775807..-9223372036854775807};",
    "vocab {0..100000};", "vocab {0..4095};", "vocab {0..4096};", "vocab {5..1};",
    "vocab {};", "vocab {\"\"};", "vocab {\"a\", \"a\"};", "vocab {1, \"a\"};",
    "vocab {true, false};", "vocab {0.5, 1.5};", "vocab {-0.0, 0.0};", "vocab 256;",
    "vocab {\"" + "a" * 5000 + "\"};", "vocab {" + ", ".join('"t%d"' % i for i in range(3000)) + "};",
    "max_len 0;", "max_len -1;", "max_len 1024;", "max_len 1025;", "max_len 2147483648;",
    "max_len 9223372036854775807;", "max_len 99999999999999999999;", "max_len {1};",
    "max_len \"8\";", "causal;", "causal 1;", "vocab;", "max_len;", "dim 64;",
]

INVALID_UTF8 = ["\xff", "\xfe", "\x80", "\xc0\x80", "\xc3", "\xe2\x82", "\xed\xa0\x80",
                "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80", "\xef\xbb\xbf"]


def mutate_once(rng, text, corpus):
    toks = tokenize(text)
    sig = [i for i, t in enumerate(toks) if t[0] not in ("ws", "comment")]
    op = rng.randrange(22)
    if not toks:
        return text + rng.choice(ALL_TOKENS)
    if op == 0 and sig:                        # delete a token
        del toks[rng.choice(sig)]
    elif op == 1 and sig:                      # duplicate a token
        i = rng.choice(sig)
        toks.insert(i, toks[i])
    elif op == 2 and len(sig) > 1:             # swap two tokens
        i, j = rng.sample(sig, 2)
        toks[i], toks[j] = toks[j], toks[i]
    elif op == 3:                              # insert a token
        i = rng.randrange(len(toks) + 1)
        toks.insert(i, ("op", " " + rng.choice(ALL_TOKENS) + " "))
    elif op == 4 and sig:                      # replace a token by one of the file's or the language's
        i = rng.choice(sig)
        pool = ALL_TOKENS if rng.random() < 0.5 else [toks[j][1] for j in sig]
        toks[i] = ("op", rng.choice(pool))
    elif op == 5 and text:                     # byte delete / duplicate / insert / flip
        i = rng.randrange(len(text))
        k = rng.randrange(4)
        if k == 0:
            return text[:i] + text[i + 1:]
        if k == 1:
            return text[:i] + text[i] + text[i:]
        if k == 2:
            return text[:i] + chr(rng.randrange(256)) + text[i:]
        return text[:i] + chr(ord(text[i]) ^ (1 << rng.randrange(8))) + text[i + 1:]
    elif op == 6 and text:                     # truncate
        return text[:rng.randrange(len(text))]
    elif op == 7:                              # deep nesting of `(` (or of `{`), unbalanced
        i = rng.randrange(len(toks) + 1)
        n = rng.choice([100, 1000, 5000, 10000])
        toks.insert(i, ("op", rng.choice(["(", "{", "-", "not ", "(("]) * n))
    elif op == 8 and sig:                      # a long chain / nesting / lambda in place of a name
        cands = [i for i in sig if toks[i][0] == "ident" and toks[i][1] in ("tokens", "indices", "length", "x", "k", "q")]
        if cands:
            i = rng.choice(cands)
            toks[i] = ("op", long_chain(rng, toks[i][1]))
        else:
            return text + "\n" + long_chain(rng, "tokens")
    elif op == 9 and sig:                      # huge integers
        cands = [i for i in sig if toks[i][0] in ("int", "float")] or sig
        toks[rng.choice(cands)] = ("op", huge_number(rng))
    elif op == 10:                             # an odd header statement
        hdr = rng.choice(ODD_HEADERS)
        lines = text.split("\n")
        hl = [k for k, l in enumerate(lines) if re.match(r"\s*(vocab|max_len|causal)\b", l)]
        if hl and rng.random() < 0.7:
            lines[rng.choice(hl)] = "  " + hdr
        else:
            lines.insert(rng.randrange(len(lines) + 1), "  " + hdr)
        return "\n".join(lines)
    elif op == 11:                             # NUL bytes
        i = rng.randrange(len(text) + 1)
        return text[:i] + "\x00" * rng.choice([1, 1, 2, 100]) + text[i:]
    elif op == 12:                             # invalid UTF-8 (in code, a string or a comment)
        where = rng.randrange(3)
        bad = rng.choice(INVALID_UTF8)
        strs = [i for i in sig if toks[i][0] == "string"]
        if where == 0 and strs:
            i = rng.choice(strs)
            toks[i] = ("string", toks[i][1][:-1] + bad + '"')
        elif where == 1:
            return text.replace("#", "# " + bad, 1)
        else:
            i = rng.randrange(len(text) + 1)
            return text[:i] + bad + text[i:]
    elif op == 13 and sig:                     # a long name
        cands = [i for i in sig if toks[i][0] == "ident"] or sig
        i = rng.choice(cands)
        name = "n" * rng.choice([100, 1000, 100000])
        for j in range(len(toks)):             # rename every use, so the program may still check
            if toks[j] == toks[i] and toks[j][1] not in KEYWORDS + BUILTIN_NAMES:
                toks[j] = ("ident", name)
        if toks[i][0] != "ident" or toks[i][1] != name:
            toks[i] = ("ident", name)
    elif op == 14:                             # a long string or comment
        n = rng.choice([1000, 100000])
        s = rng.choice(['"' + "s" * n + '"', "#" + "c" * n + "\n", '"' + "\\n" * n + '"', '"' + "a" * n])
        i = rng.randrange(len(toks) + 1)
        toks.insert(i, ("op", " " + s + " "))
    elif op == 15:                             # repeat a line many times
        lines = text.split("\n")
        k = rng.randrange(len(lines))
        lines[k:k + 1] = [lines[k]] * rng.choice([2, 10, 1000, 5000])
        return "\n".join(lines)
    elif op == 16:                             # splice in a chunk of another corpus file
        other = rng.choice(corpus)
        a = rng.randrange(len(other) + 1)
        b = rng.randrange(a, min(len(other), a + 400) + 1)
        i = rng.randrange(len(text) + 1)
        return text[:i] + other[a:b] + text[i:]
    elif op == 17:                             # line endings and whitespace
        k = rng.randrange(4)
        if k == 0:
            return text.replace("\n", "\r\n")
        if k == 1:
            return text.replace("\n", "\r")
        if k == 2:
            return text.rstrip("\n")
        return text.replace(" ", "\t")
    elif op == 18:                             # the file twice (duplicate names), or many programs
        if rng.random() < 0.5:
            return text + text
        names = set(re.findall(r"\b(?:rasp|def|model)\s+(\w+)", text))
        if not names:
            return text + text
        item_re = re.compile(r"\b(" + "|".join(sorted(map(re.escape, names))) + r")\b")
        return "".join(item_re.sub(lambda m, j=j: f"{m.group(1)}_{j}", text)   # items and calls renamed
                       for j in range(rng.choice([2, 50, 300])))
    elif op == 19 and sig:                     # a lambda with many parameters
        n = rng.choice([3, 100, 5000])
        params = ", ".join(f"a{j}" for j in range(n))
        lam = rng.choice([f"({params}) -> a0", f"({params}) -> a{n - 1}", f"({params}", f"({params} ->"])
        toks.insert(rng.choice(sig), ("op", " " + lam + " "))
    elif op == 20 and sig:                     # a random comparison operator or select op
        i = rng.choice(sig)
        toks[i] = ("op", rng.choice(ProgramGen.CMP + ["true", "false", "(k, q) -> k", "x -> x", "(k) -> k"]))
    else:                                      # a random expression from the grammar
        gen = ProgramGen(rng)
        env = {"sops": [], "sels": []}
        expr = gen.sop(env, 3) if rng.random() < 0.6 else gen.sel(env, 3)
        cands = [i for i in sig if toks[i][1] in ("tokens", "indices", "length")]
        if cands:
            toks[rng.choice(cands)] = ("op", expr)
        else:
            toks.insert(rng.randrange(len(toks) + 1), ("op", " " + expr + " "))
    return "".join(t for _, t in toks)


def gen_mutant(rng, corpus):
    text = rng.choice(corpus)
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4])):
        new = mutate_once(rng, text, corpus)
        if len(new) <= MAX_TEXT:    # huge files only test the machine's memory
            text = new
    return text


def gen_scale(rng, corpus):
    """Valid programs that are large in one direction; a compiler should check them in well under
    a second (sizes stay far below the file size limit)."""
    hdr = "rasp p {\n  vocab {0..4};\n  max_len 5;\n"
    k = rng.randrange(6)
    if k == 0:      # many calls of one function (each call's names get fresh labels)
        n = rng.choice([100, 500, 2000])
        return ("def f(x) {\n  s = x + 1;\n  return s;\n}\n" + hdr
                + "".join(f"  v{i} = f(tokens);\n" for i in range(n)) + "  return v0;\n}\n")
    if k == 1:      # functions that call the previous one twice: 2^n expansions
        n = rng.randint(4, 24)
        out = ["def f0(x) {\n  return x + 1;\n}"]
        out += [f"def f{i}(x) {{\n  a = f{i - 1}(x);\n  b = f{i - 1}(x);\n  return a;\n}}" for i in range(1, n)]
        return "\n".join(out) + "\n" + hdr + f"  return f{n - 1}(tokens);\n}}\n"
    if k == 2:      # a long chain of functions, each calling the previous one
        n = rng.choice([30, 300, 3000])
        out = ["def f0(x) {\n  return x + 1;\n}"]
        out += [f"def f{i}(x) {{\n  return f{i - 1}(x);\n}}" for i in range(1, n)]
        return "\n".join(out) + "\n" + hdr + f"  return f{min(n - 1, 20)}(tokens);\n}}\n"
    if k == 3:      # a long chain of statements
        n = rng.choice([100, 1000, 5000])
        return (hdr + "  v0 = tokens + 1;\n" + "".join(f"  v{i} = v{i - 1} + 1;\n" for i in range(1, n))
                + f"  return v{n - 1};\n}}\n")
    if k == 4:      # many programs and functions
        n = rng.choice([100, 1000, 5000])
        return "".join(f"def g{i}(x) {{\n  return x;\n}}\nrasp p{i} {{\n  vocab {{0..4}};\n  max_len 5;\n"
                       f"  return g{i}(tokens);\n}}\n" for i in range(n))
    n = rng.choice([10, 100, 1000])    # many selectors combined
    return (hdr + "  s0 = select(tokens, indices, <=);\n"
            + "".join(f"  s{i} = s{i - 1} and select(tokens, indices, {rng.choice(ProgramGen.CMP)});\n" for i in range(1, n))
            + f"  return selector_width(s{n - 1});\n}}\n")


GENERATORS = [("bytes", gen_random_bytes, 1), ("soup", gen_token_soup, 2),
              ("grammar", gen_grammar, 3), ("mutant", gen_mutant, 8), ("scale", gen_scale, 0.5)]

# ---------------------------------------------------------------- eval inputs

GARBAGE_WORDS = ["", " ", "\t", "zzz", "A", "-1", "-0", "+1", "0x10", "1e5", "00", "1.0",
                 "9223372036854775807", "9223372036854775808", "-9223372036854775808",
                 "99999999999999999999999", "\xff", "\xc3\xa9", "\x00", "a\x00b", "\r", "--",
                 "-p", "--trace", "_", "true", "\"a\"", "%s%n", "\x1b[0m"]


def garbage_line(rng, vocab):
    k = rng.randrange(7)
    if k == 0:
        return ""
    if k == 1:
        return " \t "
    if k == 2:
        n = rng.choice([10, 1000])
        return "".join(chr(rng.choice([c for c in range(256) if c != 10])) for _ in range(rng.randint(1, n)))
    if k == 3:                                   # more tokens than anything accepts
        pool = vocab or ["a"]
        return " ".join(rng.choice(pool) for _ in range(rng.choice([100, 4095, 4096, 4097, 10000])))
    if k == 4:                                   # one very long token
        return "t" * rng.choice([511, 512, 1000, 100000])
    if k == 5:
        words = (vocab or []) + GARBAGE_WORDS + ODD_NUMBER_WORDS
        return " ".join(rng.choice(words) for _ in range(rng.randint(1, 8)))
    return " ".join(rng.choice(GARBAGE_WORDS) for _ in range(rng.randint(1, 4)))


ODD_NUMBER_WORDS = ["nan", "NaN", "-nan", "inf", "0x10", "0x1", "1e1", "1e0", "10.0", "1.0", "0.0", "2.",
                    "+1", "-0", "+0", "007", "1_000", "0b1", "1 ", "\xd9\xa3"]


def valid_sequence(rng, vocab, max_len):
    n = rng.randint(1, max(1, min(max_len or 8, 64)))
    return [rng.choice(vocab) for _ in range(n)]


def stdin_lines(rng, vocab, max_len):
    lines = []
    for _ in range(rng.randint(1, 10)):
        r = rng.random()
        if vocab and r < 0.55:
            lines.append(" ".join(valid_sequence(rng, vocab, max_len)))
        elif vocab and r < 0.6:                       # one odd word: 0x10, nan, 1.0, +1, ...
            seq = valid_sequence(rng, vocab, max_len)
            seq[rng.randrange(len(seq))] = rng.choice(ODD_NUMBER_WORDS)
            lines.append(" ".join(seq))
        elif vocab and r < 0.7 and max_len:
            lines.append(" ".join(rng.choice(vocab) for _ in range(max_len + 1)))   # too long
        else:
            lines.append(garbage_line(rng, vocab))
    return lines

# ---------------------------------------------------------------- running


class Runner:
    """Runs tfmc (or a program it generated) under the fuzzers' limits: the per-run timeout
    (scaled by limits.time_factor(), confirmed by a rerun with ten times as much), the memory
    limit (resident set watched, peak RSS measured), core dumps off."""

    def __init__(self, tfmc, timeout, memory_mb=MEMORY_LIMIT_MB):
        self.tfmc = tfmc
        self.sanitized = self._is_sanitized(tfmc)
        self.base_timeout = timeout
        self.timeout = timeout * limits.time_factor(sanitized=self.sanitized)
        self.memory_mb = memory_mb
        self.peak = (0.0, None)            # the largest peak RSS seen (MB) and its command
        self.slow = []                     # (seconds, command) of runs that needed the rerun
        self.env = dict(os.environ)
        if self.sanitized:
            ours = (f"hard_rss_limit_mb={HARD_MEMORY_LIMIT_MB}"
                    ":allocator_may_return_null=1:detect_leaks=1")
            # the caller's settings come last and win
            self.env["ASAN_OPTIONS"] = ours + (":" + os.environ["ASAN_OPTIONS"] if os.environ.get("ASAN_OPTIONS") else "")
            self.env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")

    @staticmethod
    def _is_sanitized(path):
        return limits.is_sanitized(path)

    def _limits(self):
        if not self.sanitized:  # a sanitizer reserves terabytes of address space
            limit = PLAIN_ADDRESS_SPACE_MB * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    def run(self, args, stdin_bytes=None, exe=None):
        """Run tfmc (or exe) with args; returns (returncode, or None on a timeout that a rerun
        with ten times the limit confirmed; stdout bytes; stderr bytes; seconds). A run over the
        memory limit gets a line starting with MEMORY_MARKER appended to its stderr."""
        argv = [os.fsencode(exe or self.tfmc)] + [a if isinstance(a, bytes) else os.fsencode(a) for a in args]
        r = limits.run_confirmed(argv, stdin_bytes, self.timeout, env=self.env,
                                 memory_mb=self.memory_mb, preexec_fn=self._limits)
        cmd = b" ".join(argv[:4]).decode("latin-1", "replace")
        if r.peak_mb and r.peak_mb > self.peak[0]:
            self.peak = (r.peak_mb, cmd)
        if r.reruns:
            self.slow.append((r.first_seconds, cmd))
        err = r.err
        if r.over_memory:
            err += (f"\n{MEMORY_MARKER} resident set {r.peak_mb:.0f} MB, above the {self.memory_mb} MB "
                    f"limit{' (killed)' if r.rc is not None and r.rc < 0 else ''}\n").encode()
        return r.rc, r.out, err, r.seconds

    def summary(self):
        """Lines about the run's resources, for the end of a fuzzer's output."""
        lines = [f"largest peak RSS {self.peak[0]:.0f} MB (limit {self.memory_mb} MB); timeout "
                 f"{self.timeout:g} s per run" + (f" ({len(self.slow)} run(s) needed the rerun with "
                                                   f"{self.timeout * limits.RERUN_FACTOR:g} s)" if self.slow else "")]
        for secs, cmd in self.slow[:5]:
            lines.append(f"  slow: {secs:.1f} s: {cmd}")
        return lines


def signal_name(rc):
    try:
        return signal.Signals(-rc).name
    except ValueError:
        return f"signal {-rc}"


def judge(rc, stderr, expected_lines=None, stdout=b""):
    """The reason a run failed, or None when it passed."""
    err = stderr.decode("utf-8", "replace")
    if MEMORY_MARKER in err:
        return "memory limit"
    if rc is None:
        return "timeout"
    for marker in SANITIZER_MARKERS:
        # UBSan's `PLACE: runtime error:` at a line start, not a diagnostic quoting a source line
        if marker in err and (marker != "runtime error" or UBSAN_LINE_RE.search(err)):
            return marker
    if rc < 0:
        return f"killed by {signal_name(rc)}"
    if rc not in (0, 1):
        return f"exit status {rc}"
    if rc == 1 and not err.strip():
        return "exit status 1 with an empty stderr"
    if expected_lines is not None:
        got = stdout.count(b"\n") + (1 if stdout and not stdout.endswith(b"\n") else 0)
        if got != expected_lines:
            return f"{got} output lines for {expected_lines} input lines"
    return None


PROJECT_FRAME_RE = re.compile(r"#\d+ 0x[0-9a-f]+ in (\S+) (\S*?(?:frontend|lib|ir|backends|runtime|passes)/[^\s:]+:\d+|\S*tfmc\.c:\d+)")
UBSAN_RE = re.compile(r"(\S+?:\d+:\d+): runtime error: ([^:\n0-9]*)")
ASAN_RE = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer): ([\w-]+)")


def signature(reason, stderr):
    """A short key that groups failures with the same cause."""
    err = stderr.decode("utf-8", "replace")
    m = ASAN_RE.search(err)
    if m:
        frame = next((f for f in (PROJECT_FRAME_RE.search(l) for l in err[m.end():].splitlines() if len(l) < 1000) if f), None)
        where = f" in {frame.group(1)} {os.path.basename(frame.group(2))}" if frame else ""
        return f"{m.group(1)}: {m.group(2)}{where}"
    # (regexes only on short lines: stderr may hold a diagnostic quoting a 100 kB source line)
    line = next((l for l in err.splitlines() if "runtime error" in l and len(l) < 1000), "")
    m = UBSAN_RE.search(line)
    if m:
        return f"UBSan: {m.group(2).strip()} at {os.path.basename(m.group(1))}"
    if MEMORY_MARKER in err or "hard rss limit" in err or "soft rss limit" in err:
        return "memory limit"
    if "spec section 3" in reason:
        return "spec section 3: " + ("a bad input accepted" if "was accepted" in reason else "a good input rejected")
    return reason


def shell_quote(arg):
    """Quote for a POSIX shell; bytes outside printable ASCII as bash's $'\\xNN'."""
    if all(32 <= ord(c) < 127 for c in arg):
        return shlex.quote(arg)
    out = []
    for c in arg:
        o = ord(c)
        if 32 <= o < 127 and c not in "\\'":
            out.append(c)
        else:
            out.append(f"\\x{o:02x}")
    return "$'" + "".join(out) + "'"


def text_bytes(text):
    return text.encode("latin-1")


def describe_stderr(stderr):
    lines = stderr.decode("utf-8", "replace").splitlines()
    shown = lines[:STDERR_SHOWN_LINES]
    out = "\n".join("    | " + l[:200] for l in shown)
    if len(lines) > len(shown):
        out += f"\n    | ... ({len(lines) - len(shown)} more lines)"
    return out


WHITESPACE_RE = re.compile(r"[ \t\r\n\v\f]+")
LINE_NUMBER_RE = re.compile(r"\bline (\d+)\b")


def check_bad_lines(data, header, rc, err):
    """Spec section 3: every bad input line, and only those, gets a line on stderr naming it, and
    the exit status is non-zero when there was one."""
    lines = data.split(b"\n") if data else []
    if data.endswith(b"\n"):
        lines.pop()
    expected = set()
    for k, line in enumerate(lines, 1):
        words = [w for w in WHITESPACE_RE.split(line.decode("latin-1")) if w]
        if b"\x00" in line or not header.accepts(words):
            expected.add(k)
    named = set()
    for l in err.decode("utf-8", "replace").splitlines():
        m = LINE_NUMBER_RE.search(l)
        if m:
            named.add(int(m.group(1)))
    if named != expected:
        wrong = sorted(named ^ expected)[0]
        return (f"input line {wrong} {lines[wrong - 1][:60]!r} was "
                f"{'rejected' if wrong in named else 'accepted'}, but spec section 3 "
                f"{'accepts' if wrong in named else 'rejects'} it")
    if (rc != 0) != bool(expected):
        return f"exit status {rc} with {len(expected)} bad input lines"
    return None


class Fuzzer:
    def __init__(self, args):
        self.args = args
        self.runner = Runner(args.tfmc, args.timeout, args.memory_mb)
        self.corpus = self._load_corpus(args.examples)
        self.failures_dir = args.failures
        self.failures = []              # (signature, iteration, saved file)
        self.tmpdir = tempfile.mkdtemp(prefix="tfmc-fuzz-")

    @staticmethod
    def _load_corpus(examples):
        corpus = list(SPEC_EXAMPLES.values())
        if examples:
            for name in sorted(os.listdir(examples)):
                if name.endswith(".tfm"):
                    with open(os.path.join(examples, name), "rb") as f:
                        corpus.append(f.read().decode("latin-1"))
        return corpus

    def generate(self, rng):
        total = sum(w for _, _, w in GENERATORS)
        pick = rng.uniform(0, total)
        for name, fn, w in GENERATORS:
            if pick < w:
                return name, fn(rng, self.corpus)
            pick -= w
        name, fn, _ = GENERATORS[-1]
        return name, fn(rng, self.corpus)

    def report(self, iteration, gen, reason, args, text, stdin_bytes, rc, stderr):
        """Save the failing input (and its standard input) and print how to reproduce the failure."""
        os.makedirs(self.failures_dir, exist_ok=True)
        base = os.path.join(self.failures_dir, f"seed{self.args.seed}-iter{iteration}-{gen}")
        path = base + ".tfm"
        with open(path, "wb") as f:
            f.write(text_bytes(text))
        cmd = " ".join(shell_quote(a) for a in [self.args.tfmc] + [path if a == self.current_file else a for a in args])
        if stdin_bytes is not None:
            with open(base + ".input", "wb") as f:
                f.write(stdin_bytes)
            cmd += " < " + shell_quote(base + ".input")
        sig = signature(reason, stderr)
        self.failures.append((sig, iteration, cmd))
        print(f"FAIL iteration {iteration} (seed {self.args.seed}, {gen}): {reason} [{sig}]")
        print(f"  input: {path}")
        print(f"  reproduce: {cmd}")
        print(f"  exit: {'timeout' if rc is None else rc}")
        if stderr:
            print("  stderr:")
            print(describe_stderr(stderr))
        sys.stdout.flush()

    def one(self, iteration):
        rng = random.Random(f"tfmc-fuzz:{self.args.seed}:{iteration}")
        gen, text = self.generate(rng)
        path = os.path.join(self.tmpdir, "input.tfm")
        with open(path, "wb") as f:
            f.write(text_bytes(text))
        self.current_file = path
        rc, out, err, secs = self.runner.run(["check", path])
        if self.args.verbose:
            print(f"iteration {iteration} {gen}: {len(text)} bytes, check exit {rc} ({secs:.2f} s)")
        reason = judge(rc, err)
        if reason:
            self.report(iteration, gen, reason, ["check", path], text, None, rc, err)
            return False
        if rc != 0:
            return True
        programs = find_programs(text)
        rng.shuffle(programs)
        for name, header in programs[:2]:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                continue
            if not self.eval_stdin(iteration, gen, text, path, name, header, rng):
                return False
            if not self.eval_argv(iteration, gen, text, path, name, header, rng):
                return False
        return True

    def eval_stdin(self, iteration, gen, text, path, name, header, rng):
        """Valid and garbage lines on standard input."""
        vocab, max_len = header.vocab, header.max_len
        lines = stdin_lines(rng, vocab, max_len)
        data = text_bytes("".join(l + "\n" for l in lines))
        if rng.random() < 0.2 and data.endswith(b"\n"):
            data = data[:-1]                   # a last line without its newline
        trace = rng.random() < 0.15
        args = ["eval", path, "-p", name] + (["--trace"] if trace else [])
        rc, out, err, _ = self.runner.run(args, data)
        nlines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
        escapes = "\\n" in text or "\r" in text   # a string value may print a line break
        reason = judge(rc, err, None if trace or escapes else nlines, out)
        if not reason and header.oracle():
            reason = check_bad_lines(data, header, rc, err)
        if reason:
            self.report(iteration, gen, reason, args, text, data, rc, err)
            return False
        return True

    def eval_argv(self, iteration, gen, text, path, name, header, rng):
        """One sequence on the command line."""
        vocab = header.vocab
        if not vocab or not all(w and "\x00" not in w for w in vocab):
            return True
        seq = valid_sequence(rng, vocab, header.max_len)
        if rng.random() < 0.2:
            seq = seq + [rng.choice(GARBAGE_WORDS[:12])]
        if rng.random() < 0.1:
            seq = [rng.choice(ODD_NUMBER_WORDS)]
        seq = [w for w in seq if w and "\x00" not in w] or [vocab[0]]
        args = ["eval", path, "-p", name] + (["--trace"] if rng.random() < 0.3 else []) + ["--"] + seq
        rc, out, err, _ = self.runner.run([a.encode("latin-1") for a in args])
        reason = judge(rc, err)
        if not reason and header.oracle() and (rc == 0) != header.accepts(seq):
            reason = (f"the command-line input {' '.join(seq)[:80]!r} was "
                      f"{'accepted' if rc == 0 else 'rejected'}, but spec section 3 "
                      f"{'rejects' if rc == 0 else 'accepts'} it")
        if reason:
            self.report(iteration, gen, reason, args, text, None, rc, err)
            return False
        return True

    def main(self):
        passed = failed = 0
        t0 = time.monotonic()
        sys.stdout.write(f"fuzzing {self.args.tfmc} (seed {self.args.seed}, iterations "
                         f"{self.args.start}..{self.args.start + self.args.iterations - 1}"
                         f"{', sanitizer build' if self.runner.sanitized else ''})\n")
        if self.runner.sanitized:
            print(f"  ASAN_OPTIONS={self.runner.env['ASAN_OPTIONS']}")
        sys.stdout.flush()
        try:
            for i in range(self.args.start, self.args.start + self.args.iterations):
                if self.one(i):
                    passed += 1
                else:
                    failed += 1
                if self.args.progress and (i + 1) % self.args.progress == 0:
                    print(f"  ... {i + 1} iterations, {failed} failed, {time.monotonic() - t0:.0f} s")
                    sys.stdout.flush()
        finally:
            for name in os.listdir(self.tmpdir):
                os.unlink(os.path.join(self.tmpdir, name))
            os.rmdir(self.tmpdir)
        if self.failures:
            groups = {}
            for sig, it, cmd in self.failures:
                groups.setdefault(sig, []).append((it, cmd))
            print(f"{len(groups)} distinct failure signature(s):")
            for sig, items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
                print(f"  {len(items):5d} x {sig}")
                print(f"          e.g. {items[0][1]}")
        for line in self.runner.summary():
            print(line)
        print(f"{passed} passed, {failed} failed")
        return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description="Deterministic fuzzing of the tfmc frontend.")
    ap.add_argument("tfmc", help="the tfmc executable (ideally the sanitizer build)")
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=int, default=0, help="the first iteration (to replay one)")
    ap.add_argument("--examples", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples"))
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per run (times TFMC_TEST_TIME_FACTOR, times 3 in a sanitizer build; a run over it is run again with ten times as much)")
    ap.add_argument("--memory-mb", type=int, default=MEMORY_LIMIT_MB,
                    help="a run whose resident set passes this many MB is killed and is a finding")
    ap.add_argument("--failures", default=DEFAULT_FAILURES_DIR, help="where failing inputs are saved")
    ap.add_argument("--progress", type=int, default=0, help="print progress every N iterations")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    args.tfmc = os.path.abspath(args.tfmc)
    if not os.access(args.tfmc, os.X_OK):
        print(f"fuzz_frontend.py: {args.tfmc} is not an executable", file=sys.stderr)
        return 2
    if args.examples and not os.path.isdir(args.examples):
        print(f"fuzz_frontend.py: no examples directory {args.examples}", file=sys.stderr)
        return 2
    return Fuzzer(args).main()


if __name__ == "__main__":
    sys.exit(main())
