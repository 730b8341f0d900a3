#!/usr/bin/env python3
"""Deterministic fuzzing of tfmc's weight files (ir/safetensors.c) and model declarations.

Usage: fuzz_weights.py TFMC [--iterations N] [--seed S] [--fixtures DIR]
                            [--start I] [--timeout SECONDS] [--failures DIR]
                            [--generators NAME,...] [--tolerate TEXT]... [--progress N]
                            [--verbose]

The corpus is the model fixtures (tests/fixtures/*.tfm and the .safetensors files they name:
F32, F16 and BF16, in the tfmc, GPT-2 and Llama naming schemes) and, for every fixture, the same
weights exported by `TFMC FIXTURE --emit=weights -o OUT.safetensors` (tfmc scheme, F32). Every
iteration picks a fixture and a generator, writes a weights file and a copy of the fixture's
declaration pointing at it into a temporary folder, and runs `TFMC check model.tfm` and, when
that passes, `TFMC run model.tfm --logits 1 2 3` (now and then argmax or `--generate` instead).

  tiny     the file as empty, 1..16 bytes, a bare header length, `{}` with or without data
  hlen     the 8-byte header length: 0, odd, +-1, past the end of the file, 2^32, 2^63, 2^64-1
  jbytes   the JSON text mutated as bytes: truncated, bytes deleted / duplicated / swapped /
           inserted / replaced, NULs, invalid UTF-8 (header length fixed up or not)
  jstruct  the JSON mutated as structure: dtypes (F64, I32, lower case, escaped, non-strings),
           shapes (transposed, rank +-1, zero, huge, negative, floats, rank 9), data_offsets
           (negative, reversed, shifted, past the data, overlapping, huge, wrong arity), tensors
           duplicated / missing / extra / renamed (prefixes, \\u escapes, NUL, long names),
           values swapped, an entry that is not an object, junk fields, empty tensors that the
           GPT-2 / Llama schemes ignore, __metadata__ junk (deep nesting, huge numbers, NaN
           literals, bad escapes, control characters, invalid UTF-8)
  data     the data region: truncated, extended, bytes flipped, elements set to NaN / +-Inf /
           FLT_MAX / subnormals (in F32, F16 and BF16 encodings), holes filled with NaNs
  equiv    rewrites that keep the meaning (entries and data reordered, whitespace and padding,
           string metadata, names with \\u escapes, F16/BF16 converted to F32 exactly, HF
           prefixes and ignored buffers, a tied GPT-2 lm_head equal to wte): the run must
           succeed and print the same logits as the unmodified fixture
  decl     the declaration mutated lightly: vocab / max_len / dim / heads / kv_heads / head_dim /
           hidden / experts / top / window / block counts (small steps and huge values), the
           naming scheme (`as gpt2|llama|tfmc`, none), positions, tied / separate, shared blocks,
           the weights path (missing, a folder, /dev/null, the .tfm itself, an empty file, a
           named pipe, a 5000-byte name, `init random`), sometimes with a mutated weights file
  splice   one fixture's declaration with another's weights, or one file's header with
           another's data

A run fails when it
  - exits with a status other than 0 or 1 (usage errors, 2, included),
  - dies from a signal, or takes longer than the timeout (10 s; fuzz_frontend.py's Limits) twice,
  - prints `AddressSanitizer`, `LeakSanitizer` or `runtime error` on stderr,
  - exits 1 with nothing on stderr,
  - (a model that ran) loaded a weights file that breaks a promise of docs/weights.md: the file
    must be a well-formed safetensors file (8-byte length, a header of strict UTF-8 JSON, dtypes
    F32/F16/BF16, integer shapes, [begin, end] inside the data with end - begin = dtype x shape,
    no two tensors sharing bytes, no tensor listed twice) whose tensors, except the buffers the
    scheme ignores, hold no NaN or infinity; and when the declaration was not mutated, the file
    must hold exactly the tensors of the fixture's file, with the same shapes (modulo the
    documented GPT-2 / Llama prefixes, ignored buffers, a longer `wpe` and a tied `lm_head`
    equal to `wte`),
  - (a model that ran with --logits) prints a NaN or infinite logit although every weight is
    finite and at most 1e4 in magnitude (larger weights may overflow f32 honestly),
  - (equiv) is rejected, or prints logits different from the unmodified fixture's.
  - takes more memory than the limit (1024 MB resident: --memory-mb), a declared model included.
Runs are limited in time and memory as in fuzz_frontend.py (tests/limits.py). A mutated
declaration may ask for gigabytes of weights (`hidden 16777216`, `dim 65536`): `tfmc run` gets
`--max-memory=` half the memory limit (when tfmc has the option), and must refuse such a model
before taking its memory (docs/models.md); a run that takes it anyway is a finding, saved with
its input, not a machine swapping for a minute.

--tolerate TEXT (repeatable) counts a failure whose signature contains TEXT as passed: for known,
reported bugs, so that a registered short run stays useful until they are fixed. Tolerated
failures are still saved and printed (as KNOWN).

Every failing case is saved as a folder under --failures (default
/tmp/tfmc-fuzz-weights-failures/) holding model.tfm and its weights file, with the command that
reproduces it. The last line of the output is exactly `N passed, M failed` (one count per
iteration); the exit status is 1 when anything failed. Iteration I of seed S is the same on every
run: `--seed S --start I --iterations 1` replays it.

Standard library only.
"""

import argparse
import array
import json
import math
import os
import random
import re
import shlex
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fuzz_frontend as ff  # noqa: E402

DEFAULT_TIMEOUT = 10.0
PLAIN_ADDRESS_SPACE_MB = ff.PLAIN_ADDRESS_SPACE_MB  # RLIMIT_AS for a build without sanitizers
DEFAULT_FAILURES_DIR = "/tmp/tfmc-fuzz-weights-failures"
STDERR_SHOWN_LINES = 12
HONEST_OVERFLOW = 1e4            # weights above this may overflow f32 in a forward pass

SANITIZER_MARKERS, UBSAN_LINE_RE = ff.SANITIZER_MARKERS, ff.UBSAN_LINE_RE
ALLOC_WARNING_RE = re.compile(r"(?m)^==\d+==(WARNING: AddressSanitizer failed to allocate 0x[0-9a-f]+ bytes"
                              r"|AddressSanitizer: soft rss limit exhausted \(\d+Mb vs \d+Mb\))\n?")

ELEM = {"F32": 4, "F16": 2, "BF16": 2}
WEIGHTS_RE = re.compile(r'weights\s+"([^"]*)"(\s+as\s+(\w+))?\s*;')

# ---------------------------------------------------------------- safetensors in Python


class Raw:
    """JSON text written as is (for values json.dumps cannot produce)."""

    def __init__(self, text):
        self.text = text


def dump(v):
    """JSON text of v; dicts may be lists of (key, value) pairs (duplicates kept), Raw as is."""
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, Pairs):
        return "{" + ",".join(dump_key(k) + ":" + dump(x) for k, x in v) + "}"
    if isinstance(v, dict):
        return "{" + ",".join(dump_key(k) + ":" + dump(x) for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(dump(x) for x in v) + "]"
    return json.dumps(v)


def dump_key(k):
    return k.text if isinstance(k, Raw) else json.dumps(k)


class Pairs(list):
    """A JSON object as its list of (key, value) pairs, in order, duplicates kept."""


class StError(Exception):
    pass


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def st_split(b):
    """(header bytes, data bytes) of a file, or StError."""
    if len(b) < 8:
        raise StError("fewer than 8 bytes")
    n = int.from_bytes(b[:8], "little")
    if n > len(b) - 8:
        raise StError("header length beyond the file")
    return b[8:8 + n], b[8 + n:]


def st_header(hdr):
    """The header as Pairs (strict UTF-8, strict JSON), or StError."""
    try:
        text = hdr.decode("utf-8")
        obj = json.loads(text, object_pairs_hook=Pairs, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise StError("a header that is not UTF-8")
    except (ValueError, RecursionError) as e:
        raise StError(f"malformed JSON ({type(e).__name__})")
    if not isinstance(obj, Pairs):
        raise StError("malformed JSON (not an object)")
    return obj


def st_parse(b):
    """A well-formed file as (entries [(name, dtype, shape, begin, end)], metadata, data)."""
    hdr, data = st_split(b)
    obj = st_header(hdr)
    entries, meta, seen = [], None, set()
    for name, v in obj:
        if name == "__metadata__":
            meta = v
            continue
        if name in seen:
            raise StError("a tensor listed twice")
        seen.add(name)
        if not isinstance(v, Pairs):
            raise StError("an entry that is not an object")
        fields = dict(v)
        dt, shape, offs = fields.get("dtype"), fields.get("shape"), fields.get("data_offsets")
        if dt is None or shape is None or offs is None:
            raise StError("an entry without dtype, shape or data_offsets")
        if not isinstance(dt, str) or dt not in ELEM:
            raise StError("a dtype other than F32, F16, BF16")
        if (not isinstance(shape, list) or len(shape) > 8
                or not all(type(x) is int and x >= 0 for x in shape)):
            raise StError("a bad shape")
        if (not isinstance(offs, list) or len(offs) != 2
                or not all(type(x) is int and x >= 0 for x in offs)):
            raise StError("bad data_offsets")
        begin, end = offs
        if begin > end or end > len(data):
            raise StError("data_offsets outside the data")
        if end - begin != math.prod(shape) * ELEM[dt]:
            raise StError("a size other than dtype x shape")
        entries.append((name, dt, list(shape), begin, end))
    spans = sorted((e[3], e[4], e[0]) for e in entries if e[4] > e[3])
    reach = None
    for begin, end, name in spans:
        if reach is not None and begin < reach[0]:
            raise StError("two tensors sharing bytes")
        if reach is None or end > reach[0]:
            reach = (end, name)
    return entries, meta, data


def tensor_values(data, dt, begin, end):
    raw = data[begin:end]
    if dt == "F32":
        a = array.array("f")
        a.frombytes(raw)
        if sys.byteorder != "little":
            a.byteswap()
        return a
    if dt == "F16":
        return struct.unpack(f"<{len(raw) // 2}e", raw)
    h = array.array("H")
    h.frombytes(raw)
    if sys.byteorder != "little":
        h.byteswap()
    a = array.array("f")
    a.frombytes(b"".join(struct.pack("<I", x << 16) for x in h))
    return a


def gpt2_ignored(name):
    return name.endswith(".attn.bias") or name.endswith(".attn.masked_bias")


def llama_ignored(name):
    return name.endswith("rotary_emb.inv_freq")


IGNORED = {"gpt2": gpt2_ignored, "llama": llama_ignored, "tfmc": lambda name: False}
PREFIX = {"gpt2": "transformer.", "llama": "model.", "tfmc": None}

# ---------------------------------------------------------------- the corpus


class Fixture:
    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)[:-4]
        with open(path, encoding="utf-8") as f:
            self.text = f.read()
        m = WEIGHTS_RE.search(self.text)
        self.weights_file = os.path.join(os.path.dirname(path), m.group(1))
        self.scheme = m.group(3) or "tfmc"
        self.tied = "unembed separate" not in self.text
        with open(self.weights_file, "rb") as f:
            self.orig = f.read()
        self.exported = None       # bytes of --emit=weights, made on first use
        self.baseline = {}         # variant -> stdout of `run --logits 1 2 3`

    def decl(self, path, scheme):
        """The declaration with its weights read from path in the given scheme (None: no `as`)."""
        clause = f' as {scheme}' if scheme else ""
        return WEIGHTS_RE.sub(lambda m: f'weights "{path}"{clause};', self.text, count=1)


def load_fixtures(folder):
    out = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".tfm"):
            p = os.path.join(folder, name)
            with open(p, encoding="utf-8") as f:
                if WEIGHTS_RE.search(f.read()):
                    out.append(Fixture(p))
    return out


class Base:
    """A valid weights file to start from: a fixture's own file or its export."""

    def __init__(self, fx, variant, blob):
        self.fx = fx
        self.variant = variant              # "orig" or "export"
        self.blob = blob
        self.scheme = fx.scheme if variant == "orig" else "tfmc"
        self.entries, self.meta, self.data = st_parse(blob)

# ---------------------------------------------------------------- mutations


SPECIAL_F32 = [0x7FC00000, 0x7F800001, 0xFFC00000, 0x7FFFFFFF, 0x7F800000, 0xFF800000,   # NaN, Inf
               0x7F7FFFFF, 0xFF7FFFFF, 0x7149F2CA, 0x00000001, 0x80000000, 0x501502F9]   # finite
SPECIAL_F16 = [0x7E00, 0x7C01, 0xFE00, 0x7C00, 0xFC00, 0x7BFF, 0xFBFF, 0x0001, 0x8000, 0x3C00]
SPECIAL_BF16 = [0x7FC0, 0x7F81, 0xFFC0, 0x7F80, 0xFF80, 0x7F7F, 0xFF7F, 0x0001, 0x8000, 0x3F80]

BAD_DTYPES = ["F64", "I32", "I64", "I8", "U8", "BOOL", "F8_E4M3", "f32", "bf16", "F32 ", " F32", "",
              "F3", "F320", "FLOAT", "F32\x00", "\u00c9", "C64"]
JUNK_VALUES = ["null", "true", "false", "0", "-1", "1e999", "-1e999", "1" * 400, "-" + "9" * 30,
               "0.5", "[]", "{}", '""', "[[[[]]]]", "NaN", "Infinity", "-Infinity", "nan", "inf",
               "0x10", "+1", "01", ".5", "1.", "tru", "nul", '"\\u0zzz"', '"\\uzzzz"', '"\\x41"',
               '"\\u00"', '"a\x01b"', '"\xff\xfe"', '"\x00"', '"\\u0000"', '"\\ud800"', "\x00",
               "[1,]", "{\"a\":1,}", "[1 2]", "{\"a\" 1}", "'a'", "\"unterminated", "1e", "-",
               "--1", "1e+", "\"\\\"", "[" * 40 + "]" * 40]
JSON_BYTES = b'{}[]":,0123456789-+.eEaeflnrstu\\ \t\r\n\x00\xff\xc3\x80\x01'


def huge_depth(rng):
    d = rng.choice([10, 63, 64, 65, 66, 200, 5000, 100000])
    opener = rng.choice(["[", '{"a":'])
    close = "]" if opener == "[" else "}"
    return opener * d + "1" + close * d


def metadata_junk(rng):
    k = rng.randrange(12)
    if k == 0:
        return Raw(huge_depth(rng))
    if k == 1:
        return Raw(rng.choice(JUNK_VALUES))
    if k == 2:
        return Raw('{"format":' + rng.choice(JUNK_VALUES) + '}')
    if k == 3:
        return Raw('{"' + "k" * rng.choice([1, 1000, 100000]) + '":"' + "v" * rng.choice([0, 1000, 200000]) + '"}')
    if k == 4:
        return Raw('{' + ",".join(f'"k{i}":"{i}"' for i in range(rng.choice([10, 1000, 20000]))) + '}')
    if k == 5:
        return Raw('{"a":"b","a":"c"}')
    if k == 6:
        return Raw('{"x":' + rng.choice(["1" * 5000, "1e400", "-1e-400", "1.5e308", "4.9e-324", "-0"]) + '}')
    if k == 7:
        return Raw('{"s":"' + rng.choice(["\\u0041", "\\u00e9", "\\uffff", "\\ud83d\\ude00", "\\/", "\\b\\f\\n\\r\\t",
                                          "\\u0zzz", "\\q", "\x7f", "\x1f", "\xc3\xa9", "\xed\xa0\x80", "\xf4\x90\x80\x80"]) + '"}')
    if k == 8:
        return Raw("[" + ",".join(rng.choice(JUNK_VALUES[:10]) for _ in range(rng.randint(1, 20))) + "]")
    if k == 9:
        return {"format": "pt", "nested": {"a": [1, 2, {"b": None}]}}
    if k == 10:
        return Raw('{"a":' + rng.choice(JUNK_VALUES) + ',"b":' + rng.choice(JUNK_VALUES) + "}")
    return Raw('"' + "x" * rng.choice([0, 10, 100000]) + '"')


class Header:
    """A mutable header: [key, value] where key is a str or Raw and value a Python / Raw value."""

    def __init__(self, base):
        self.items = [[name, Pairs([("dtype", dt), ("shape", list(shape)), ("data_offsets", [b, e])])]
                      for name, dt, shape, b, e in base.entries]
        if base.meta is not None:
            self.items.insert(0, ["__metadata__", base.meta])
        self.data = bytearray(base.data)

    def tensors(self):
        return [it for it in self.items if it[0] != "__metadata__" and isinstance(it[1], Pairs)]

    def text(self):
        return "{" + ",".join(dump_key(k) + ":" + dump(v) for k, v in self.items) + "}"

    def blob(self, hdr=None, pad=b""):
        if hdr is None:
            hdr = to_bytes(self.text())
        hdr += pad
        return len(hdr).to_bytes(8, "little") + hdr + bytes(self.data)


def to_bytes(text):
    """Header text to bytes: characters below 256 as raw bytes (to carry invalid UTF-8)."""
    return text.encode("utf-8") if any(ord(c) > 255 for c in text) else text.encode("latin-1")


def field(pairs, key):
    for k, v in pairs:
        if k == key:
            return v
    return None


def offsets(pairs):
    """An entry's data_offsets when they are two integers, else [0, 0]."""
    v = field(pairs, "data_offsets")
    return list(v) if isinstance(v, list) and len(v) == 2 and all(type(x) is int for x in v) else [0, 0]


def shape_of(pairs):
    """An entry's shape when it is a list of integers, else []."""
    v = field(pairs, "shape")
    return list(v) if isinstance(v, list) and all(type(x) is int for x in v) else []


def set_field(pairs, key, value):
    for i, (k, _) in enumerate(pairs):
        if k == key:
            pairs[i] = (k, value)
            return
    pairs.append((key, value))


def append_tensor(h, rng, name, dt, shape, fill=None):
    n = math.prod(shape) * ELEM[dt]
    begin = len(h.data)
    if fill is None:
        fill = bytes(rng.randrange(256) for _ in range(min(n, 64))) * (n // 64 + 1) if n else b""
        # small finite values: zero the exponent's top bits
        fill = bytes(b & 0x3F if (i % ELEM[dt]) == ELEM[dt] - 1 else b for i, b in enumerate(fill[:n]))
    h.data += fill[:n].ljust(n, b"\0")
    h.items.append([name, Pairs([("dtype", dt), ("shape", shape), ("data_offsets", [begin, begin + n])])])


def mutate_struct(rng, h, base):
    """One structural mutation of the header (in place); returns its name."""
    ts = h.tensors()
    if not ts:
        h.items.append(["x", Pairs([("dtype", "F32"), ("shape", [1]), ("data_offsets", [0, 4])])])
        return "add"
    t = rng.choice(ts)
    pairs = t[1]
    k = rng.randrange(22)
    if k == 0:
        set_field(pairs, "dtype", rng.choice(BAD_DTYPES + ["F32", "F16", "BF16"]))
        return "dtype"
    if k == 1:
        set_field(pairs, "dtype", Raw(rng.choice(['"\\u0046\\u0033\\u0032"', '"F\\u00332"', "32", "null",
                                                  '["F32"]', '"F16"', '"BF16"', '"F32"'])))
        return "dtype-raw"
    if k == 2:
        shape = shape_of(pairs)
        c = rng.randrange(10)
        if c == 0 and len(shape) >= 2:
            shape = shape[::-1]
        elif c == 1 and shape:
            shape = shape[:-1]
        elif c == 2:
            shape = shape + [1]
        elif c == 3:
            shape = [1] + shape
        elif c == 4 and shape:
            shape[rng.randrange(len(shape))] = 0
        elif c == 5 and shape:
            shape[rng.randrange(len(shape))] = rng.choice([2**31, 2**32, 2**62, 2**63 - 1, 2**63, 2**64, 10**30])
        elif c == 6 and shape:
            i = rng.randrange(len(shape))
            shape[i] = shape[i] + rng.choice([-1, 1, 2])
        elif c == 7:
            shape = [1] * rng.choice([8, 9, 64])
        elif c == 8 and shape:
            shape = [math.prod(shape)]
        else:
            shape = shape + [0, 2**62]
        set_field(pairs, "shape", shape)
        return "shape"
    if k == 3:
        set_field(pairs, "shape", Raw(rng.choice(["[-1]", "[1.0]", "[\"3\"]", "[]", "[[2]]", "3", "null", "[1e2]",
                                                  "[2,]", "[,2]", "[0x10]", "[" + "9" * 25 + "]", "[-0]", "[+1]"])))
        return "shape-raw"
    if k == 4:
        b, e = offsets(pairs)
        c = rng.randrange(10)
        n = len(h.data)
        new = [[e, b], [b + 1, e + 1], [b - 1, e - 1], [b, e + 4], [b + 4, e], [n, n + (e - b)],
               [b, n + 1], [2**63 - 1, 2**63 - 1 + (e - b)], [2**64 - (e - b), 2**64], [0, e - b]][c]
        set_field(pairs, "data_offsets", new)
        return "offsets"
    if k == 5:
        set_field(pairs, "data_offsets", Raw(rng.choice(["[-4,0]", "[0,-4]", "[0]", "[0,4,8]", "[]", "[0.0,4]",
                                                         "[\"0\",\"4\"]", "[0,1e2]", "null", "[0,4]",
                                                         "[" + "9" * 25 + ",4]", "[18446744073709551615,0]"])))
        return "offsets-raw"
    if k == 6 and len(ts) >= 2:
        other = rng.choice([x for x in ts if x is not t])
        set_field(pairs, "data_offsets", offsets(other[1]))
        return "overlap"
    if k == 7 and len(ts) >= 2:   # overlap by a part
        other = rng.choice([x for x in ts if x is not t])
        ob, oe = offsets(other[1])
        b, e = offsets(pairs)
        size = e - b
        start = max(0, ob + (oe - ob) // 2 - size // 2 + rng.choice([0, 4, -4]))
        if start + size <= len(h.data):
            set_field(pairs, "data_offsets", [start, start + size])
        return "overlap-part"
    if k == 8:                    # a tensor listed twice
        dup = [t[0], Pairs(list(t[1]))]
        if rng.random() < 0.5:
            ob = rng.choice(ts)
            dup[1] = Pairs(list(ob[1]))
        h.items.insert(rng.randrange(len(h.items) + 1), dup)
        return "twice"
    if k == 9:
        h.items.remove(t)
        return "missing"
    if k == 10:                   # an extra tensor with a plausible or odd name
        names = ["extra", "lm_head.weight", "unembed.weight", "layers.99.mlp.up.weight", "norm.weight",
                 "embed.position.weight", "h.9.ln_1.weight", "model.norm.weight", "transformer.wte.weight",
                 "wte.weight", "rotary_emb.inv_freq", "h.0.attn.bias", "", " ", "__metadata", "__metadata__x"]
        dt = rng.choice(["F32", "F16", "BF16"])
        shape = rng.choice([[1], [4], shape_of(pairs) or [1], [0], [2, 3]])
        append_tensor(h, rng, rng.choice(names + [t[0]]), dt, shape)
        return "extra"
    if k == 11:                   # rename
        name = t[0] if isinstance(t[0], str) else "x"
        c = rng.randrange(10)
        if c == 0:
            t[0] = name.upper()
        elif c == 1:
            t[0] = rng.choice(["transformer.", "model.", "x.", "."]) + name
        elif c == 2:
            t[0] = Raw('"' + "".join(f"\\u{ord(ch):04x}" if rng.random() < 0.5 else ch for ch in name) + '"')
        elif c == 3:
            t[0] = Raw('"' + name + rng.choice(["\\u0000", "\\u0000junk", "\x00", "\\u00e9"]) + '"')
        elif c == 4:
            t[0] = Raw('"' + name + rng.choice(["\xff", "\xc3", "\xed\xa0\x80", "\xc0\xae"]) + '"')
        elif c == 5:
            t[0] = name * rng.choice([50, 5000])
        elif c == 6:
            t[0] = name[:-1]
        elif c == 7:
            t[0] = Raw('"' + name + '\\"')
        elif c == 8:
            t[0] = Raw(rng.choice(["1", "null", "{}", "[]", "\"\"", "'x'"]))
        else:
            t[0] = Raw('"' + name.replace(".", "\\u002e") + '"')
        return "rename"
    if k == 12 and len(ts) >= 2:  # swap the values of two entries
        other = rng.choice([x for x in ts if x is not t])
        t[1], other[1] = other[1], t[1]
        return "swap-values"
    if k == 13:
        t[1] = Raw(rng.choice(JUNK_VALUES))
        return "entry-junk"
    if k == 14:
        pairs.insert(rng.randrange(len(pairs) + 1), (rng.choice(["extra", "dtype", "shape", "data_offsets", "", "x" * 300]),
                                                      Raw(rng.choice(JUNK_VALUES + [huge_depth(rng)]))))
        return "field-junk"
    if k == 15:
        del pairs[rng.randrange(len(pairs))]
        return "field-missing"
    if k == 16:                   # an empty tensor the scheme ignores, between overlapping ones
        ign = {"gpt2": "h.0.attn.bias", "llama": "model.layers.0.self_attn.rotary_emb.inv_freq"}.get(base.scheme, "x")
        if len(ts) >= 2:
            a, b2 = rng.sample(ts, 2)
            if rng.random() < 0.5:        # the largest tensor, to hold the other one
                a = max(ts, key=lambda x: offsets(x[1])[1] - offsets(x[1])[0])
                b2 = rng.choice([x for x in ts if x is not a])
            ab, ae = offsets(a[1])
            bb, be = offsets(b2[1])
            if ae - ab >= be - bb + 8:
                start = ab + 8 if rng.random() < 0.5 else ab + (ae - ab) - (be - bb)
                set_field(b2[1], "data_offsets", [start, start + (be - bb)])
            at = rng.choice([ab + 4, ab + 1, ab])
            h.items.append([ign, Pairs([("dtype", "F32"), ("shape", [0]), ("data_offsets", [at, at])])])
        return "ignored-empty"
    if k == 17:                   # a buffer the scheme ignores, with any bytes (NaN included)
        ign = {"gpt2": rng.choice(["h.0.attn.bias", "h.1.attn.masked_bias", "transformer.h.0.attn.bias"]),
               "llama": rng.choice(["model.layers.0.self_attn.rotary_emb.inv_freq", "rotary_emb.inv_freq"])}.get(base.scheme, "h.0.attn.bias")
        dt = rng.choice(["F32", "F16", "BF16"])
        shape = rng.choice([[], [0], [1, 1, 4, 4], [8]])
        fill = None if rng.random() < 0.5 else (b"\x00\x00\xc0\x7f" * 64 if dt == "F32" else b"\x00\x7e" * 128)
        append_tensor(h, rng, ign, dt, shape, fill)
        return "ignored-buffer"
    if k == 18:
        meta = metadata_junk(rng)
        if rng.random() < 0.3:
            h.items.insert(rng.randrange(len(h.items) + 1), ["__metadata__", meta])
        else:
            h.items = [it for it in h.items if it[0] != "__metadata__"]
            h.items.insert(rng.randrange(len(h.items) + 1), ["__metadata__", meta])
        return "metadata"
    if k == 19:                   # a deeply nested value somewhere
        set_field(pairs, rng.choice(["dtype", "shape", "data_offsets", "junk"]), Raw(huge_depth(rng)))
        return "deep"
    if k == 20:                   # every tensor in one dtype without converting the data
        dt = rng.choice(["F32", "F16", "BF16"])
        for x in ts:
            set_field(x[1], "dtype", dt)
        return "retype"
    rng.shuffle(h.items)
    return "reorder"


def mutate_data(rng, h, base):
    """One mutation of the data region or of a tensor's elements (in place)."""
    ts = [it for it in h.tensors() if isinstance(field(it[1], "data_offsets"), list)]
    k = rng.randrange(8)
    if k == 0 and h.data:
        cut = rng.choice([1, 2, 3, 4, len(h.data) // 2, len(h.data)])
        del h.data[len(h.data) - min(cut, len(h.data)):]
        return "truncate"
    if k == 1:
        h.data += bytes(rng.randrange(256) for _ in range(rng.choice([1, 4, 7, 100])))
        return "extend"
    if k == 2 and h.data:
        for _ in range(rng.randint(1, 16)):
            i = rng.randrange(len(h.data))
            h.data[i] ^= 1 << rng.randrange(8)
        return "bitflip"
    if k == 3 and h.data:
        for _ in range(rng.randint(1, 8)):
            h.data[rng.randrange(len(h.data))] = rng.choice([0x00, 0xFF, 0x7F, 0x80, 0xC0, 0x7E, 0xFE])
        return "bytes"
    if ts:
        t = rng.choice(ts)
        b, e = field(t[1], "data_offsets")
        dt = field(t[1], "dtype")
        if not isinstance(dt, str) or dt not in ELEM or not (0 <= b < e <= len(h.data)):
            return "none"
        size = ELEM[dt]
        n = (e - b) // size
        if n == 0:
            return "none"
        idx = rng.choice([0, n - 1, rng.randrange(n)])
        pool = {"F32": SPECIAL_F32, "F16": SPECIAL_F16, "BF16": SPECIAL_BF16}[dt]
        v = rng.choice(pool)
        if k in (4, 5, 6):
            at = b + idx * size
            h.data[at:at + size] = v.to_bytes(size, "little")
            return "special"
        # every element of a tensor special (a poisoned norm, an infinite embedding)
        h.data[b:e] = v.to_bytes(size, "little") * n
        return "special-all"
    return "none"


def mutate_bytes(rng, hdr):
    """One byte-level mutation of the header text."""
    hdr = bytearray(hdr)
    n = len(hdr)
    k = rng.randrange(9)
    if n == 0:
        return bytes(rng.choice(JSON_BYTES) for _ in range(rng.randint(1, 4)))
    i = rng.randrange(n)
    if k == 0:
        del hdr[i:]
    elif k == 1:
        del hdr[i:i + rng.choice([1, 2, 8, 64])]
    elif k == 2:
        j = min(n, i + rng.choice([1, 4, 32, 256]))
        hdr[i:i] = hdr[i:j]
    elif k == 3:
        j = rng.randrange(n)
        hdr[i], hdr[j] = hdr[j], hdr[i]
    elif k == 4:
        hdr[i:i] = bytes(rng.choice(JSON_BYTES) for _ in range(rng.randint(1, 3)))
    elif k == 5:
        hdr[i] = rng.choice(JSON_BYTES)
    elif k == 6:
        hdr[i:i] = rng.choice([b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\x80"])
    elif k == 7:   # a digit run made huge
        m = re.search(rb"[0-9]+", bytes(hdr[i:]))
        if m:
            a, b = i + m.start(), i + m.end()
            hdr[a:b] = rng.choice([b"9" * 30, b"18446744073709551616", b"9223372036854775807",
                                   b"9223372036854775808", b"-1", b"0", b"1e3", b"00"])
    else:
        hdr[i:i] = rng.choice([b" ", b"\n", b"\t", b"\r", b"\x0b", b"\x0c"]) * rng.choice([1, 1000])
    return bytes(hdr)

# ---------------------------------------------------------------- declarations

DECL_INT_RE = re.compile(r"\b(vocab|max_len|dim|heads|kv_heads|head_dim|hidden|experts|top|window|seed|base)\s+([0-9]+)")
HUGE_INTS = [0, 1, 2, 3, 4096, 4097, 65536, 1 << 24, (1 << 24) + 1, 2**31 - 1, 2**31, 2**32, 2**62, 2**63 - 1, 2**63, 10**30]


def mutate_decl(rng, text):
    """One light mutation of a declaration; returns (text, name)."""
    k = rng.randrange(12)
    if k <= 3:
        ms = list(DECL_INT_RE.finditer(text))
        if ms:
            m = rng.choice(ms)
            v = int(m.group(2))
            nv = rng.choice([v + 1, v - 1, v * 2, v // 2, max(1, v + rng.choice([-2, 2]))] + [rng.choice(HUGE_INTS)])
            return text[:m.start(2)] + str(nv) + text[m.end(2):], m.group(1)
    if k == 4:
        schemes = ["", " as gpt2", " as llama", " as tfmc", " as bert", " as"]
        return re.sub(r'(weights\s+"[^"]*")(\s+as\s+\w+)?', lambda m: m.group(1) + rng.choice(schemes), text, count=1), "scheme"
    if k == 5:
        ms = list(re.finditer(r"block( shared)? x ([0-9]+)", text))
        if ms:
            m = rng.choice(ms)
            n = rng.choice([0, 1, 2, 3, 64, 4096, 4097, int(m.group(2)) + 1])
            shared = rng.choice(["", " shared"])
            return text[:m.start()] + f"block{shared} x {n}" + text[m.end():], "blocks"
    if k == 6:
        pos = rng.choice(["learned", "sinusoidal", "rope(base 10000)", "rope(base 1)", "alibi", "none", "rope"])
        return re.sub(r"position [a-z]+(\(base [0-9.e+-]+\))?", "position " + pos, text, count=1), "position"
    if k == 7:
        if "unembed tied" in text:
            return text.replace("unembed tied", "unembed separate"), "unembed"
        return text.replace("unembed separate", "unembed tied"), "unembed"
    if k == 8:
        return re.sub(r"(attention[^;]*?)(;)", lambda m: m.group(1) + rng.choice(
            [", bias false", ", bias true", ", kv_heads 1", ", head_dim 2", ", parallel", ", score hard",
             ", score linear", ", window 1", ", post_norm rmsnorm(eps 1e-5)", ", heads 65536, head_dim 65536",
             ", head_dim 16777216", ", kv_heads 1, heads 2147483648"]) + m.group(2), text, count=1), "attention"
    if k == 9:
        return re.sub(r"((?:mlp|moe)[^;]*?)(;)", lambda m: m.group(1) + rng.choice(
            [", bias false", ", act swiglu", ", act relu", ", act geglu", ", hidden 1", ", hidden 4294967297",
             ", hidden 2147483648", ", norm none", ", post_norm dyt(alpha 0.5)"]) + m.group(2), text, count=1), "mlp"
    if k == 10:
        return re.sub(r"norm (layernorm|rmsnorm|dyt)\([^)]*\)", lambda m: "norm " + rng.choice(
            ["layernorm(eps 1e-5)", "rmsnorm(eps 1e-5)", "dyt(alpha 0.5)", "none", "layernorm(eps 1e-300)"]), text, count=1), "norm"
    return text, "none"

# ---------------------------------------------------------------- running


# the frontend fuzzer's runner (sanitizer options, memory and core limits, timeouts) and names
Runner, signal_name = ff.Runner, ff.signal_name


def judge(rc, stderr):
    """The reason a run failed by the generic rules, or None."""
    # allocator_may_return_null: a failed allocation is a warning, and the library must cope
    err = ALLOC_WARNING_RE.sub("", stderr.decode("utf-8", "replace"))
    if ff.MEMORY_MARKER in err:
        return "memory limit"
    if rc is None:
        return "timeout"
    if "hard rss limit exhausted" in err:
        return "memory limit (killed at the hard RSS limit)"
    for marker in SANITIZER_MARKERS:
        if marker in err and (marker != "runtime error" or UBSAN_LINE_RE.search(err)):
            return marker
    if rc < 0:
        return f"killed by {signal_name(rc)}"
    if rc not in (0, 1):
        return f"exit status {rc}"
    if rc == 1 and not err.strip():
        return "exit status 1 with an empty stderr"
    return None


PROJECT_FRAME_RE = re.compile(r"#\d+ 0x[0-9a-f]+ in (\S+) (\S*?(?:frontend|lib|ir|backends|runtime|passes)/[^\s:]+:\d+|\S*tfmc\.c:\d+)")
UBSAN_RE = re.compile(r"(\S+?:\d+:\d+): runtime error: ([^:\n0-9]*)")
ASAN_RE = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer): ([\w-]+)")


def signature(reason, stderr):
    err = stderr.decode("utf-8", "replace")
    m = ASAN_RE.search(err)
    if m:
        frame = next((f for f in (PROJECT_FRAME_RE.search(l) for l in err[m.end():].splitlines() if len(l) < 1000) if f), None)
        where = f" in {frame.group(1)} {os.path.basename(frame.group(2))}" if frame else ""
        return f"{m.group(1)}: {m.group(2)}{where}"
    line = next((l for l in err.splitlines() if "runtime error" in l and len(l) < 1000), "")
    m = UBSAN_RE.search(line)
    if m:
        return f"UBSan: {m.group(2).strip()} at {os.path.basename(m.group(1))}"
    if ff.MEMORY_MARKER in err or "hard rss limit" in err:
        return "memory limit"
    return reason


def describe_stderr(stderr):
    lines = stderr.decode("utf-8", "replace").splitlines()
    shown = lines[:STDERR_SHOWN_LINES]
    out = "\n".join("    | " + l[:200] for l in shown)
    if len(lines) > len(shown):
        out += f"\n    | ... ({len(lines) - len(shown)} more lines)"
    return out

# ---------------------------------------------------------------- oracles


def broken_promise(blob, scheme, base, decl_changed, tied):
    """Why a weights file that tfmc loaded breaks docs/weights.md, or None. Also returns the
    largest weight magnitude of the tensors read (None when unknown)."""
    try:
        entries, _, data = st_parse(blob)
    except StError as e:
        return f"loaded a file with {e}", None
    ignored = IGNORED[scheme]
    prefix = PREFIX[scheme]
    read = {}
    maxabs = 0.0
    for name, dt, shape, b, e in entries:
        if ignored(name):
            continue
        vals = tensor_values(data, dt, b, e)
        for v in vals:
            if not math.isfinite(v):
                return f"loaded tensor `{name}` holding NaN or infinity", None
            if abs(v) > maxabs:
                maxabs = abs(v)
        key = name[len(prefix):] if prefix and name.startswith(prefix) else name
        if key in read:
            return f"loaded both `{name}` and its unprefixed twin", None
        read[key] = (shape, vals)
    if decl_changed or base is None:
        return None, maxabs
    want = {}
    for name, dt, shape, b, e in base.entries:
        if ignored(name):
            continue
        key = name[len(prefix):] if prefix and name.startswith(prefix) else name
        want[key] = shape
    for key, (shape, vals) in read.items():
        if key not in want:
            if key == "lm_head.weight" and tied and "wte.weight" in read and scheme == "gpt2":
                if list(read["wte.weight"][1]) != list(vals):
                    return "loaded a tied GPT-2 `lm_head.weight` that differs from `wte`", None
                continue
            if key == "lm_head.weight" and tied and scheme == "llama" and "embed_tokens.weight" in read:
                if list(read["embed_tokens.weight"][1]) != list(vals):
                    return "loaded a tied Llama `lm_head.weight` that differs from the embedding", None
                continue
            return f"loaded an unexpected tensor `{key}`", None
        ok = shape == want[key] or (scheme == "gpt2" and key == "wpe.weight" and len(shape) == 2
                                    and shape[1] == want[key][1] and shape[0] >= want[key][0])
        if not ok:
            return f"loaded tensor `{key}` of shape {shape} where the declaration needs {want[key]}", None
    for key in want:
        if key not in read:
            return f"loaded a file without tensor `{key}`", None
    return None, maxabs


LOGIT_BAD_RE = re.compile(rb"(?i)\b-?(nan|inf)")

# ---------------------------------------------------------------- the fuzzer


FIFO = object()     # Case.extra: a named pipe


class Case:
    def __init__(self, fx, tfm, weights, scheme=None, base=None, decl_changed=False, equiv=False):
        self.fx = fx
        self.tfm = tfm                    # the declaration's text
        self.weights = weights            # bytes of w.safetensors, or None
        self.scheme = scheme              # the scheme the declaration reads it in
        self.base = base                  # the Base the file came from (for the tensor oracle)
        self.decl_changed = decl_changed
        self.equiv = equiv
        self.extra = {}                   # other files of the folder: name -> bytes (None: a folder)


class Fuzzer:
    def __init__(self, args):
        self.args = args
        self.runner = Runner(args.tfmc, args.timeout, args.memory_mb)
        self.fixtures = load_fixtures(args.fixtures)
        if not self.fixtures:
            raise SystemExit(f"fuzz_weights.py: no model fixtures in {args.fixtures}")
        self.failures = []
        self.known = []                   # failures tolerated by --tolerate
        self.tmpdir = tempfile.mkdtemp(prefix="tfmc-fuzz-weights-")
        self.workdir = os.path.join(self.tmpdir, "case")
        self.bases = {}
        wanted = args.generators.split(",") if args.generators else [g[0] for g in GENERATORS]
        unknown = [g for g in wanted if g not in {n for n, _, _ in GENERATORS}]
        if unknown:
            raise SystemExit(f"fuzz_weights.py: unknown generator(s) {', '.join(unknown)}")
        self.generators = [g for g in GENERATORS if g[0] in wanted]
        # the budget a model may take, told to tfmc (half the fuzzer's memory limit): a declared
        # model larger than that must be refused before its memory is taken, not allocated
        self.max_memory = []
        p = subprocess.run([args.tfmc, "help", "compile"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if b"--max-memory=" in p.stdout:
            self.max_memory = [f"--max-memory={args.memory_mb // 2}M"]

    # ---- the corpus, made on first use

    def base(self, fx, variant):
        key = (fx.name, variant)
        if key not in self.bases:
            if variant == "orig":
                blob = fx.orig
            else:
                out = os.path.join(self.tmpdir, f"{fx.name}.export.safetensors")
                rc, _, err, _ = self.runner.run([fx.path, "--emit=weights", "-o", out])
                if rc != 0:
                    raise SystemExit(f"fuzz_weights.py: `{self.args.tfmc} {fx.path} --emit=weights` failed:\n{err.decode(errors='replace')}")
                with open(out, "rb") as f:
                    blob = f.read()
                os.unlink(out)
            self.bases[key] = Base(fx, variant, blob)
        return self.bases[key]

    def baseline(self, base):
        key = base.variant
        if key not in base.fx.baseline:
            case = Case(base.fx, base.fx.decl("w.safetensors", base.scheme if base.variant == "export" else
                                              WEIGHTS_RE.search(base.fx.text).group(3)), base.blob)
            path = self.write(case)
            rc, out, err, _ = self.runner.run(["run", path, "--logits", "1", "2", "3"])
            if rc != 0:
                raise SystemExit(f"fuzz_weights.py: the unmodified fixture {base.fx.name} ({key}) does not run:\n"
                                 f"{err.decode(errors='replace')}")
            base.fx.baseline[key] = out
        return base.fx.baseline[key]

    # ---- generators

    def pick_base(self, rng):
        hf = [f for f in self.fixtures if f.scheme != "tfmc"]
        # the Hugging Face layouts (prefixes, ignored buffers, fused and transposed tensors, a tied
        # lm_head) are a few fixtures of many: a quarter of the cases
        fx = rng.choice(hf if hf and rng.random() < 0.25 else self.fixtures)
        return self.base(fx, "orig" if rng.random() < 0.6 else "export")

    def plain_case(self, base, blob, **kw):
        scheme = base.scheme
        decl_scheme = scheme if scheme != "tfmc" else rng_choice_tfmc(blob)
        return Case(base.fx, base.fx.decl("w.safetensors", decl_scheme), blob, scheme=scheme, base=base, **kw)

    def gen_tiny(self, rng):
        base = self.pick_base(rng)
        k = rng.randrange(6)
        if k == 0:
            blob = b""
        elif k == 1:
            blob = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif k == 2:
            blob = base.blob[:rng.randint(1, 16)]
        elif k == 3:
            blob = rng.choice([0, 2, 8, 2**63, 2**64 - 1, 1]).to_bytes(8, "little")
        elif k == 4:
            blob = b"\x02" + b"\0" * 7 + b"{}" + rng.choice([b"", b"\0" * 4, b"\x00\x00\xc0\x7f"])
        else:
            hdr = rng.choice([b" {} ", b"{ }", b"{\"__metadata__\":{}}", b"{}" + b" " * 6, b"[]", b"\"\"", b"null", b"{"])
            blob = len(hdr).to_bytes(8, "little") + hdr
        return self.plain_case(base, blob)

    def gen_hlen(self, rng):
        base = self.pick_base(rng)
        blob = bytearray(base.blob)
        hlen = int.from_bytes(blob[:8], "little")
        size = len(blob)
        v = rng.choice([0, 1, 2, hlen - 1, hlen + 1, hlen + 3, hlen // 2, size - 8, size - 7, size, size + 1,
                        2**31, 2**32, 2**32 + hlen, 2**63 - 1, 2**63, 2**64 - 1, 2**64 - 8, rng.randrange(2**64),
                        int.from_bytes(hlen.to_bytes(8, "little"), "big")])
        blob[:8] = (v % 2**64).to_bytes(8, "little")
        if rng.random() < 0.2:
            del blob[8 + hlen:]            # no data at all
        return self.plain_case(base, bytes(blob))

    def gen_jbytes(self, rng):
        base = self.pick_base(rng)
        hdr, data = st_split(base.blob)
        for _ in range(rng.randint(1, 4)):
            hdr = mutate_bytes(rng, hdr)
        hlen = len(hdr) if rng.random() < 0.85 else len(st_split(base.blob)[0])
        return self.plain_case(base, hlen.to_bytes(8, "little") + hdr + data)

    def gen_jstruct(self, rng):
        base = self.pick_base(rng)
        h = Header(base)
        for _ in range(rng.randint(1, 3)):
            mutate_struct(rng, h, base)
        if rng.random() < 0.15:
            mutate_data(rng, h, base)
        return self.plain_case(base, h.blob(to_bytes(h.text()), pad=b" " * rng.choice([0, 0, 0, 3, 8])))

    def gen_data(self, rng):
        base = self.pick_base(rng)
        h = Header(base)
        k = rng.random()
        if k < 0.15:                       # a hole between tensors, full of NaNs
            ts = h.tensors()
            t = rng.choice(ts)
            b, e = field(t[1], "data_offsets")
            hole = b"\x00\x00\xc0\x7f" * rng.choice([1, 16])
            h.data[b:b] = hole
            for x in ts:
                xb, xe = field(x[1], "data_offsets")
                if xb >= b:
                    set_field(x[1], "data_offsets", [xb + len(hole), xe + len(hole)])
        else:
            for _ in range(rng.randint(1, 3)):
                mutate_data(rng, h, base)
        return self.plain_case(base, h.blob())

    def gen_equiv(self, rng):
        base = self.pick_base(rng)
        entries = [list(e) for e in base.entries]
        data = base.data
        meta = base.meta
        ops = []
        for _ in range(rng.randint(1, 3)):
            k = rng.randrange(9)
            if k == 0:
                rng.shuffle(entries)
                ops.append("reorder-entries")
            elif k == 1:                  # lay the data out in another order
                order = list(range(len(entries)))
                rng.shuffle(order)
                new, pos = bytearray(), {}
                for i in order:
                    _, _, _, b, e = entries[i]
                    pos[i] = len(new)
                    new += data[b:e]
                for i, ent in enumerate(entries):
                    n = ent[4] - ent[3]
                    ent[3], ent[4] = pos[i], pos[i] + n
                data = bytes(new)
                ops.append("reorder-data")
            elif k == 2:
                meta = rng.choice([{}, {"format": "pt"}, {"a": "b", "c": "\u00e9\u4e2d\n\"\\"},
                                   {"k" * 200: "v" * 5000}, {"n": [1, 2.5, None, True], "o": {"p": {"q": "r"}}}])
                ops.append("metadata")
            elif k == 3:                  # F16 / BF16 to F32: exact
                new, pos = bytearray(), []
                for ent in entries:
                    name, dt, shape, b, e = ent
                    if dt != "F32" and not (IGNORED[base.scheme](name)):
                        vals = tensor_values(data, dt, b, e)
                        raw = struct.pack(f"<{len(vals)}f", *vals)
                        ent[1] = "F32"
                    else:
                        raw = data[b:e]
                    ent[3] = len(new)
                    new += raw
                    ent[4] = len(new)
                data = bytes(new)
                ops.append("to-f32")
            elif k == 4 and base.scheme in ("gpt2", "llama"):
                prefix = PREFIX[base.scheme]
                for ent in entries:
                    if not ent[0].startswith(prefix) and rng.random() < 0.7 and ent[0] != "lm_head.weight":
                        ent[0] = prefix + ent[0]
                ops.append("prefix")
            elif k == 5 and base.scheme in ("gpt2", "llama"):
                name = "h.0.attn.bias" if base.scheme == "gpt2" else "model.layers.0.self_attn.rotary_emb.inv_freq"
                if not any(e[0] == name for e in entries):
                    fill = struct.pack("<4f", 1.0, 0.0, float("nan"), float("inf"))
                    entries.append([name, "F32", [1, 1, 2, 2] if base.scheme == "gpt2" else [4], len(data), len(data) + 16])
                    data = data + fill
                ops.append("ignored-buffer")
            elif k == 6 and base.scheme == "gpt2" and base.fx.tied:
                wte = next((e for e in entries if e[0].endswith("wte.weight")), None)
                if wte and not any(e[0] == "lm_head.weight" for e in entries):
                    entries.append(["lm_head.weight", wte[1], list(wte[2]), len(data), len(data) + wte[4] - wte[3]])
                    data = data + data[wte[3]:wte[4]]
                ops.append("tied-lm_head")
            elif k == 7:
                ops.append("escapes")
            else:
                ops.append("whitespace")
        # the header, written with the chosen cosmetics
        items = []
        esc = "escapes" in ops
        for name, dt, shape, b, e in entries:
            key = Raw('"' + "".join(f"\\u{ord(ch):04x}" if esc and rng.random() < 0.3 else
                                    ("\\/" if ch == "/" else ch) for ch in name) + '"') if esc else name
            items.append((key, Pairs([("dtype", dt), ("shape", shape), ("data_offsets", [b, e])])))
        if meta is not None:
            items.insert(rng.randrange(len(items) + 1), ("__metadata__", meta))
        text = dump(Pairs(items))
        if "whitespace" in ops:
            text = re.sub(r'([,:{}\[\]])', lambda m: m.group(1) + rng.choice(["", " ", "\n", "\t", "\r\n  "]), text)
            text = rng.choice(["", " ", "\n"]) + text
        hdr = text.encode("utf-8")
        if "whitespace" in ops or rng.random() < 0.3:
            hdr += b" " * ((-len(hdr)) % 8)        # padding to 8 bytes, as Hugging Face writes
        blob = len(hdr).to_bytes(8, "little") + hdr + data
        case = self.plain_case(base, blob, equiv=True)
        case.ops = ops
        return case

    def gen_decl(self, rng):
        base = self.pick_base(rng)
        fx = base.fx
        scheme = base.scheme if base.scheme != "tfmc" else rng_choice_tfmc(base.blob)
        text = fx.decl("w.safetensors", scheme)
        names = []
        for _ in range(rng.randint(1, 3)):
            text, name = mutate_decl(rng, text)
            names.append(name)
        blob = base.blob
        case = Case(fx, text, blob, scheme=base.scheme, base=base, decl_changed=True)
        r = rng.random()
        if r < 0.12:                       # the weights path
            target = rng.choice(["missing.safetensors", ".", "/", "/dev/null", "model.tfm", "empty.safetensors",
                                 "sub", "sub/", "/nonexistent/w.safetensors", "", "w.safetensors/x",
                                 "a" * 5000 + ".safetensors", "./w.safetensors", "sub/../w.safetensors", "\\x00", "fifo.safetensors"])
            case.tfm = re.sub(r'weights\s+"[^"]*"', lambda m: f'weights "{target}"', case.tfm, count=1)
            case.extra = {"empty.safetensors": b"", "sub": None}
            if target == "fifo.safetensors":
                case.extra["fifo.safetensors"] = FIFO
        elif r < 0.2:                      # random weights instead, or both
            init = f"init random(seed {rng.choice([0, 1, 7, 2**63 - 1, 2**64])});"
            if rng.random() < 0.7:
                case.tfm = WEIGHTS_RE.sub(init, case.tfm, count=1)
            else:
                case.tfm = WEIGHTS_RE.sub(lambda m: m.group(0) + "\n  " + init, case.tfm, count=1)
        elif r < 0.35:                     # and a mutated weights file
            h = Header(base)
            (mutate_struct if rng.random() < 0.5 else mutate_data)(rng, h, base)
            case.weights = h.blob()
        case.scheme = scheme_of(case.tfm)
        return case

    def gen_splice(self, rng):
        a = self.pick_base(rng)
        b = self.pick_base(rng)
        if rng.random() < 0.6:             # a's declaration, b's weights
            scheme = b.scheme if b.scheme != "tfmc" else rng_choice_tfmc(b.blob)
            case = Case(a.fx, a.fx.decl("w.safetensors", scheme), b.blob, scheme=b.scheme,
                        base=a if scheme_norm(scheme) == a.scheme else None)
            return case
        ha, _ = st_split(a.blob)          # a's header, b's data
        _, db = st_split(b.blob)
        return self.plain_case(a, len(ha).to_bytes(8, "little") + ha + db)

    # ---- running one case

    def write(self, case):
        if os.path.exists(self.workdir):
            shutil.rmtree(self.workdir)
        os.makedirs(self.workdir)
        path = os.path.join(self.workdir, "model.tfm")
        with open(path, "wb") as f:
            f.write(case.tfm.encode("utf-8", "surrogateescape"))
        if case.weights is not None:
            with open(os.path.join(self.workdir, "w.safetensors"), "wb") as f:
                f.write(case.weights)
        for name, blob in case.extra.items():
            p = os.path.join(self.workdir, name)
            if blob is None:
                os.makedirs(p, exist_ok=True)
            elif blob is FIFO:
                os.mkfifo(p)
            else:
                with open(p, "wb") as f:
                    f.write(blob)
        return path

    def save(self, iteration, gen):
        os.makedirs(self.args.failures, exist_ok=True)
        dest = os.path.join(self.args.failures, f"seed{self.args.seed}-iter{iteration}-{gen}")
        if os.path.exists(dest):
            shutil.rmtree(dest)
        os.makedirs(dest)
        for name in os.listdir(self.workdir):
            src, dst = os.path.join(self.workdir, name), os.path.join(dest, name)
            if stat.S_ISFIFO(os.lstat(src).st_mode):
                os.mkfifo(dst)           # (copying would block on opening it)
            elif os.path.isdir(src):
                shutil.copytree(src, dst, symlinks=True)
            else:
                shutil.copyfile(src, dst)
        return dest

    def report(self, iteration, gen, reason, args, rc, stderr, detail=None):
        """Save and print a failing case; returns True when it is tolerated (--tolerate)."""
        dest = self.save(iteration, gen)
        path = os.path.join(dest, "model.tfm")
        cmd = " ".join(shlex.quote(a) for a in [self.args.tfmc] + [path if a.endswith("model.tfm") else a for a in args])
        sig = signature(reason, stderr)
        # the memory limits of the run, so that out-of-memory cases reproduce
        if self.runner.sanitized:
            env = f"ASAN_OPTIONS={shlex.quote(self.runner.env['ASAN_OPTIONS'])} "
        else:
            env = f"ulimit -v {PLAIN_ADDRESS_SPACE_MB * 1024}; "
        cmd = env + cmd
        known = next((k for k in self.args.tolerate if k in sig), None)
        if known:
            self.known.append((sig, iteration, cmd))
        else:
            self.failures.append((sig, iteration, cmd))
        with open(os.path.join(dest, "reproduce.sh"), "w") as f:
            f.write(f"#!/bin/sh\n# {reason}\n{cmd}\n")
        if known:
            print(f"KNOWN iteration {iteration} (seed {self.args.seed}, {gen}): {reason} (tolerated: --tolerate {known!r})")
            print(f"  reproduce: {cmd}")
            sys.stdout.flush()
            return True
        print(f"FAIL iteration {iteration} (seed {self.args.seed}, {gen}): {reason} [{sig}]")
        print(f"  input: {dest}/")
        print(f"  reproduce: {cmd}")
        print(f"  exit: {'timeout' if rc is None else rc}")
        if detail:
            print(f"  {detail}")
        if stderr:
            print("  stderr:")
            print(describe_stderr(stderr))
        sys.stdout.flush()
        return False

    def generate(self, rng):
        total = sum(w for _, _, w in self.generators)
        pick = rng.uniform(0, total)
        for name, fn, w in self.generators:
            if pick < w:
                return name, fn(self, rng)
            pick -= w
        name, fn, _ = self.generators[-1]
        return name, fn(self, rng)

    def one(self, iteration):
        rng = random.Random(f"tfmc-fuzz-weights:{self.args.seed}:{iteration}")
        gen, case = self.generate(rng)
        baseline = self.baseline(case.base) if case.equiv else None
        path = self.write(case)
        args = ["check", path]
        rc, out, err, secs = self.runner.run(args)
        if self.args.verbose:
            print(f"iteration {iteration} {gen} ({case.fx.name}): check exit {rc} ({secs:.2f} s)")
        reason = judge(rc, err)
        if reason:
            return self.report(iteration, gen, self.refine(reason, case), args, rc, err)
        if rc != 0:
            if case.equiv:
                return self.report(iteration, gen, "an equivalent declaration does not check", args, rc, err)
            return True
        mode = "logits" if case.equiv or rng.random() < 0.75 else rng.choice(["argmax", "generate"])
        ids = ["1", "2", "3"]
        args = ["run", path] + {"logits": ["--logits"], "argmax": [], "generate": ["--generate", "2"]}[mode] \
            + self.max_memory + ids
        rc, out, err, secs = self.runner.run(args)
        if self.args.verbose:
            print(f"  run ({mode}) exit {rc} ({secs:.2f} s)")
        reason = judge(rc, err)
        detail = None
        if not reason and case.equiv:
            if rc != 0:
                reason = "an equivalent weights file was rejected"
                detail = f"rewrites: {', '.join(case.ops)}"
            elif out != baseline:
                reason = "an equivalent weights file gives other logits"
                detail = f"rewrites: {', '.join(case.ops)}; expected {baseline[:80]!r}, got {out[:80]!r}"
        if not reason and rc == 0 and case.decl_changed:
            # options only: a mutation may have landed in a comment
            code = re.sub(r"#[^\n]*", "", case.tfm)
            big = [m.group(0) for m in DECL_INT_RE.finditer(code)
                   if m.group(1) not in ("seed", "base") and int(m.group(2)) > 2**31 - 1]
            if big:
                reason = "a declaration with an option above INT_MAX ran"
                detail = f"`{big[0]}` was accepted (truncated to a C int?)"
        if not reason and rc == 0 and case.weights is not None and WEIGHTS_RE.search(case.tfm) \
                and WEIGHTS_RE.search(case.tfm).group(1) == "w.safetensors":
            promise, maxabs = broken_promise(case.weights, scheme_norm(case.scheme), case.base,
                                             case.decl_changed, "unembed separate" not in case.tfm)
            if promise:
                reason = "accepted a bad weights file: " + re.sub(r"`[^`]*`", "`...`", promise)
                if b"\\u0000" in case.weights[:8 + int.from_bytes(case.weights[:8], "little")] \
                        and "NaN" not in promise and "malformed" not in promise:
                    reason += " (the header has a \\u0000 escape: a C string ends there)"
                detail = promise
            elif mode == "logits" and LOGIT_BAD_RE.search(out) and maxabs is not None and maxabs <= HONEST_OVERFLOW:
                reason = "NaN or infinite logits from finite weights"
                detail = f"largest |weight| {maxabs:g}; stdout {out[:120]!r}"
        if reason:
            return self.report(iteration, gen, self.refine(reason, case), args, rc, err, detail)
        return True

    @staticmethod
    def refine(reason, case):
        """A more telling reason for the failures that have a known trigger."""
        if reason == "timeout" and any(b is FIFO for b in case.extra.values()) and "fifo.safetensors" in case.tfm:
            return "timeout (the weights file is a named pipe)"
        if reason.startswith("exit status 1 with an empty stderr") and big_declaration(case):
            return "exit status 1 with an empty stderr (a declared size of 2^16 or more: out of memory?)"
        return reason

    def main(self):
        passed = failed = 0
        t0 = time.monotonic()
        print(f"fuzzing {self.args.tfmc} with weight files (seed {self.args.seed}, iterations "
              f"{self.args.start}..{self.args.start + self.args.iterations - 1}, {len(self.fixtures)} fixtures"
              f"{', sanitizer build' if self.runner.sanitized else ''})")
        if self.runner.sanitized:
            print(f"  ASAN_OPTIONS={self.runner.env['ASAN_OPTIONS']}")
        sys.stdout.flush()
        try:
            for i in range(self.args.start, self.args.start + self.args.iterations):
                ok = self.one(i)
                passed += ok
                failed += not ok
                if self.args.progress and (i + 1) % self.args.progress == 0:
                    print(f"  ... {i + 1} iterations, {failed} failed, {time.monotonic() - t0:.0f} s")
                    sys.stdout.flush()
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        for title, items in (("tolerated (--tolerate)", self.known), ("failure", self.failures)):
            if not items:
                continue
            groups = {}
            for sig, it, cmd in items:
                groups.setdefault(sig, []).append((it, cmd))
            print(f"{len(groups)} distinct {title} signature(s):")
            for sig, items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
                print(f"  {len(items):5d} x {sig}")
                print(f"          e.g. {items[0][1]}")
        print(f"{time.monotonic() - t0:.1f} s")
        if self.known:
            print(f"{len(self.known)} tolerated known failure(s) counted as passed")
        for line in self.runner.summary():
            print(line)
        print(f"{passed} passed, {failed} failed")
        return 1 if failed else 0


def big_declaration(case):
    """Whether a mutated declaration has a size of 2^16 or more (its weights may need gigabytes)."""
    return case.decl_changed and any(int(m.group(2)) >= 2**16 for m in DECL_INT_RE.finditer(case.tfm)
                                     if m.group(1) not in ("seed", "base"))


def rng_choice_tfmc(blob):
    """How a declaration names the default scheme: `as tfmc` or nothing (chosen by the file, so
    the same case is made on every run)."""
    return "tfmc" if len(blob) % 2 else None


def scheme_of(text):
    m = WEIGHTS_RE.search(text)
    return scheme_norm(m.group(3)) if m else "tfmc"


def scheme_norm(s):
    return s if s in ("gpt2", "llama") else "tfmc"


GENERATORS = [("tiny", Fuzzer.gen_tiny, 0.5), ("hlen", Fuzzer.gen_hlen, 1), ("jbytes", Fuzzer.gen_jbytes, 3),
              ("jstruct", Fuzzer.gen_jstruct, 4), ("data", Fuzzer.gen_data, 2), ("equiv", Fuzzer.gen_equiv, 1.5),
              ("decl", Fuzzer.gen_decl, 2.5), ("splice", Fuzzer.gen_splice, 0.5)]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="Deterministic fuzzing of tfmc's weight files and model declarations.")
    ap.add_argument("tfmc", help="the tfmc executable (ideally the sanitizer build)")
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=int, default=0, help="the first iteration (to replay one)")
    ap.add_argument("--fixtures", default=os.path.join(here, "..", "fixtures"))
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per run (times TFMC_TEST_TIME_FACTOR, times 3 in a sanitizer build; a run over it is run again with ten times as much)")
    ap.add_argument("--memory-mb", type=int, default=ff.MEMORY_LIMIT_MB,
                    help="a run whose resident set passes this many MB is killed and is a finding")
    ap.add_argument("--failures", default=DEFAULT_FAILURES_DIR, help="where failing cases are saved")
    ap.add_argument("--generators", default="", help="a comma-separated subset of: " +
                    ", ".join(g[0] for g in GENERATORS))
    ap.add_argument("--tolerate", action="append", default=[], metavar="TEXT",
                    help="count a failure whose signature contains TEXT as passed (a known, reported bug)")
    ap.add_argument("--progress", type=int, default=0, help="print progress every N iterations")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    args.tfmc = os.path.abspath(args.tfmc)
    if not os.access(args.tfmc, os.X_OK):
        print(f"fuzz_weights.py: {args.tfmc} is not an executable", file=sys.stderr)
        return 2
    if not os.path.isdir(args.fixtures):
        print(f"fuzz_weights.py: no fixtures directory {args.fixtures}", file=sys.stderr)
        return 2
    return Fuzzer(args).main()


if __name__ == "__main__":
    sys.exit(main())
