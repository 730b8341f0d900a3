#!/usr/bin/env python3
"""Differential fuzzing of the RASP compiler: -O0 against -O1 and -O2, the interpreter, the C.

Usage: fuzz_compile.py TFMC [--iterations N] [--seed S] [--start I] [--examples DIR]
                            [--timeout SECONDS] [--failures DIR] [--sources NAME,...]
                            [--samples K] [--c-every N] [--tolerate TEXT]... [--progress N]
                            [--verbose]

Every iteration makes one valid RASP program, from a source picked at random:

  typed     (most) a well-typed program in the style of examples/*.tfm, built with its value
            sets and encodings tracked: maps (lambdas and infix sugar, fused or named, one or two
            SOps), select with comparisons and lambdas, `and` / `or` / `not` selectors,
            categorical and numerical aggregates, selector_width, length, indices, numerical /
            categorical, named constants, `def` functions, string, integer, boolean and float
            vocabularies, max_len 1..8 (now and then 10..128), `causal;` programs. A good share
            of the selectors compare indices with indices (<, <=, ==, k == q - 1, windows,
            lambdas), alone or as a conjunct, since fuse-attention makes such heads causal.
  grammar   fuzz_frontend.py's grammar generator (kept when `tfmc check` accepts it)
  mutant    an example (examples/*.tfm) after one or two of fuzz_frontend.py's mutations
            (kept when `tfmc check` accepts it)

For each program that `tfmc check` accepts:

  1. `tfmc verify FILE -O0`, `-O1`, `-O2` (`--len` max_len up to 8: every sequence when there
     are at most --samples of them, else --samples seeded random ones). A program the compiler
     cannot represent must be rejected with a clear error (`cannot compile ...`, exit 1) at every
     level alike. Every counterexample input is run at the three levels, which must print the
     same; the counterexample itself must be one of the limitations docs/compiling.md documents
     (below).
  2. `tfmc run -O0`, `-O1`, `-O2` and `tfmc eval` on the same random input lines (standard input,
     numbers now and then spelled otherwise, `+1`, `3.00`; sometimes a bad line): the three runs
     must print the same lines and exit alike, and equal eval but for documented limitations.
  3. `tfmc FILE -O0 --report` and `-O2 --report`: -O2 must not store more parameters, use more
     FLOPs per token, weight bytes or arena bytes than -O0, and must store fewer parameters when
     -O0 stores any.
  4. every --c-every'th program: `tfmc FILE -O2 --main -o x.c`, `cc -std=c99 -O2 x.c
     $(tfmc config --cflags --libs)` and the executable on the same lines must print what
     `run -O2` prints (and reject the same lines).

Documented limitations (docs/compiling.md, "What it cannot represent"): a categorical aggregate
whose query selects differing values; a numerical SOp the interpreter calls undefined; undefined
values in a selector combined with `not` / `or`; booleans and the numbers they equal in one value
set (`run` prints 1 where `eval` prints true); numbers that differ by double rounding feeding a
categorical map. To tell, the fuzzer evaluates a twin of a typed program (functions inlined,
every categorical aggregate, its selector and its value bound to names) with `tfmc eval --trace`
on the input and looks for a live categorical aggregate that selects two different values (`_`
counting as a value), for undefined numerical values, for undefined values where the program
combines selectors with `or` / `not`; it knows when a map reads a mean of non-integers, reads
`--emit=model` for value-set dimensions that print alike, and compares the printed values. A
difference so explained is counted, not failed, and so is a difference between -O levels on such
an input (garbage in: an even mix sits at the decoding threshold, and kernels round
differently). For grammar and mutant programs, whose structure the fuzzer does not know,
differences from the interpreter are counted as not judged; differences between -O levels are
failures unless the program's own trace shows an undefined numerical value, or an undefined value
and a named selector mixing a named categorical SOp, or a value set holds near-equal floats.

A run fails on a crash, a signal, a sanitizer report, a timeout (--timeout seconds per command,
default 10, and again in a rerun with ten times as much: tests/limits.py), a resident set above
--memory-mb (1024 MB), exit status 1 with an empty stderr (verify's counterexample on standard output
excepted) or any other status than 0/1; on verify passing at one level and failing at another, a
compile error at one level only or an error other than `cannot compile`; on a difference that no
documented limitation explains; on the C differing from run -O2 or not compiling; on -O2 being
larger than -O0.

--tolerate TEXT (repeatable) counts a failure whose signature contains TEXT as passed: for known,
reported bugs, so that a registered short run stays useful until they are fixed. Tolerated
failures are still saved and printed (as KNOWN).

Every failure is saved under --failures (default /tmp/tfmc-fuzz-compile-failures/) as
seed{S}-iter{I}-{source}.tfm (and .input, .explain.tfm) with the command that reproduces it. The
last line of the output is exactly `N passed, M failed` (one count per iteration); the exit
status is 1 when anything failed. Iteration I of seed S is the same on every run:
`--seed S --start I --iterations 1` replays it.

Standard library only; reuses fuzz_frontend.py (its runner, judge, grammar generator, mutations).
"""

import argparse
import itertools
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fuzz_frontend as ff  # noqa: E402

DEFAULT_TIMEOUT = 10.0
DEFAULT_FAILURES_DIR = "/tmp/tfmc-fuzz-compile-failures"
DEFAULT_SAMPLES = 1500
BIG_MODEL = 3000000              # -O0 parameters past which verify gets 100 inputs up to length 3
MAX_LEN_CHECKED = 8             # verify's --len (mutants may say max_len 1024: minutes per verify)
CC_TIMEOUT = 120.0               # compiling generated C is not a tfmc run
LEVELS = ("-O0", "-O1", "-O2")
SOURCES = [("typed", 0.76), ("grammar", 0.12), ("mutant", 0.12)]

IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
NUMBER_RE = re.compile(r"[0-9]+(\.[0-9]+)?\Z")
TRACE_ROW_RE = re.compile(r"^(\S+) +(cat|num|sel) \|(.*)$")
REPORT_ROW_RE = re.compile(r"^\s+(\S+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$")


class Unfit(Exception):
    """A generator choice that does not fit (value set too large, wrong types): try another."""

# ---------------------------------------------------------------- the program AST


class Node:
    """An expression of a generated program.

    kind  name  a name in scope (text), rendered as is or as the text it is bound to
          lit   a literal (text)
          op    text is a format string, kids fill {0}, {1}, ... (each as an atom)
          agg   aggregate(kids[0], kids[1]); mean: numerical (not checked for mixing)
          call  text(kids...) of a generated def
    """
    __slots__ = ("kind", "text", "kids", "mean")

    def __init__(self, kind, text="", kids=(), mean=False):
        self.kind, self.text, self.kids, self.mean = kind, text, tuple(kids), mean


def Name(n):
    return Node("name", n)


def Lit(t):
    return Node("lit", t)


def Op(fmt, *kids):
    return Node("op", fmt, kids)


def is_call(text):
    """Whether text is one call `NAME(...)` (its first `(` closes at the end)."""
    m = re.match(r"[A-Za-z_][A-Za-z0-9_]*\(", text)
    if not m or not text.endswith(")"):
        return False
    depth, i, n = 0, m.end() - 1, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i == n - 1
        i += 1
    return False


def atom(text):
    if IDENT_RE.match(text) or NUMBER_RE.match(text) or is_call(text):
        return text
    return "(" + text + ")"


def names_in(node, out):
    if node.kind == "name":
        out.add(node.text)
    for k in node.kids:
        names_in(k, out)
    return out


class Def:
    def __init__(self, name, params):
        self.name, self.params = name, params
        self.stmts = []          # (local name, Node)
        self.ret = None
        self.ret_info = None     # an SOp or Sel describing what a call returns


class Program:
    """A generated program: header, statements, return; renders plainly or as the explain twin."""

    def __init__(self, name):
        self.name = name
        self.header = []
        self.defs = []
        self.stmts = []          # (name, Node)
        self.ret = None

    def text(self):
        r = Renderer(self, explain=False)
        out = []
        for d in self.defs:
            out.append(f"def {d.name}({', '.join(d.params)}) {{")
            for local, e in d.stmts:
                out.append(f"  {local} = {r.expr(e, {})};")
            out.append(f"  return {r.expr(d.ret, {})};")
            out.append("}")
            out.append("")
        out.append(f"rasp {self.name} {{")
        out.extend("  " + h for h in self.header)
        for name, e in self.stmts:
            out.append(f"  {name} = {r.expr(e, {})};")
        out.append(f"  return {r.expr(self.ret, {})};")
        out.append("}")
        return "\n".join(out) + "\n"

    def explain(self):
        """(text, aggregates, live): the same program with functions inlined and each categorical
        aggregate's selector and value bound to names; aggregates are (statement, selector label,
        value label); live the statements the output depends on."""
        r = Renderer(self, explain=True)
        out = [f"rasp {self.name} {{"] + ["  " + h for h in self.header]
        for name, e in self.stmts + [("__return__", self.ret)]:
            r.stmt = name
            text = r.expr(e, {})
            out.extend(r.hoisted)
            r.hoisted = []
            out.append(f"  return {text};" if name == "__return__" else f"  {name} = {text};")
        out.append("}")
        deps = {name: names_in(e, set()) for name, e in self.stmts}
        live, todo = set(), ["__return__"]
        deps["__return__"] = names_in(self.ret, set())
        while todo:
            n = todo.pop()
            if n in live:
                continue
            live.add(n)
            todo.extend(d for d in deps.get(n, ()) if d in deps)
        return "\n".join(out) + "\n", r.aggs, live


class Renderer:
    def __init__(self, prog, explain):
        self.defs = {d.name: d for d in prog.defs}
        self.explain = explain
        self.hoisted, self.aggs = [], []
        self.stmt = None
        self.counter = itertools.count()

    def bind(self, text, prefix):
        if IDENT_RE.match(text):
            return text
        name = f"__{prefix}{next(self.counter)}"
        self.hoisted.append(f"  {name} = {text};")
        return name

    def expr(self, n, env):
        if n.kind == "name":
            return env.get(n.text, n.text)
        if n.kind == "lit":
            return n.text
        if n.kind == "op":
            return n.text.format(*[atom(self.expr(k, env)) for k in n.kids])
        if n.kind == "agg":
            s, v = self.expr(n.kids[0], env), self.expr(n.kids[1], env)
            if self.explain and not n.mean:
                # named, so that the trace shows its `_` wherever it is read (a select's keys...)
                s, v = self.bind(s, "s"), self.bind(v, "v")
                self.aggs.append((self.stmt, s, v))
                return self.bind(f"aggregate({s}, {v})", "a")
            return f"aggregate({s}, {v})"
        assert n.kind == "call"
        args = [self.expr(a, env) for a in n.kids]
        if not self.explain:
            return f"{n.text}({', '.join(args)})"
        d = self.defs[n.text]
        sub = dict(zip(d.params, args))
        for local, e in d.stmts:
            text = self.expr(e, sub)
            name = f"__{d.name}_{local}_{next(self.counter)}"
            self.hoisted.append(f"  {name} = {text};")
            sub[local] = name
        return self.expr(d.ret, sub)

# ---------------------------------------------------------------- values and types


def kind_of(v):
    return "str" if isinstance(v, str) else "num"


def apply_set(fn, *sets, limit=4000):
    """fn over every combination of values; results hitting an error are left out (as tfmc's
    value-set inference does). Raises Unfit past `limit` combinations."""
    n = 1
    for s in sets:
        n *= len(s)
    if n > limit:
        raise Unfit("too many pairs")
    out = set()
    for combo in itertools.product(*sets):
        try:
            v = fn(*combo)
        except (ArithmeticError, TypeError, ValueError):
            continue
        if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
            continue
        out.add(v)
    return frozenset(out)


def typed_set(vals):
    """The kind of a value set: "str", "num", or None when mixed / empty."""
    kinds = {kind_of(v) for v in vals}
    return kinds.pop() if len(kinds) == 1 else None


def mean_set(vals, max_len, limit=3000):
    """The value set of a numerical aggregate: 0 and every mean of 1..max_len values (None past
    `limit` numbers). Sums of n values by dynamic programming, so wide sets stay cheap."""
    xs = sorted({float(v) for v in vals})
    out, sums = {0.0}, {0.0}
    for n in range(1, max_len + 1):
        if len(sums) * len(xs) > 200000:
            return None
        sums = {round(t + x, 9) for t in sums for x in xs}
        out.update(round(t / n, 9) for t in sums)
        if len(out) > limit:
            return None
    return frozenset(out)


def py_cmp(op, a, b):
    """A comparison operator of `select`: orderings between a string and a number are false."""
    if op in ("==", "!="):
        eq = (kind_of(a) == kind_of(b)) and a == b
        return eq if op == "==" else not eq
    if kind_of(a) != kind_of(b):
        return False
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def fmt_num(c):
    return repr(c) if isinstance(c, float) else str(c)


def fmt_str(s):
    return '"' + s + '"'


class SOp:
    """An SOp in scope: how to write it, its encoding and value set, and (for SOps of positions
    only) its value at each position (for the causal proofs and never-later selectors)."""
    __slots__ = ("node", "enc", "vals", "kind", "posf", "pos_only", "agg", "fmean")

    def __init__(self, node, enc, vals, posf=None, pos_only=False, agg=False, fmean=False):
        self.node, self.enc, self.vals, self.posf = node, enc, vals, posf
        self.kind = typed_set(vals) if vals is not None else "num"
        self.pos_only = pos_only or posf is not None
        self.agg = agg          # a categorical aggregate: numerical() of it (even of a copy) averages
        self.fmean = fmean      # a mean of non-integers: its value set may hold near-equal floats


def has_fraction(vals):
    return any(isinstance(v, float) and not v.is_integer() for v in vals)


class Sel:
    __slots__ = ("node", "pairs", "posfn", "proved", "pos_only")

    def __init__(self, node, pairs, posfn, proved, pos_only):
        self.node, self.pairs, self.posfn, self.proved, self.pos_only = node, pairs, posfn, proved, pos_only


# lambda templates: (text with {x} / {y}, python function); constants drawn per use

def num_map1(rng, vals):
    c = rng.choice([0, 1, 1, 2, 3])
    m = rng.choice([2, 2, 3, 4])
    a, b = rng.sample([0, 1, 2, 5, -1], 2)
    t = [
        ("{x} + %d" % c, lambda x: x + c),
        ("{x} - %d" % c, lambda x: x - c),
        ("%d - {x}" % c, lambda x: c - x),
        ("{x} * %d" % m, lambda x: x * m),
        ("{x} %% %d" % m, lambda x: x % m),
        ("floor({x} / %d)" % m, lambda x: math.floor(x / m)),
        ("min({x}, %d)" % c, lambda x: min(x, c)),
        ("max({x}, %d)" % c, lambda x: max(x, c)),
        ("abs({x} - %d)" % c, lambda x: abs(x - c)),
        ("-{x}", lambda x: -x),
        ("{x} == %d" % c, lambda x: x == c),
        ("{x} != %d" % c, lambda x: x != c),
        ("{x} < %d" % c, lambda x: x < c),
        ("{x} <= %d" % c, lambda x: x <= c),
        ("{x} > %d" % c, lambda x: x > c),
        ("{x} >= %d" % c, lambda x: x >= c),
        ("{x} % 2 == 0", lambda x: x % 2 == 0),
        ("{x} > %d ? %d : %d" % (c, a, b), lambda x: a if x > c else b),
        ("not {x}", lambda x: not x),
        ("{x} / %d" % m, lambda x: x / m),
        ("{x} * {x}", lambda x: x * x),
        ("{x} > %d or {x} == 0" % c, lambda x: x > c or x == 0),
        ("{x} and %d" % m, lambda x: x and m),
        ("{x} - %d > 0 and {x} < %d" % (c, c + m), lambda x: x - c > 0 and x < c + m),
    ]
    if rng.random() < 0.08:         # arithmetic errors: undefined values at run time
        t.append(("%d / {x}" % m, lambda x: m / x))
        t.append(("%d %% {x}" % m, lambda x: m % x))
    return t


def str_map1(rng, vals):
    pool = sorted(vals)
    s, t2 = rng.choice(pool), rng.choice(pool)
    a, b = rng.sample([0, 1, 2, 3], 2)
    return [
        ("{x} == %s" % fmt_str(s), lambda x: x == s),
        ("{x} != %s" % fmt_str(s), lambda x: x != s),
        ("{x} < %s" % fmt_str(s), lambda x: x < s),
        ("{x} >= %s" % fmt_str(s), lambda x: x >= s),
        ("{x} == %s ? %d : %d" % (fmt_str(s), a, b), lambda x: a if x == s else b),
        ("{x} == %s or {x} == %s" % (fmt_str(s), fmt_str(t2)), lambda x: x == s or x == t2),
        ("{x} == %s ? %s : {x}" % (fmt_str(s), fmt_str(t2)), lambda x: t2 if x == s else x),
        ("min({x}, %s)" % fmt_str(s), lambda x: min(x, s)),
        ("max({x}, %s)" % fmt_str(s), lambda x: max(x, s)),
    ]


def num_map2(rng):
    m = rng.choice([2, 3, 4])
    c = rng.choice([0, 1, 2])
    return [
        ("{x} + {y}", lambda x, y: x + y),
        ("{x} - {y}", lambda x, y: x - y),
        ("{x} * {y}", lambda x, y: x * y),
        ("min({x}, {y})", lambda x, y: min(x, y)),
        ("max({x}, {y})", lambda x, y: max(x, y)),
        ("{x} == {y}", lambda x, y: x == y),
        ("{x} != {y}", lambda x, y: x != y),
        ("{x} < {y}", lambda x, y: x < y),
        ("{x} >= {y}", lambda x, y: x >= y),
        ("({x} + {y}) %% %d" % m, lambda x, y: (x + y) % m),
        ("{x} - {y} - %d" % c, lambda x, y: x - y - c),
        ("{x} > {y} ? {x} : {y}", lambda x, y: x if x > y else y),
        ("{x} and {y}", lambda x, y: x and y),
        ("{x} or {y}", lambda x, y: x or y),
        ("abs({x} - {y})", lambda x, y: abs(x - y)),
        ("{x} == {y} + %d" % c, lambda x, y: x == y + c),
    ]


def str_map2(rng, xs, ys):
    s, t = rng.choice(sorted(xs)), rng.choice(sorted(ys))
    a, b = rng.sample([0, 1, 2], 2)
    return [
        ("{x} == {y}", lambda x, y: x == y),
        ("{x} != {y}", lambda x, y: x != y),
        ("{x} < {y}", lambda x, y: x < y),
        ("{x} == %s and {y} == %s" % (fmt_str(s), fmt_str(t)), lambda x, y: x == s and y == t),
        ("{x} == {y} ? %d : %d" % (a, b), lambda x, y: a if x == y else b),
        ("min({x}, {y})", lambda x, y: min(x, y)),
    ]


def mixed_map2(rng, xs):
    """x a string, y a number."""
    s = rng.choice(sorted(xs))
    c = rng.choice([0, 1, 2])
    return [
        ("{x} == %s ? {y} : %d" % (fmt_str(s), c), lambda x, y: y if x == s else c),
        ("({x} == %s) + {y}" % fmt_str(s), lambda x, y: (x == s) + y),
        ("{y} > %d ? {x} : %s" % (c, fmt_str(s)), lambda x, y: x if y > c else s),
        ("{x} == %s and {y} > %d" % (fmt_str(s), c), lambda x, y: x == s and y > c),
    ]


def sel_lambdas(rng, kk, qk, kvals, qvals):
    """Select lambdas (k, q) -> BOOL for keys of kind kk and queries of kind qk."""
    c = rng.choice([0, 1, 1, 2])
    if kk == "num" and qk == "num":
        return [
            ("{k} == {q} - %d" % c, lambda k, q: k == q - c),
            ("{k} == {q} + %d" % c, lambda k, q: k == q + c),
            ("{q} == {k} + %d" % (c + 1), lambda k, q: q == k + c + 1),
            ("{k} < {q}", lambda k, q: k < q),
            ("{k} <= {q} - %d" % c, lambda k, q: k <= q - c),
            ("({k} + {q}) % 2 == 0", lambda k, q: (k + q) % 2 == 0),
            ("{k} % 2 == {q} % 2", lambda k, q: k % 2 == q % 2),
            ("abs({k} - {q}) <= %d" % c, lambda k, q: abs(k - q) <= c),
            ("{k} > %d" % c, lambda k, q: k > c),
            ("{q} > %d" % c, lambda k, q: q > c),
            ("{k} == %d" % c, lambda k, q: k == c),
            ("{k} < {q} and {k} >= {q} - %d" % (c + 1), lambda k, q: k < q and k >= q - c - 1),
            ("{k} <= {q} and {q} - {k} <= %d" % c, lambda k, q: k <= q and q - k <= c),
            ("{k} != {q}", lambda k, q: k != q),
            ("min({k}, {q}) == {k}", lambda k, q: min(k, q) == k),
            ("{k} * 2 == {q}", lambda k, q: k * 2 == q),
            ("{k} == {q} or {k} == 0", lambda k, q: k == q or k == 0),
            ("not ({k} > {q})", lambda k, q: not (k > q)),
            ("{k} >= {q}", lambda k, q: k >= q),
            ("{k} % 2 == 0 and {k} <= {q}", lambda k, q: k % 2 == 0 and k <= q),
            ("{k} > {q} ? {k} == {q} + 1 : {k} == 0", lambda k, q: k == q + 1 if k > q else k == 0),
        ]
    if kk == "str" and qk == "str":
        s = rng.choice(sorted(kvals))
        return [
            ("{k} == %s" % fmt_str(s), lambda k, q: k == s),
            ("{k} == {q}", lambda k, q: k == q),
            ("{k} != {q} and {q} == %s" % fmt_str(s), lambda k, q: k != q and q == s),
            ("{k} < {q}", lambda k, q: k < q),
            ("{q} == %s" % fmt_str(s), lambda k, q: q == s),
            ("{k} == %s or {k} == {q}" % fmt_str(s), lambda k, q: k == s or k == q),
        ]
    if kk == "str":
        s = rng.choice(sorted(kvals))
        return [("{k} == %s and {q} > %d" % (fmt_str(s), c), lambda k, q: k == s and q > c),
                ("{k} != %s or {q} == %d" % (fmt_str(s), c), lambda k, q: k != s or q == c)]
    s = rng.choice(sorted(qvals))
    return [("{q} == %s ? {k} > %d : {k} < %d" % (fmt_str(s), c, c + 1),
             lambda k, q: k > c if q == s else k < c + 1)]


PARAM_NAMES = ["x", "x", "x", "v", "a", "t", "tokens", "indices", "w"]
SEL_PARAM_NAMES = [("k", "q"), ("k", "q"), ("k", "q"), ("key", "query"), ("a", "b"), ("indices", "tokens")]
CMP = ["==", "!=", "<", "<=", ">", ">="]


class TypedGen:
    """Well-typed RASP programs in the style of examples/*.tfm."""

    MAX_CAT = 40        # the largest categorical value set we make on purpose
    MAX_NUM_MAP = 400   # the largest numerical value set a map may read (a discretising MLP)

    def __init__(self, rng):
        self.rng = rng
        self.uid = itertools.count()
        self.ndefs = 0
        self.not_or = False     # a selector combined with `or` / `not` (docs/compiling.md)
        self.risky = False      # a map reads a mean of non-integers (near-equal floats)

    # ------------------------------------------------------------ header

    def header(self):
        r = self.rng
        self.max_len = r.choice([1, 2, 2, 3, 3, 4, 4, 4, 5, 5, 6, 6, 7, 8])
        if r.random() < 0.12:           # long contexts: selector_width's MLP at a fine grain
            self.max_len = r.choice([10, 12, 14, 16, 20, 24, 32, 64, 100, 128])
        self.causal = r.random() < 0.2
        c = r.random()
        if c < 0.45:
            n = r.randint(2, 5)
            pool = ["a", "b", "c", "d", "x", "y", "(", ")", "ab", "Z"]
            words = r.sample(pool, n)
            vocab, vals = ", ".join(fmt_str(w) for w in words), words
        elif c < 0.85:
            lo = r.randint(-3, 2)
            hi = lo + r.randint(1, 5)
            if r.random() < 0.6:
                vocab, vals = f"{lo}..{hi}", list(range(lo, hi + 1))
            else:
                vals = sorted(r.sample(range(lo, hi + 4), r.randint(2, 5)))
                vocab = ", ".join(str(v) for v in vals)
            words = [str(v) for v in vals]
        elif c < 0.93:
            vals, vocab, words = [False, True], "true, false", ["1", "0"]
        else:
            vals = sorted(r.sample([0.5, 1.5, -1.5, 2.25, 3.0], r.randint(2, 3)))
            vocab, words = ", ".join(repr(v) for v in vals), [repr(v) for v in vals]
        self.words = words
        hdr = [f"vocab {{{vocab}}};", f"max_len {self.max_len};"]
        if self.causal:
            hdr.append("causal;")
        r.shuffle(hdr) if r.random() < 0.1 else None
        return hdr, frozenset(vals)

    # ------------------------------------------------------------ scope

    def builtins(self, vocab_vals):
        L = self.max_len
        out = [SOp(Name("tokens"), "cat", vocab_vals),
               SOp(Name("indices"), "cat", frozenset(range(L)), posf=lambda p: p)]
        if not self.causal:
            out.append(SOp(Name("length"), "cat", frozenset(range(1, L + 1))))
        return out

    def pick(self, items, recent=0.5):
        """An item, favouring the most recent ones (so that statements build on each other)."""
        if len(items) > 2 and self.rng.random() < recent:
            return self.rng.choice(items[-3:])
        return self.rng.choice(items)

    def cats(self, scope, kind=None, small=None):
        out = [s for s in scope["sops"] if s.enc == "cat" and s.vals and s.kind is not None
               and (kind is None or s.kind == kind) and (small is None or len(s.vals) <= small)]
        return out

    def nums(self, scope, small=None):
        return [s for s in scope["sops"] if s.enc == "num" and s.vals is not None
                and (small is None or len(s.vals) <= small)]

    # ------------------------------------------------------------ SOps

    def lam_param(self):
        return self.rng.choice(PARAM_NAMES)

    def map1(self, s, templates=None):
        r = self.rng
        if templates is None:
            templates = num_map1(r, s.vals) if s.kind == "num" else str_map1(r, s.vals)
        text, fn = r.choice(templates)
        vals = apply_set(fn, s.vals)
        if not vals or len(vals) > self.MAX_CAT or typed_set(vals) is None:
            raise Unfit("map values")
        posf = None
        if s.posf is not None:
            sp = s.posf

            def posf(p, sp=sp, fn=fn):
                v = sp(p)
                if v is None:
                    return None
                try:
                    return fn(v)
                except (ArithmeticError, TypeError, ValueError):
                    return None
        if r.random() < 0.5 or (text.count("{x}") > 1 and s.node.kind != "name"):
            # (infix sugar would write an unnamed operand twice: two nodes)
            x = self.lam_param()
            node = Op("map(%s -> %s, {0})" % (x, text.replace("{x}", x)), s.node)
        else:                                   # infix sugar: fused with an unnamed operand
            node = Op(text.replace("{x}", "{0}"), s.node)
        return SOp(node, "cat", vals, posf=posf, pos_only=s.pos_only, fmean=s.fmean)

    def map2(self, s, t):
        r = self.rng
        if s.kind == "num" and t.kind == "num":
            templates, a, b = num_map2(r), s, t
        elif s.kind == "str" and t.kind == "str":
            templates, a, b = str_map2(r, s.vals, t.vals), s, t
        else:
            a, b = (s, t) if s.kind == "str" else (t, s)
            templates = mixed_map2(r, a.vals)
        text, fn = r.choice(templates)
        vals = apply_set(fn, a.vals, b.vals)
        if not vals or len(vals) > self.MAX_CAT or typed_set(vals) is None:
            raise Unfit("map2 values")
        twice = text.count("{x}") > 1 and a.node.kind != "name" or text.count("{y}") > 1 and b.node.kind != "name"
        if r.random() < 0.5 or twice:
            x, y = r.choice([("x", "y"), ("a", "b"), ("l", "i"), ("tokens", "indices")])
            node = Op("map((%s, %s) -> %s, {0}, {1})" % (x, y, text.replace("{x}", x).replace("{y}", y)),
                      a.node, b.node)
        else:
            node = Op(text.replace("{x}", "{0}").replace("{y}", "{1}"), a.node, b.node)
        return SOp(node, "cat", vals, pos_only=a.pos_only and b.pos_only)

    def cat_sop(self, scope, depth):
        r = self.rng
        for _ in range(30):
            c = r.random()
            try:
                if depth <= 0 or c < 0.22:
                    return self.pick(self.cats(scope))
                if c < 0.40:
                    return self.map1(self.cat_sop(scope, depth - 1))
                if c < 0.50:
                    return self.map2(self.cat_sop(scope, depth - 1), self.cat_sop(scope, depth - 1))
                if c < 0.70:
                    sel = self.selector(scope, depth - 1, for_agg=True)
                    val = self.cat_sop(scope, depth - 1)
                    return SOp(Node("agg", kids=(sel.node, val.node)), "cat", val.vals, agg=True, fmean=val.fmean)
                if c < 0.80:
                    sel = self.selector(scope, depth - 1, for_agg=True)
                    return SOp(Op("selector_width({0})", sel.node), "cat", frozenset(range(self.max_len + 1)))
                if c < 0.88:
                    n = self.pick(self.nums(scope, small=self.MAX_NUM_MAP))
                    out = self.map1(SOp(n.node, "cat", n.vals))     # a categorical map of a numerical SOp
                    self.reads_numerical(n)
                    return out
                if c < 0.94:
                    return self.call(scope, depth, "cat")
                if c < 0.96 and self.nums(scope):
                    n = self.pick(self.nums(scope, small=self.MAX_CAT))
                    return SOp(Op("categorical({0})", n.node), "cat", n.vals, fmean=n.fmean)
                return self.pick(self.cats(scope))
            except (Unfit, IndexError):
                continue
        return self.pick(self.cats(scope))

    def num_sop(self, scope, depth):
        r = self.rng
        L = self.max_len
        for _ in range(30):
            c = r.random()
            try:
                if depth <= 0 or c < 0.15:
                    if self.nums(scope):
                        return self.pick(self.nums(scope))
                    c = 0.2
                if c < 0.30:                    # numerical(a small numeric categorical SOp)
                    s = self.pick(self.cats(scope, kind="num", small=8))
                    return self.numerical_of(s)
                if c < 0.62:                    # a mean: the frac_prevs pattern and its relatives
                    sel = self.selector(scope, depth - 1, for_agg=True, prefix_bias=0.5)
                    if r.random() < 0.2:        # a mean of length, selector_width, indices...: wide sets
                        v = self.pick([c for c in self.cats(scope, kind="num") if len(c.vals) <= 130 and not c.agg])
                        return self.mean_of(sel, v, wrap=True, big=True)
                    if r.random() < 0.6 or not self.nums(scope, small=6):
                        v = self.pick(self.cats(scope, kind="num", small=5))
                        if r.random() < 0.8:    # numerical(aggregate(sel, numerical(v)))
                            return self.mean_of(sel, self.numerical_of(v), wrap=True)
                        return self.mean_of(sel, v, wrap=True)  # numerical(aggregate(sel, v))
                    return self.mean_of(sel, self.pick(self.nums(scope, small=6)), wrap=False)
                if c < 0.78:                    # a linear two-SOp map of numerical SOps
                    a, b = self.pick(self.nums(scope)), self.pick(self.nums(scope))
                    op = r.choice(["-", "+", "-"])
                    vals = apply_set(lambda x, y: x - y if op == "-" else x + y, a.vals, b.vals, limit=200000) \
                        if a.vals is not None and b.vals is not None else None
                    if vals is not None and len(vals) > 5000:
                        vals = None
                    return SOp(Op("numerical({0} %s {1})" % op, a.node, b.node), "num", vals,
                               fmean=a.fmean or b.fmean)
                if c < 0.90:                    # a numerical map of one numerical SOp
                    n = self.pick(self.nums(scope, small=self.MAX_NUM_MAP))
                    k = r.choice([2, 3, 0.5])
                    text, fn = r.choice([("{x} * %s" % fmt_num(k), lambda x: x * k),
                                         ("{x} + %s" % fmt_num(k), lambda x: x + k),
                                         ("1 - {x}", lambda x: 1 - x),
                                         ("{x} > 0.5 ? 1 : 0", lambda x: 1 if x > 0.5 else 0),
                                         ("abs({x} - 0.5)", lambda x: abs(x - 0.5))])
                    vals = apply_set(fn, n.vals)
                    x = self.lam_param()
                    node = Op("numerical(map(%s -> %s, {0}))" % (x, text.replace("{x}", x)), n.node) \
                        if r.random() < 0.5 else Op("numerical(%s)" % text.replace("{x}", "{0}"), n.node)
                    self.reads_numerical(n)
                    return SOp(node, "num", vals, fmean=n.fmean)
                if c < 0.96:
                    return self.call(scope, depth, "num")
                if c < 0.98:                    # not linear: a clear compile error expected
                    a, b = self.pick(self.nums(scope)), self.pick(self.nums(scope))
                    return SOp(Op("numerical({0} * {1})", a.node, b.node), "num", None)
            except (Unfit, IndexError):
                continue
        s = self.pick([c for c in self.cats(scope, kind="num", small=8) if not c.agg] or [None])
        if s is None:
            raise Unfit("no numeric SOp")
        return self.numerical_of(s)

    def numerical_of(self, s):
        """numerical(s): an average when s is a categorical aggregate (docs/language.md section 8:
        also for a named copy), else s's values as numbers."""
        if s.agg:
            if s.node.kind == "agg":
                s.node.mean = True      # made numerical in place: it averages, never decodes one value
            vals = mean_set(s.vals, self.max_len)
            if vals is None:
                raise Unfit("mean set")
            return SOp(Op("numerical({0})", s.node), "num", vals, fmean=has_fraction(s.vals) or s.fmean)
        return SOp(Op("numerical({0})", s.node), "num", s.vals, fmean=s.fmean)

    def mean_of(self, sel, v, wrap, big=False):
        """The mean of v's values over sel (v numerical, or categorical made numerical). big: the
        value set may be too large to list here (then no map may read the mean), as long as
        tfmc's stays far below its limit of 262144 numbers."""
        vals = mean_set(v.vals, self.max_len) if v.vals is not None and len(v.vals) <= 60 else None
        if vals is None and not (big and v.vals is not None and math.comb(len(v.vals) + self.max_len, self.max_len) <= 100000):
            raise Unfit("mean set")
        node = Node("agg", kids=(sel.node, v.node), mean=True)
        return SOp(Op("numerical({0})", node) if wrap else node, "num", vals,
                   fmean=has_fraction(v.vals) or v.fmean)

    def reads_numerical(self, n):
        """A map over numerical SOp n: a discretising MLP, whose steps need gaps."""
        if n.fmean:
            self.risky = True

    # ------------------------------------------------------------ selectors

    def key_of(self, s):
        return s.node.text if s.node.kind == "name" else f"#{next(self.uid)}"

    def backward(self, fn):
        L = self.max_len
        return all(not fn(j, i) for i in range(L) for j in range(i + 1, L))

    def make_select(self, k, q, pred):
        """pred: a comparison operator, `true`/`false`, or (text, fn) of a lambda."""
        r = self.rng
        if isinstance(pred, tuple):
            text, fn = pred
            pk, pq = r.choice(SEL_PARAM_NAMES)
            ptext = "(%s, %s) -> %s" % (pk, pq, text.replace("{k}", pk).replace("{q}", pq))

            def pyf(a, b, fn=fn):
                try:
                    return bool(fn(a, b))
                except (ArithmeticError, TypeError, ValueError):
                    return False
        elif pred in ("true", "false"):
            ptext, pyf = pred, (lambda a, b, v=(pred == "true"): v)
        else:
            ptext, pyf = pred, (lambda a, b, op=pred: py_cmp(op, a, b))
        node = Op("select({0}, {1}, %s)" % ptext, k.node, q.node)
        posfn = None
        if k.posf is not None and q.posf is not None:
            kf, qf = k.posf, q.posf

            def posfn(j, i, kf=kf, qf=qf, pyf=pyf):
                a, b = kf(j), qf(i)
                return a is not None and b is not None and pyf(a, b)
        pos_only = k.pos_only and q.pos_only
        proved = posfn is not None and self.backward(posfn)
        return Sel(node, frozenset([(self.key_of(k), self.key_of(q))]), posfn, proved, pos_only)

    def sel_and(self, a, b):
        posfn = None
        if a.posfn and b.posfn:
            fa, fb = a.posfn, b.posfn

            def posfn(j, i, fa=fa, fb=fb):
                return fa(j, i) and fb(j, i)
        proved = (posfn is not None and self.backward(posfn)) or a.proved or b.proved
        return Sel(Op("{0} and {1}", a.node, b.node), a.pairs | b.pairs, posfn, proved, a.pos_only and b.pos_only)

    def sel_or(self, a, b):
        self.not_or = True
        posfn = None
        if a.posfn and b.posfn:
            fa, fb = a.posfn, b.posfn

            def posfn(j, i, fa=fa, fb=fb):
                return fa(j, i) or fb(j, i)
        proved = (posfn is not None and self.backward(posfn)) or (a.proved and b.proved)
        return Sel(Op("{0} or {1}", a.node, b.node), a.pairs | b.pairs, posfn, proved, a.pos_only and b.pos_only)

    def sel_not(self, a):
        self.not_or = True
        posfn = None
        if a.posfn:
            fa = a.posfn

            def posfn(j, i, fa=fa):
                return not fa(j, i)
        proved = posfn is not None and self.backward(posfn)
        return Sel(Op("not {0}", a.node), a.pairs, posfn, proved, a.pos_only)

    def pos_sop(self, scope):
        """indices, or a map of indices (positions only)."""
        r = self.rng
        idx = next(s for s in scope["sops"] if s.node.kind == "name" and s.node.text == "indices")
        named = [s for s in scope["sops"] if s.posf is not None and s.enc == "cat"]
        c = r.random()
        if c < 0.6:
            return idx
        if c < 0.75 and named:
            return r.choice(named)
        if c < 0.85 and not self.causal:        # reverse's opp: not positions only (length)
            length = next(s for s in scope["sops"] if s.node.kind == "name" and s.node.text == "length")
            off = r.choice([1, 1, 2, 0])
            vals = frozenset(l - i - off for l in range(1, self.max_len + 1) for i in range(self.max_len))
            return SOp(Op("{0} - {1} - %d" % off, length.node, idx.node), "cat", vals)
        if c < 0.92:
            return self._const_sop(r.choice([0, 0, 1, 2]))
        return self.map1(idx, [("{x} - 1", lambda x: x - 1), ("{x} + 1", lambda x: x + 1),
                               ("{x} - 2", lambda x: x - 2), ("floor({x} / 2)", lambda x: math.floor(x / 2)),
                               ("{x} % 2", lambda x: x % 2)])

    def _const_sop(self, v):
        return SOp(Lit(str(v)), "cat", frozenset([v]), posf=lambda p, v=v: v)

    def index_select(self, scope):
        """A selector that compares positions with positions: often never-later."""
        r = self.rng
        k, q = self.pos_sop(scope), self.pos_sop(scope)
        if r.random() < 0.5:
            # plain indices against indices most of the time
            k = q = next(s for s in scope["sops"] if s.node.kind == "name" and s.node.text == "indices")
        if r.random() < 0.45:
            pred = r.choice(["<", "<=", "==", "<=", "<", ">", ">=", "!="])
        else:
            pred = r.choice(sel_lambdas(r, "num", "num", k.vals, q.vals))
        return self.make_select(k, q, pred)

    def value_select(self, scope, depth):
        r = self.rng
        k = self.cat_sop(scope, depth - 1) if r.random() < 0.5 else self.pick(self.cats(scope))
        if r.random() < 0.4:
            q = k if k.node.kind == "name" else self.pick(self.cats(scope, kind=k.kind) or self.cats(scope))
        else:
            q = self.cat_sop(scope, depth - 1) if r.random() < 0.3 else self.pick(self.cats(scope))
        c = r.random()
        if c < 0.05:
            pred = r.choice(["true", "false"])
        elif c < 0.55 or k.kind is None or q.kind is None:
            pred = r.choice(CMP) if k.kind == q.kind else r.choice(["==", "!=", "<"])
        else:
            pred = r.choice(sel_lambdas(r, k.kind, q.kind, k.vals, q.vals))
        return self.make_select(k, q, pred)

    def selector(self, scope, depth, for_agg=False, prefix_bias=0.0):
        r = self.rng
        sel = None
        for _ in range(20):
            try:
                c = r.random()
                if scope["sels"] and c < 0.2:
                    sel = self.pick(scope["sels"])
                elif c < 0.2 + prefix_bias * 0.5:
                    idx = next(s for s in scope["sops"] if s.node.text == "indices")
                    sel = self.make_select(idx, idx, r.choice(["<=", "<=", "<"]))
                elif c < 0.5:
                    sel = self.index_select(scope)
                elif c < 0.75 or depth <= 0:
                    sel = self.value_select(scope, depth)
                elif c < 0.87:
                    a = self.selector(scope, depth - 1)
                    b = self.index_select(scope) if r.random() < 0.6 else self.selector(scope, depth - 1)
                    sel = self.sel_and(a, b) if r.random() < 0.5 else self.sel_and(b, a)
                elif c < 0.95:
                    # `or` / `not` over one (keys, queries) pair compiles; over several it is a
                    # clear error, which we want now and then
                    a = self.index_select(scope) if r.random() < 0.5 else self.value_select(scope, depth)
                    if r.random() < 0.85:
                        b = self._same_pair(a, scope)
                        sel = self.sel_or(a, b) if b is not None and r.random() < 0.6 else self.sel_not(a)
                    else:
                        sel = self.sel_or(a, self.selector(scope, depth - 1))
                else:
                    sel = self.sel_not(self.index_select(scope))
                break
            except (Unfit, IndexError):
                continue
        if sel is None:
            idx = next(s for s in scope["sops"] if s.node.text == "indices")
            sel = self.make_select(idx, idx, "<=")
        if for_agg and self.causal and not sel.proved:
            back = self.backward_select(scope)
            sel = self.sel_and(sel, back) if r.random() < 0.7 else self.sel_and(back, sel)
        return sel

    def backward_select(self, scope):
        r = self.rng
        idx = next(s for s in scope["sops"] if s.node.text == "indices")
        if scope["back"] and r.random() < 0.5:
            return r.choice(scope["back"])
        for _ in range(20):
            s = self.make_select(idx, idx, r.choice(["<=", "<=", "<", "=="]) if r.random() < 0.6 else
                                 r.choice(sel_lambdas(r, "num", "num", idx.vals, idx.vals)))
            if s.proved:
                return s
        return self.make_select(idx, idx, "<=")

    def _same_pair(self, a, scope):
        """A second select over exactly the keys and queries of select `a` (by name)."""
        if len(a.pairs) != 1:
            return None
        (kname, qname), = a.pairs
        if kname.startswith("#") or qname.startswith("#"):
            return None
        by = {s.node.text: s for s in scope["sops"] if s.node.kind == "name"}
        if kname not in by or qname not in by:
            return None
        k, q = by[kname], by[qname]
        r = self.rng
        if k.kind == q.kind and r.random() < 0.6:
            pred = r.choice(CMP)
        elif k.kind and q.kind:
            pred = r.choice(sel_lambdas(r, k.kind, q.kind, k.vals, q.vals))
        else:
            pred = "=="
        return self.make_select(k, q, pred)

    # ------------------------------------------------------------ functions

    def make_def(self, scope_builtins):
        """A def with one or two SOp parameters (a categorical one first), its body built with the
        same generator, returning a categorical or numerical SOp."""
        r = self.rng
        name = f"f{self.ndefs}"
        self.ndefs += 1
        nparams = r.choice([1, 1, 2])
        params, psops = [], []
        for j in range(nparams):
            pname = r.choice(["s", "x", "sop", "bools", "keys", "vals"]) + str(j)
            kind = r.choice(["str", "num", "num"])
            vals = frozenset(["a", "b"]) if kind == "str" else frozenset([0, 1, 2])
            params.append(pname)
            psops.append(SOp(Name(pname), "cat", vals))
        d = Def(name, params)
        d.param_kinds = [p.kind for p in psops]
        scope = {"sops": list(scope_builtins) + psops, "sels": [], "back": []}
        for j in range(r.choice([0, 1, 1, 2])):
            self.statement(scope, d.stmts, f"l{j}", depth=2)
        want = "num" if r.random() < 0.3 else "cat"
        out = self.num_sop(scope, 2) if want == "num" else self.cat_sop(scope, 2)
        if out.node.kind == "name":             # a call must return a fresh SOp, not an alias
            out = self.map1(out) if out.enc == "cat" else SOp(Op("numerical({0})", out.node), "num", out.vals,
                                                              fmean=out.fmean)
        d.ret, d.ret_info = out.node, out
        return d

    def call(self, scope, depth, want):
        r = self.rng
        defs = [d for d in scope.get("defs", []) if d.ret_info.enc == want]
        if not defs:
            raise Unfit("no def")
        d = r.choice(defs)
        args = []
        for kind in d.param_kinds:
            cands = self.cats(scope, kind=kind, small=12)
            if not cands:
                raise Unfit("no argument")
            s = self.pick(cands)
            if r.random() < 0.3:
                try:
                    s2 = self.map1(s)
                    if s2.kind == kind and len(s2.vals) <= 12:
                        s = s2
                except Unfit:
                    pass
            args.append(s.node)
        ri = d.ret_info
        return SOp(Node("call", d.name, args), ri.enc, ri.vals, agg=ri.agg, fmean=ri.fmean)

    # ------------------------------------------------------------ statements and programs

    def statement(self, scope, stmts, name, depth):
        r = self.rng
        c = r.random()
        if c < 0.3:
            sel = self.selector(scope, depth, for_agg=False)
            if sel.node.kind == "name":         # no aliases: a name must label its own node
                sel = self.sel_and(sel, self.index_select(scope))
            stmts.append((name, sel.node))
            # the name stands for the same select nodes, so it keeps their (keys, queries) pairs
            scope["sels"].append(Sel(Name(name), sel.pairs, sel.posfn, sel.proved, sel.pos_only))
            if sel.proved and sel.pos_only:
                scope["back"].append(scope["sels"][-1])
            return
        if c < 0.34 and "consts" in scope:
            # a named constant: a compile-time scalar, usable where an SOp is (a constant sequence)
            v = r.choice([0, 1, 2, 3])
            stmts.append((name, Lit(str(v))))
            scope["consts"].append((name, v))
            scope["sops"].append(SOp(Name(name), "cat", frozenset([v]), posf=lambda p, v=v: v))
            return
        s = self.num_sop(scope, depth) if c < 0.52 else self.cat_sop(scope, depth)
        if s.node.kind == "name" or s.node.kind == "lit":
            s = self.map1(s) if s.enc == "cat" and s.vals else SOp(Op("numerical({0})", s.node), "num", s.vals,
                                                                   fmean=s.fmean)
        stmts.append((name, s.node))
        scope["sops"].append(SOp(Name(name), s.enc, s.vals, posf=s.posf, pos_only=s.pos_only, agg=s.agg,
                                 fmean=s.fmean))

    def program(self):
        r = self.rng
        prog = Program(r.choice(["p", "prog", "sort", "shift", "frac", "hist"]))
        prog.header, vocab_vals = self.header()
        bi = self.builtins(vocab_vals)
        scope = {"sops": list(bi), "sels": [], "back": [], "defs": [], "consts": []}
        for _ in range(r.choice([0, 0, 0, 1, 1, 2])):
            for _try in range(5):
                try:
                    d = self.make_def(bi)
                    break
                except (Unfit, IndexError, StopIteration):
                    d = None
            if d is not None:
                prog.defs.append(d)
                scope["defs"].append(d)
        for j in range(r.randint(1, 8)):
            for _try in range(5):
                try:
                    self.statement(scope, prog.stmts, r.choice(["v", "s", "t", "a"]) + str(j), depth=2)
                    break
                except (Unfit, IndexError, StopIteration):
                    continue
        # the output: mostly the last statements, so that most of the program is live
        c = r.random()
        named = [s for s in scope["sops"] if s.node.kind == "name" and s.node.text not in ("tokens", "indices", "length")]
        try:
            if named and c < 0.45:
                out = named[-1]
            elif len(named) >= 2 and c < 0.6 and named[-1].enc == named[-2].enc == "cat":
                out = self.map2(named[-1], named[-2])
            elif c < 0.8:
                out = self.cat_sop(scope, 2)
            else:
                out = self.num_sop(scope, 2)
        except (Unfit, IndexError, StopIteration):
            out = named[-1] if named else bi[0]
        prog.ret = out.node
        return prog


def typed_program(rng):
    gen = TypedGen(rng)
    prog = gen.program()
    text = prog.text()
    etext, aggs, live = prog.explain()
    return text, prog.name, gen.words, gen.max_len, (etext, aggs, live, gen.not_or, gen.risky)

# ---------------------------------------------------------------- traces and explanations

# What the compiled weights cannot hold, as docs/compiling.md documents it ("What it cannot
# represent"): a difference between the transformer and the interpreter (or between -O levels, on
# such an input) traced back to one of these is counted, not failed.
DOCUMENTED = {
    "mixing": "a categorical aggregate whose query selects differing values",
    "num-undef": "a numerical SOp the interpreter calls undefined (the transformer holds 0)",
    "sel-undef": "undefined values in a selector combined with `not` / `or`",
    "bool-spelling": "booleans and the numbers they equal in one value set (`1` printed for `true`)",
    "near-equal-map": "numbers differing by double rounding feeding a categorical map",
    "width-conditioning": "selector_width's float32 conditioning at -O0 from max_len ~55",
}
WIDTH_CONDITIONING_MAX_LEN = 55     # docs/compiling.md: "-O0 miscounts from max_len 55"


def parse_trace(out):
    """Rows of a `--trace` output: label -> (kind, cells)."""
    rows = {}
    for line in out.splitlines():
        m = TRACE_ROW_RE.match(line)
        if m:
            rows.setdefault(m.group(1), (m.group(2), m.group(3).split()))
    return rows


def parse_selected(cell):
    cell = cell.strip("{}")
    out = set()
    for part in cell.split(","):
        if not part or part == "...":
            continue
        if ".." in part:
            a, b = part.split("..")
            out.update(range(int(a), int(b) + 1))
        else:
            out.add(int(part))
    return out


def norm_value(w):
    """A printed value as a number when it is one (true is 1), else as is."""
    w = w.decode("utf-8", "replace") if isinstance(w, bytes) else w
    if w in ("true", "false"):
        return float(w == "true")
    try:
        return float(w)
    except ValueError:
        return w


def same_numbers(a, b, tol):
    """Whether two output lines hold the same values up to tol, relative (printed differently)."""
    xs, ys = [norm_value(w) for w in a.split()], [norm_value(w) for w in b.split()]
    if len(xs) != len(ys):
        return False
    for x, y in zip(xs, ys):
        if isinstance(x, float) and isinstance(y, float):
            if abs(x - y) > tol * max(1.0, abs(x), abs(y)):
                return False
        elif x != y:
            return False
    return True


def spelling_hint(a, b):
    """A signature hint when two differing output lines hold equal values."""
    if [norm_value(w) for w in a.split()] == [norm_value(w) for w in b.split()]:
        return " in spelling only (equal values: true and 1, 1 and 1.0)"
    if same_numbers(a, b, 1e-9):
        return " by a rounding error (near-equal floats in a value set)"
    if same_numbers(a, b, 1e-6):
        return " by float32 rounding (a value set denser than float32 at its magnitude)"
    return None


def norm_cell(c):
    return {"true": "1", "false": "0"}.get(c, c)


def mixing_in(rows, pairs):
    """Whether a categorical aggregate (selector row, value row) selects two different values at
    some query; None when a row is missing."""
    unknown = False
    for ls, lv in pairs:
        if ls not in rows or lv not in rows:
            if lv in rows or ls in rows:
                unknown = True
            continue
        sel, vals = rows[ls][1], rows[lv][1]
        for cell in sel:
            picked = {norm_cell(vals[j]) for j in parse_selected(cell) if j < len(vals)}
            if len(picked) >= 2:
                return True
    return None if unknown else False

# ---------------------------------------------------------------- outputs of the commands


def parse_verify(rc, out, err):
    """('pass',) | ('cex', input, interpreter, transformer) | ('error', first error line) | None."""
    o = out.decode("utf-8", "replace")
    e = err.decode("utf-8", "replace")
    # exhaustive: "verified `NAME`"; sampled: "no difference on K sampled inputs"
    if rc == 0 and ("verified `" in o or "no difference on" in o):
        return ("pass",)
    if rc == 1:
        m = re.search(r"^\s*input:\s*(.*)$\n^\s*interpreter:\s*(.*)$\n^\s*transformer:\s*(.*)$", o, re.M)
        if m:
            return ("cex", m.group(1).strip(), m.group(2).strip(), m.group(3).strip())
        line = next((l for l in e.splitlines() if "error:" in l), None)
        if line:
            return ("error", re.sub(r"^\S+?:(\d+:\d+:)?\s*", "", line))
    return None


def parse_report(err):
    """The -O level's final (stored, FLOPs, weight bytes, arena bytes) from `--report`."""
    last = None
    for line in err.decode("utf-8", "replace").splitlines():
        m = REPORT_ROW_RE.match(line)
        if m and m.group(4) != "-":
            last = (int(m.group(2)), int(m.group(4)), int(m.group(5)), int(m.group(6)))
    return last


def split_lines(data):
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def bad_line_numbers(err):
    return sorted({int(m.group(1)) for m in re.finditer(rb"input line (\d+)", err)})

# ---------------------------------------------------------------- the fuzzer


class Fuzzer:
    def __init__(self, args):
        self.args = args
        self.runner = ff.Runner(args.tfmc, args.timeout, args.memory_mb)
        self.corpus = self._load_examples(args.examples)
        self.failures, self.known = [], []
        self.tmpdir = tempfile.mkdtemp(prefix="tfmc-fuzz-compile-")
        self.stats = dict.fromkeys(["generated", "rejected", "checked", "compiled", "uncompilable",
                                    "verified", "not judged", "lines", "c built", "big models"], 0)
        self.counts = {"documented": {}, "level flips": {}}     # per DOCUMENTED key
        self.examples = {}
        self.srcstats = {}
        self.cflags = None
        self.crash_reason = None
        self.sources = [(n, w) for n, w in SOURCES if not args.sources or n in args.sources.split(",")]

    @staticmethod
    def _load_examples(d):
        out = []
        if d and os.path.isdir(d):
            for name in sorted(os.listdir(d)):
                if name.endswith(".tfm"):
                    with open(os.path.join(d, name), "rb") as f:
                        text = f.read().decode("latin-1")
                    if "rasp " in text:
                        out.append(text)
        return out

    # ------------------------------------------------------------ generating

    def generate(self, rng, path):
        """(source, text, name, words, max_len, explain) of a program `tfmc check` accepts, or
        (source, text, None, ...) when the source made nothing valid; explain is None for
        programs of unknown structure."""
        total = sum(w for _, w in self.sources)
        pick = rng.uniform(0, total)
        src = self.sources[-1][0]
        for name, w in self.sources:
            if pick < w:
                src = name
                break
            pick -= w
        if src == "typed":
            text, name, words, max_len, explain = typed_program(rng)
            return src, text, name, words, max_len, explain
        for _ in range(12):                     # grammar / mutant: keep the first valid one
            if src == "grammar":
                text = ff.ProgramGen(rng).program()
            else:
                if not self.corpus:
                    return src, "", None, None, None, None
                text = rng.choice(self.corpus)
                for _ in range(rng.choice([1, 1, 2])):
                    text = ff.mutate_once(rng, text, self.corpus)
            if len(text) > 6000 or "\x00" in text:
                continue
            progs = [(n, h) for n, h in ff.find_programs(text)
                     if IDENT_RE.match(n) and h.vocab and h.complete and h.max_len and h.nvocab == 1
                     and all(re.fullmatch(r"[\x21-\x7e]{1,40}", w) for w in h.vocab)]
            if not progs:
                continue
            with open(path, "wb") as f:
                f.write(ff.text_bytes(text))
            rc, _, err = self.run_tfmc(["check", path])
            if rc != 0 and not ff.judge(rc, err):   # (a crash is kept: one() reports it)
                continue
            name, h = rng.choice(progs)
            words = ["1" if w == "true" else "0" if w == "false" else w for w in h.vocab]
            return src, text, name, words, h.max_len, None
        return src, "", None, None, None, None

    @staticmethod
    def respell(rng, w):
        """Another spelling of a number token that `tfmc eval` reads as the same value."""
        if re.fullmatch(r"-?[0-9]+", w) and rng.random() < 0.1:
            return rng.choice(["+" + w if not w.startswith("-") else w, ("-0" + w[1:]) if w.startswith("-") else "0" + w])
        if re.fullmatch(r"-?[0-9]+\.[0-9]+", w) and rng.random() < 0.2:
            return rng.choice([w + "0", w.rstrip("0").rstrip(".") if w.endswith(".0") else w + "00", w + "e0"])
        return w

    def input_lines(self, rng, words, max_len):
        lines = []
        for _ in range(rng.randint(4, 10)):
            n = rng.randint(1, min(max_len, MAX_LEN_CHECKED + 4))
            lines.append(" ".join(self.respell(rng, rng.choice(words)) for _ in range(n)))
        if rng.random() < 0.25:                 # a bad line: both sides must reject it alike
            bad = rng.choice(["zz_not_a_token", " ".join([words[0]] * (max_len + 1)), ""])
            lines.insert(rng.randrange(len(lines) + 1), bad)
        return lines

    # ------------------------------------------------------------ reporting

    def fail(self, it, src, sig, detail, files, cmd):
        """Save and print a failure; returns True when it is tolerated (--tolerate)."""
        os.makedirs(self.args.failures, exist_ok=True)
        base = os.path.join(self.args.failures, f"seed{self.args.seed}-iter{it}-{src}")
        saved = {}
        for suffix, content in files.items():
            p = base + suffix
            with open(p, "wb") as f:
                f.write(content if isinstance(content, bytes) else ff.text_bytes(content))
            saved[suffix] = p
        for a, b in saved.items():
            cmd = cmd.replace("{" + a + "}", b)
        known = next((k for k in self.args.tolerate if k in sig), None)
        (self.known if known else self.failures).append((sig, it, cmd))
        tag = "KNOWN" if known else "FAIL"
        print(f"{tag} iteration {it} (seed {self.args.seed}, {src}): {sig}"
              + (f" (tolerated: --tolerate {known!r})" if known else ""))
        print(f"  program: {saved.get('.tfm')}")
        print(f"  reproduce: {cmd}")
        for line in detail.rstrip("\n").splitlines()[:14]:
            print("    | " + line[:200])
        sys.stdout.flush()
        return bool(known)

    # ------------------------------------------------------------ one program

    def one(self, it):
        rng = random.Random(f"tfmc-fuzz-compile:{self.args.seed}:{it}")
        path = os.path.join(self.tmpdir, "prog.tfm")
        src, text, name, words, max_len, explain = self.generate(rng, path)
        self.stats["generated"] += 1
        s = self.srcstats.setdefault(src, {"generated": 0, "checked": 0, "compiled": 0, "verified": 0})
        s["generated"] += 1
        if name is None:
            self.stats["rejected"] += 1
            return True
        with open(path, "wb") as f:
            f.write(ff.text_bytes(text))
        epath = None
        if explain is not None:
            epath = os.path.join(self.tmpdir, "explain.tfm")
            with open(epath, "wb") as f:
                f.write(ff.text_bytes(explain[0]))
        self.cur = dict(it=it, src=src, text=text, name=name, path=path, epath=epath, explain=explain,
                        words=words, max_len=max_len, rng=rng)
        files = {".tfm": text}
        if explain is not None:
            files[".explain.tfm"] = explain[0]
        self.cur["files"] = files

        t0 = time.monotonic()
        rc, out, err = self.run_tfmc(["check", path])
        secs = time.monotonic() - t0
        if self.args.verbose:
            print(f"iteration {it} {src}: {len(text)} bytes, check exit {rc} ({secs:.2f} s)")
        reason = ff.judge(rc, err)
        if reason:
            return self.fail(it, src, f"check: {ff.signature(reason, err)}", err.decode("utf-8", "replace"),
                             files, f"{self.q(self.args.tfmc)} check {{.tfm}}")
        if rc != 0:
            self.stats["rejected"] += 1        # a typed program the checker refuses: a generator gap
            if self.args.verbose:
                print("  rejected by check:\n" + ff.describe_stderr(err))
            return True
        self.stats["checked"] += 1
        s["checked"] += 1
        ok = self.check_program(it, src, rng)
        return ok

    def q(self, a):
        return ff.shell_quote(a)

    def run_tfmc(self, args, stdin=None):
        """runner.run, waiting out a tfmc that is being rebuilt (relinked) under us."""
        for attempt in range(60):
            try:
                rc, out, err, _ = self.runner.run(args, stdin)
                return rc, out, err
            except OSError as e:
                if attempt == 59:
                    raise
                print(f"  (cannot start {self.args.tfmc}: {e}; retrying)")
                time.sleep(2)

    def tf(self, args, stdin=None):
        """Run tfmc; judge crashes, signals, sanitizers, timeouts, silent exit 1. Returns
        (rc, out, err, failure reason or None)."""
        rc, out, err = self.run_tfmc(args, stdin)
        reason = ff.judge(rc, err)
        if reason and rc == 1 and args[0] == "verify" and b"counterexample for" in out:
            reason = None           # verify explains a counterexample on standard output
        return rc, out, err, (ff.signature(reason, err) if reason else None)

    def cmdline(self, args, stdin_suffix=None):
        cur = self.cur
        parts = [self.q(self.args.tfmc)] + ["{.tfm}" if a == cur["path"] else
                                            "{.explain.tfm}" if a == cur["epath"] else self.q(a) for a in args]
        cmd = " ".join(parts)
        if stdin_suffix:
            cmd += " < {" + stdin_suffix + "}"
        return cmd

    def crash(self, what, args, rc, err, stdin=None):
        files = dict(self.cur["files"])
        if stdin is not None:
            files[".input"] = stdin
        return self.fail(self.cur["it"], self.cur["src"], f"{what}: {self.crash_reason}",
                         f"exit {rc}\n" + err.decode("utf-8", "replace"), files,
                         self.cmdline(args, ".input" if stdin is not None else None))

    def classify(self, words_line):
        """What the interpreter's trace of the explain twin says about this input: (KIND, trace),
        KIND 'mixing' (a live categorical aggregate selects differing values), 'num-undef' (a
        numerical SOp is undefined), 'sel-undef' (undefined values in a program that combines
        selectors with `or` / `not`), 'undef' (other undefined values), '' (none of these), or
        None when the program's structure is unknown (grammar, mutant) or the twin does not run."""
        cur = self.cur
        if cur["explain"] is None:
            return None, ""
        _, aggs, live, not_or, _ = cur["explain"]
        pairs = [(ls, lv) for stmt, ls, lv in aggs if stmt in live]
        args = ["eval", "--trace", cur["epath"], "--"] + words_line.split()
        rc, out, err, bad = self.tf(args)
        if bad or rc != 0:
            return None, ""
        text = out.decode("utf-8", "replace")
        rows = parse_trace(text)
        m = mixing_in(rows, pairs)
        if m:
            return "mixing", text
        if m is None:
            return None, text
        if any(kind == "num" and "_" in cells for kind, cells in rows.values()):
            return "num-undef", text
        if any("_" in cells for kind, cells in rows.values()):
            return ("sel-undef" if not_or else "undef"), text
        return "", text

    def judge_difference(self, line, a=b"", b=b"", versus_eval=False, o0_alone=False):
        """Why two outputs (a, b) on input `line` differ: (KEY, hint, trace). KEY names a
        limitation docs/compiling.md documents (the difference is counted, not failed); None when
        it cannot be judged (unknown structure, against the interpreter); '' for a failure, whose
        signature gets `hint`. o0_alone: -O0 is the odd one out (-O1 and -O2 agree)."""
        kind, trace = self.classify(line)
        if kind in DOCUMENTED:
            return kind, "", trace
        if o0_alone and self.cur["max_len"] >= WIDTH_CONDITIONING_MAX_LEN and \
                re.search(r"\b(selector_width|length)\b", self.cur["text"]):
            return "width-conditioning", "", trace
        width = o0_alone and re.search(r"\b(selector_width|length)\b", self.cur["text"])
        if kind is None:
            if versus_eval:
                return None, "", trace
            # -O levels disagree on a program of unknown structure: its own trace
            rows = parse_trace(self.trace_of(line))
            if any(k == "num" and "_" in cells for k, cells in rows.values()):
                return "num-undef", "", trace
            # the interpreter says undefined somewhere, and some named selector against some
            # named categorical SOp mixes values: an over-approximation of the aggregates the
            # program may have (the fuzzer cannot see unnamed ones)
            sels = [l for l, (k, _) in rows.items() if k == "sel"]
            cats = [l for l, (k, _) in rows.items() if k == "cat"]
            if any("_" in cells for _, cells in rows.values()) and \
                    mixing_in(rows, [(a, b) for a in sels for b in cats]):
                return "mixing", "", trace
        if self.near_duplicates() or (self.cur["explain"] and self.cur["explain"][4] and kind in ("", "undef")):
            return "near-equal-map", "", trace
        hint = spelling_hint(a, b)
        if versus_eval and hint and "spelling" in hint and re.search(rb"\b(true|false)\b", a + b" " + b):
            return "bool-spelling", "", trace
        if hint is None:
            hint = " (undefined values involved)" if kind == "undef" else ""
        if width:
            hint += f" (-O0 alone, selector_width / length at max_len {self.cur['max_len']}: below the documented 55)"
        return "", hint, trace

    def count(self, what, key, example=None):
        self.counts[what][key] = self.counts[what].get(key, 0) + 1
        if example is not None:
            c = self.cur
            self.examples.setdefault((what, key), f"seed {self.args.seed} iteration {c['it']} ({c['src']}): {example}")
            self.note(f"{what} ({key}): {example}")

    def note(self, text):
        if self.args.verbose:
            print("  note: " + text)

    def trace_of(self, words_line):
        args = ["eval", "--trace", self.cur["path"], "-p", self.cur["name"], "--"] + words_line.split()
        rc, out, err, _ = self.tf(args)
        return out.decode("utf-8", "replace")

    def check_program(self, it, src, rng):
        cur = self.cur
        path, name = cur["path"], cur["name"]
        st = self.srcstats[src]
        # ---- 0. the size of the -O0 model (a huge dense one gets fewer verify inputs)
        rep = {}
        args = [path, "-p", name, "-O0", "--report", "-o", os.path.join(self.tmpdir, "report.c")]
        rc, out, err, bad = self.tf(args)
        if bad:
            self.crash_reason = bad
            return self.crash("compile -O0 --report", args, rc, err)
        rep["-O0"] = parse_report(err) if rc == 0 else None
        samples, max_len = self.args.samples, min(cur["max_len"], MAX_LEN_CHECKED)
        if rep["-O0"] and rep["-O0"][0] > BIG_MODEL:
            samples, max_len = min(samples, 100), min(max_len, 3)
            self.stats["big models"] += 1
        # ---- 1. verify at every level
        results = {}
        for lvl in LEVELS:
            args = ["verify", path, "-p", name, lvl, "--samples", str(samples), "--len", str(max_len)]
            rc, out, err, bad = self.tf(args)
            if bad:
                self.crash_reason = bad
                return self.crash(f"verify {lvl}", args, rc, err)
            res = parse_verify(rc, out, err)
            if res is None:
                return self.fail(it, src, f"verify {lvl}: unexpected output (exit {rc})",
                                 (out + err).decode("utf-8", "replace"), cur["files"], self.cmdline(args))
            results[lvl] = (res, args, out)
        kinds = {lvl: r[0][0] for lvl, r in results.items()}
        if any(k == "error" for k in kinds.values()):
            msgs = {lvl: (r[0][1] if r[0][0] == "error" else r[0][0]) for lvl, r in results.items()}
            if len(set(msgs.values())) != 1:
                detail = "\n".join(f"{lvl}: {m}" for lvl, m in msgs.items())
                return self.fail(it, src, "a compile error at some -O levels only", detail, cur["files"],
                                 self.cmdline(results["-O2"][1]))
            msg = msgs["-O0"]
            if "cannot compile" not in msg and "too large" not in msg:
                return self.fail(it, src, "verify: an error that is not `cannot compile`: " +
                                 re.sub(r"\b\d+\b", "N", re.sub(r"^error:\s*", "", msg))[:90], msg, cur["files"],
                                 self.cmdline(results["-O0"][1]))
            self.stats["uncompilable"] += 1
            if self.args.verbose:
                print(f"  not compilable: {msg}")
            # run must say the same
            args = ["run", path, "-p", name, "-O2", "--", cur["words"][0]]
            rc, out, err, bad = self.tf(args)
            if bad:
                self.crash_reason = bad
                return self.crash("run -O2", args, rc, err)
            if rc != 1 or "cannot compile" not in err.decode("utf-8", "replace") and "too large" not in err.decode("utf-8", "replace"):
                return self.fail(it, src, "run accepts a program verify cannot compile",
                                 f"exit {rc}\n" + (out + err).decode("utf-8", "replace"), cur["files"], self.cmdline(args))
            return True
        self.stats["compiled"] += 1
        st["compiled"] += 1
        # every counterexample input, through the three levels: they must print the same
        cexs = []
        for lvl in LEVELS:
            res = results[lvl][0]
            if res[0] == "cex" and res[1] not in cexs:
                cexs.append(res[1])
        if cexs:
            data = ff.text_bytes("".join(l + "\n" for l in cexs))
            outs = {}
            for lvl in LEVELS:
                args = ["run", lvl, path, "-p", name]
                rc, out, err, bad = self.tf(args, data)
                if bad:
                    self.crash_reason = bad
                    return self.crash(f"run {lvl}", args, rc, err, data)
                outs[lvl] = (split_lines(out), args)
            for k, line in enumerate(cexs):
                got = {lvl: (outs[lvl][0][k] if k < len(outs[lvl][0]) else b"?") for lvl in LEVELS}
                if len(set(got.values())) == 1:
                    continue
                odd = next(lvl for lvl in ("-O1", "-O2") if got[lvl] != got["-O0"])
                key, hint, _ = self.judge_difference(line, got[odd], got["-O0"], o0_alone=got["-O1"] == got["-O2"])
                if key:
                    self.count("level flips", key, f"{line!r}: " + ", ".join(f"{l} {v.decode()}" for l, v in got.items()))
                    continue
                interp = next(results[l][0][2] for l in LEVELS if results[l][0][0] == "cex" and results[l][0][1] == line)
                detail = f"input {line}\ninterpreter: {interp}\n" + \
                    "\n".join(f"run {lvl}: {v.decode()}" for lvl, v in got.items())
                if not self.judge_failure(f"run {odd} differs from run -O0 (on a verify counterexample){hint}", detail,
                                          self.cmdline(outs[odd][1], ".input"), stdin=data):
                    return False
        base = results["-O0"][0]
        for lvl in ("-O1", "-O2"):          # (the run comparison above catches these first)
            res = results[lvl][0]
            if (base[0] == "pass") != (res[0] == "pass"):
                line = res[1] if res[0] == "cex" else base[1]
                key, hint, _ = self.judge_difference(line, o0_alone=res[0] == "pass" and
                                                     results["-O1"][0][0] == results["-O2"][0][0] == "pass")
                if key:
                    self.count("level flips", key, f"verify passes at one level only on {line!r}")
                    continue
                failing = lvl if res[0] == "cex" else "-O0"
                passing = "-O0" if failing == lvl else lvl
                if not self.judge_failure(f"verify {failing} fails where {passing} passes{hint}",
                                          results[failing][2].decode("utf-8", "replace"),
                                          self.cmdline(results[failing][1])):
                    return False
        # counterexamples against the interpreter: a documented limitation, or a failure
        failing = [lvl for lvl in LEVELS if results[lvl][0][0] == "cex"]
        judged = set()
        for lvl in failing:
            res, args, out = results[lvl]
            if res[1] in judged:
                continue
            judged.add(res[1])
            key, hint, trace = self.judge_difference(res[1], res[3].encode(), res[2].encode(), versus_eval=True,
                                                     o0_alone=[l for l in failing if results[l][0][1] == res[1]] == ["-O0"])
            if key:
                self.count("documented", key)
                continue
            if key is None:
                self.stats["not judged"] += 1
                continue
            levels = "/".join(l for l in failing if results[l][0][1] == res[1])
            detail = out.decode("utf-8", "replace") + ("\ntrace of the explain twin:\n" + trace if trace else "")
            if not self.judge_failure(f"verify {levels}: the transformer differs from the interpreter{hint}",
                                      detail, self.cmdline(args)):
                return False
        if all(k == "pass" for k in kinds.values()):
            self.stats["verified"] += 1
            st["verified"] += 1

        # ---- 2. run at every level and eval on the same lines
        lines = self.input_lines(rng, cur["words"], cur["max_len"])
        data = ff.text_bytes("".join(l + "\n" for l in lines))
        outs = {}
        for cmd in ("eval",) + LEVELS:
            args = ["eval", path, "-p", name] if cmd == "eval" else ["run", cmd, path, "-p", name]
            rc, out, err, bad = self.tf(args, data)
            if bad:
                self.crash_reason = bad
                return self.crash(" ".join(args[:2]) if cmd != "eval" else "eval", args, rc, err, data)
            outs[cmd] = (rc, split_lines(out), bad_line_numbers(err), args)
        self.stats["lines"] += len(lines)
        ref = outs["-O0"]
        for lvl in ("-O1", "-O2"):
            o = outs[lvl]
            if o[0] != ref[0] or o[2] != ref[2] or len(o[1]) != len(ref[1]):
                if not self.judge_failure(f"run {lvl} and run -O0 exit or reject lines differently",
                                          f"-O0: exit {ref[0]}, bad lines {ref[2]}\n{lvl}: exit {o[0]}, bad lines {o[2]}",
                                          self.cmdline(o[3], ".input"), stdin=data):
                    return False
                continue
            for k, (a, b) in enumerate(zip(ref[1], o[1])):
                if a == b:
                    continue
                key, hint, _ = self.judge_difference(lines[k], b, a,
                                                     o0_alone=outs["-O1"][1][k:k + 1] == outs["-O2"][1][k:k + 1])
                if key:
                    self.count("level flips", key, f"{lines[k]!r}: -O0 {a.decode()}, {lvl} {b.decode()}")
                    continue
                if not self.judge_failure(f"run {lvl} differs from run -O0{hint}",
                                          f"input line {k + 1}: {lines[k]}\n-O0: {a.decode()}\n{lvl}: {b.decode()}",
                                          self.cmdline(o[3], ".input"), stdin=data):
                    return False
                break
        ev = outs["eval"]
        if ev[0] != ref[0] or ev[2] != ref[2] or len(ev[1]) != len(ref[1]):
            if not self.judge_failure("run and eval exit or reject lines differently",
                                      f"eval: exit {ev[0]}, bad lines {ev[2]}\nrun -O0: exit {ref[0]}, bad lines {ref[2]}",
                                      self.cmdline(ref[3], ".input"), stdin=data):
                return False
        else:
            for k, (a, b) in enumerate(zip(ev[1], ref[1])):
                if a == b:
                    continue
                key, hint, trace = self.judge_difference(lines[k], b, a, versus_eval=True)
                if key:
                    self.count("documented", key)
                    continue
                if key is None:
                    self.stats["not judged"] += 1
                    continue
                if not self.judge_failure(f"run differs from eval{hint}",
                                          f"input line {k + 1}: {lines[k]}\neval: {a.decode()}\nrun -O0: {b.decode()}\n{trace}",
                                          self.cmdline(ref[3], ".input"), stdin=data):
                    return False
                break

        # ---- 3. -O2 smaller and faster than -O0
        for lvl in ("-O0", "-O2"):
            if rep.get(lvl):
                continue
            args = [path, "-p", name, lvl, "--report", "-o", os.path.join(self.tmpdir, "report.c")]
            rc, out, err, bad = self.tf(args)
            if bad:
                self.crash_reason = bad
                return self.crash(f"compile {lvl} --report", args, rc, err)
            rep[lvl] = parse_report(err)
            if rc != 0 or rep[lvl] is None:
                return self.fail(it, src, f"compile {lvl}: failed or no --report table",
                                 f"exit {rc}\n" + err.decode("utf-8", "replace"), cur["files"], self.cmdline(args))
        a, b = rep["-O0"], rep["-O2"]
        cols = ("stored parameters", "FLOPs/token", "weight bytes", "arena bytes")
        worse = [f"{c}: -O0 {x}, -O2 {y}" for c, x, y in zip(cols, a, b) if y > x]
        if a[0] > 0 and b[0] >= a[0]:
            worse.append(f"stored parameters not smaller: -O0 {a[0]}, -O2 {b[0]}")
        if worse:
            if not self.judge_failure("-O2 is not smaller than -O0", "\n".join(worse),
                                      self.cmdline([path, "-p", name, "-O2", "--report", "-o", "/dev/null"])):
                return False

        # ---- 4. the generated C
        if self.args.c_every and it % self.args.c_every == 0:
            return self.check_c(data, outs["-O2"])
        return True

    def near_duplicates(self):
        """Residual dimensions of one SOp whose values print alike (floats that differ in the last
        bits, e.g. a mean computed two ways): the discretising MLP that reads them has no gap."""
        args = [self.cur["path"], "-p", self.cur["name"], "-O0", "--emit=model"]
        rc, out, err, bad = self.tf(args)
        if rc != 0 or bad:
            return []
        seen, dups = set(), []
        for line in out.decode("utf-8", "replace").splitlines():
            if re.match(r"^\s+\d+=", line):
                for m in re.finditer(r"\b\d+=(\S+)", line):
                    if m.group(1) in seen:
                        dups.append(m.group(1))
                    seen.add(m.group(1))
        return dups

    def judge_failure(self, sig, detail, cmd, stdin=None):
        """Report a failure; returns True when it is tolerated (the caller goes on)."""
        files = dict(self.cur["files"])
        if stdin is not None:
            files[".input"] = stdin
        return self.fail(self.cur["it"], self.cur["src"], sig, detail, files, cmd)

    def check_c(self, data, run_o2):
        cur = self.cur
        if self.cflags is None:
            rc, out, err = self.run_tfmc(["config", "--cflags", "--libs"])
            self.cflags = out.decode().split() if rc == 0 else []
            if self.runner.sanitized:
                self.cflags.append("-fsanitize=address,undefined")
        cfile = os.path.join(self.tmpdir, "prog.c")
        exe = os.path.join(self.tmpdir, "prog")
        args = [cur["path"], "-p", cur["name"], "-O2", "--main", "-o", cfile]
        rc, out, err, bad = self.tf(args)
        if bad or rc != 0:
            self.crash_reason = bad or f"exit {rc}"
            return self.crash("compile -O2 --main", args, rc, err)
        cc = os.environ.get("CC", "cc")
        cc_args = [cc, "-std=c99", "-O2", cfile] + self.cflags + ["-o", exe]
        p = ff.limits.run_confirmed(cc_args, None, CC_TIMEOUT * ff.limits.time_factor())
        if p.timed_out:
            return self.judge_failure("the generated C: cc timed out", "", self.cmdline(args))
        p.returncode, p.stderr = p.rc, p.err
        if p.returncode != 0:
            files = dict(cur["files"])
            return self.judge_failure("the generated C does not compile", p.stderr.decode("utf-8", "replace"),
                                      self.cmdline(args) + " && " + " ".join(self.q(a) for a in cc_args))
        self.stats["c built"] += 1
        rc, out, err, _ = self.runner.run([], data, exe=exe)
        reason = ff.judge(rc, err)
        got = (rc, split_lines(out), bad_line_numbers(err))
        want = (run_o2[0], run_o2[1], run_o2[2])
        if reason or got != want:
            detail = f"{reason or ''}\nC: exit {rc}\n{out.decode('utf-8', 'replace')}{err.decode('utf-8', 'replace')}" \
                     f"\nrun -O2: exit {want[0]}\n" + "\n".join(l.decode("utf-8", "replace") for l in want[1])
            if reason:
                sig = f"the generated C: {reason}"
            elif got[2] != want[2]:
                vocab = re.search(r"vocab\s*\{([^}]*)\}", cur["text"])
                vocab = vocab.group(1) if vocab else ""
                kind = (" (a boolean vocabulary)" if re.search(r"\b(true|false)\b", vocab) else
                        " (a float vocabulary)" if re.search(r"\d\.\d", vocab) else "")
                sig = "the generated C reads input lines differently from run -O2" + kind
            else:
                sig = "the generated C prints other values than run -O2"
            return self.judge_failure(sig,
                                      detail, self.cmdline(args) + " && cc -std=c99 -O2 OUT.c $(tfmc config --cflags --libs) && ./a.out",
                                      stdin=data)
        return True

    # ------------------------------------------------------------ the loop

    def main(self):
        passed = failed = 0
        t0 = time.monotonic()
        print(f"fuzzing the RASP compiler {self.args.tfmc} (seed {self.args.seed}, iterations "
              f"{self.args.start}..{self.args.start + self.args.iterations - 1}"
              f"{', sanitizer build' if self.runner.sanitized else ''})")
        sys.stdout.flush()
        def stop(signum, frame):
            raise KeyboardInterrupt
        signal.signal(signal.SIGTERM, stop)
        try:
            for i in range(self.args.start, self.args.start + self.args.iterations):
                if self.one(i):
                    passed += 1
                else:
                    failed += 1
                if self.args.progress and (i + 1) % self.args.progress == 0:
                    print(f"  ... {i + 1} iterations, {failed} failed, {time.monotonic() - t0:.0f} s")
                    sys.stdout.flush()
        except KeyboardInterrupt:
            # a campaign stopped by SIGINT / SIGTERM still gets its summary (the iteration that
            # was running counts as neither passed nor failed)
            print(f"interrupted at iteration {self.args.start + passed + failed}")
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        st = self.stats
        print(f"programs: {st['generated']} generated, {st['checked']} checked, {st['compiled']} compiled "
              f"({st['uncompilable']} rejected with `cannot compile`), {st['verified']} verified at every level, "
              f"{st['rejected']} not valid")
        for src, s in sorted(self.srcstats.items()):
            print(f"  {src:8s} {s['generated']:6d} generated {s['checked']:6d} checked {s['compiled']:6d} compiled "
                  f"{s['verified']:6d} verified")
        print(f"  {st['lines']} input lines run, {st['c built']} C programs built and run; differences not judged "
              f"(a grammar or mutant program against the interpreter): {st['not judged']}; models over "
              f"{BIG_MODEL} parameters at -O0 (verified on fewer inputs): {st['big models']}")
        for what, title in (("documented", "differences from the interpreter explained by docs/compiling.md"),
                            ("level flips", "-O levels printing differently on such inputs (not failed)")):
            if self.counts[what]:
                print(f"  {title}:")
                for key, n in sorted(self.counts[what].items(), key=lambda kv: -kv[1]):
                    print(f"    {n:6d} x {DOCUMENTED[key]}")
                    if (what, key) in self.examples:
                        print(f"             e.g. {self.examples[(what, key)][:160]}")
        for title, items in (("tolerated (--tolerate)", self.known), ("failure", self.failures)):
            if not items:
                continue
            groups = {}
            for sig, it, cmd in items:
                groups.setdefault(sig, []).append((it, cmd))
            print(f"{len(groups)} distinct {title} signature(s):")
            for sig, its in sorted(groups.items(), key=lambda kv: -len(kv[1])):
                print(f"  {len(its):5d} x {sig}")
                print(f"          e.g. {its[0][1]}")
        print(f"{time.monotonic() - t0:.1f} s")
        if self.known:
            print(f"{len(self.known)} tolerated known failure(s) counted as passed")
        for line in self.runner.summary():
            print(line)
        print(f"{passed} passed, {failed} failed")
        return 1 if failed else 0


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="Differential fuzzing of the RASP compiler (-O0/-O1/-O2, interpreter, C).")
    ap.add_argument("tfmc", help="the tfmc executable")
    ap.add_argument("--iterations", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=int, default=0, help="the first iteration (to replay one)")
    ap.add_argument("--examples", default=os.path.join(here, "..", "..", "examples"))
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per command (times TFMC_TEST_TIME_FACTOR, times 3 in a sanitizer build; a run over it is run again with ten times as much)")
    ap.add_argument("--memory-mb", type=int, default=ff.MEMORY_LIMIT_MB,
                    help="a run whose resident set passes this many MB is killed and is a finding")
    ap.add_argument("--failures", default=DEFAULT_FAILURES_DIR, help="where failing programs are saved")
    ap.add_argument("--sources", default="", help="a comma-separated subset of: " + ", ".join(n for n, _ in SOURCES))
    ap.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="verify's --samples")
    ap.add_argument("--c-every", type=int, default=10, help="build the -O2 C of every N-th program (0: never)")
    ap.add_argument("--tolerate", action="append", default=[], metavar="TEXT",
                    help="count a failure whose signature contains TEXT as passed (a known, reported bug)")
    ap.add_argument("--progress", type=int, default=0, help="print progress every N iterations")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    args.tfmc = os.path.abspath(args.tfmc)
    if not os.access(args.tfmc, os.X_OK):
        print(f"fuzz_compile.py: {args.tfmc} is not an executable", file=sys.stderr)
        return 2
    if args.sources and not set(args.sources.split(",")) <= {n for n, _ in SOURCES}:
        print(f"fuzz_compile.py: unknown source in --sources {args.sources}", file=sys.stderr)
        return 2
    return Fuzzer(args).main()


if __name__ == "__main__":
    sys.exit(main())
