#!/usr/bin/env python3
"""check_text.py TFMC [--san]: text in and text out of `tfmc run`, and its sampling.

A tiny random model over a byte-level tokenizer written here (GPT-2's 256 byte tokens, a few
merges, <|endoftext|> as its `eos`), and for a set of prompts (ASCII, accents, emoji, CJK):

  text   `run --prompt P --generate K` prints exactly the decoding of the ids that
         `run --generate K IDS` prints for IDS = `tokenize --add-special P`, cut after the first
         eos (the pieces of three commands, each checked on its own elsewhere, must agree);
  sample the first sampled id of `run --generate 1 --temperature T --top-k K --top-p P --seed S`
         equals an independent Python implementation of the documented sampler (splitmix64 seed,
         xorshift64* draws, softmax of logits / T over the candidates sorted by logit then id,
         cut to top-k, then to the fewest reaching top-p) run on `run --logits` of the same input,
         for many seeds and settings; whole generations are the same at 1 and 2 threads and the
         same in text and in ids; different seeds give different generations;
  errors a prompt without a tokenizer, a prompt with ids, bad sampling options;
  C      the generated `--main` (portable C with gcc and clang, `--backend=simd` with gcc, all at
         -std=c99 -Wall -Wextra -Werror -pedantic; with --san under ASan and UBSan) prints the same
         ids as `tfmc run`, greedy and seeded, its first sampled id equals the Python sampler on its
         own logits, every generation of a model whose eos the model emits stops there, and bad
         options and ids are refused with a message.

Prints a line per check and `N passed, M failed`. Standard library only."""
import json
import math
import re
import os
import subprocess
import sys
import tempfile

M64 = (1 << 64) - 1
SANITIZE = False  # --san: the generated C is built with ASan and UBSan too


def byte_chars():
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def write_fixture(folder):
    m = byte_chars()
    vocab = {m[b]: b for b in range(256)}
    merges = []
    for a, b in [(m[32], "t"), ("h", "e"), (m[32] + "t", "he"), ("i", "n"), (m[32], "a")]:
        vocab.setdefault(a + b, len(vocab))
        merges.append(a + " " + b)
    eos = len(vocab)
    tok = {"added_tokens": [{"id": eos, "content": "<|endoftext|>", "special": True, "normalized": False}],
           "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
           "decoder": {"type": "ByteLevel"},
           "model": {"type": "BPE", "vocab": vocab, "merges": merges}}
    with open(os.path.join(folder, "tok.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    model = """model tiny {
  vocab %d;
  max_len 64;
  dim 32;
  init random(seed 3);
  tokenizer "tok.json";
  eos %d;
  embed token, position learned;
  block x 2 {
    attention heads 4, causal, norm layernorm(eps 1e-5);
    mlp hidden 64, act gelu, norm layernorm(eps 1e-5);
  }
  norm layernorm(eps 1e-5);
  unembed tied;
}
""" % (eos + 1, eos)
    path = os.path.join(folder, "tiny.tfm")
    with open(path, "w") as f:
        f.write(model)
    return path, os.path.join(folder, "tok.json"), eos


def splitmix(seed):
    z = (seed + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    z ^= z >> 31
    return z or 1


def uniform(state):
    x = state
    x ^= x >> 12
    x ^= (x << 25) & M64
    x ^= x >> 27
    return ((x * 0x2545F4914F6CDD1D) & M64) >> 11, x


def reference_sample(logits, temperature, top_k, top_p, seed):
    """The documented sampler, written from its description (docs/models.md)."""
    import struct
    f32 = [struct.unpack("f", struct.pack("f", v))[0] for v in logits]
    if temperature == 0:
        return max(range(len(f32)), key=lambda i: (f32[i], -i))
    mx = max(f32)
    inv_t = 1.0 / struct.unpack("f", struct.pack("f", temperature))[0]
    cand = list(range(len(f32)))
    if top_p < 1 and top_k == 0:
        cut = math.log((1.0 - struct.unpack("f", struct.pack("f", top_p))[0]) / (len(f32) - 1))
        cand = [i for i in cand if (f32[i] - mx) * inv_t >= cut]
    if (top_k > 0 and top_k < len(cand)) or top_p < 1:
        cand.sort(key=lambda i: (-f32[i], i))
        if top_k > 0:
            cand = cand[:top_k]
    w = [math.exp((f32[i] - mx) * inv_t) for i in cand]
    total = sum(w)
    if top_p < 1:
        want, s, keep = struct.unpack("f", struct.pack("f", top_p))[0] * total, 0.0, 0
        while keep < len(cand) and s < want:
            s += w[keep]
            keep += 1
        cand, w, total = cand[:max(keep, 1)], w[:max(keep, 1)], s
    bits, _ = uniform(splitmix(seed))
    r = bits * (1.0 / 9007199254740992.0) * total
    acc = 0.0
    for i, wi in zip(cand, w):
        acc += wi
        if r < acc:
            return i
    return cand[-1]


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, ok, what):
        self.passed += bool(ok)
        self.failed += not ok
        print(("ok    " if ok else "FAIL  ") + what)


def run(cmd, stdin=""):
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=300)


def run_bytes(cmd):
    """Output as bytes: a decoder must not stand between the program and the check."""
    return subprocess.run(cmd, capture_output=True, timeout=300)


def build(c, tfmc, tmp, model, name, backend, cc, extra=()):
    """The generated C with --main of model, built with cc; its path, or None (a failed check)."""
    src = os.path.join(tmp, name + ".c")
    exe = os.path.join(tmp, name)
    g = run([tfmc, model, "-o", src, "--main", "--backend=" + backend] + list(extra))
    if g.returncode != 0:
        c.check(False, "%s: tfmc could not write the C: %s" % (name, g.stderr.strip()[:300]))
        return None
    flags = ["-lm"] if backend == "simd" else run([tfmc, "config", "--cflags", "--libs"]).stdout.split()
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"] if SANITIZE else []
    b = run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", src, "-o", exe] + san + flags)
    c.check(b.returncode == 0, "%s: built with %s -std=c99 -Wall -Wextra -Werror -pedantic%s" %
            (name, cc, b.stderr.strip()[:400] and ": " + b.stderr.strip()[:400]))
    return exe if b.returncode == 0 else None


def check_compiled_text(c, tfmc, tok, model, exe, name, whole, exact, k="16"):
    """The generated --main of a model with a tokenizer: --prompt prints exactly what `tfmc run
    --prompt` prints (bytes), which is the decoding of the ids the same program generates, cut at
    the first eos (not printed); --logits after a prompt as `tfmc run`'s. Not exact (the SIMD file,
    whose logits are within a tolerance of the library's): the same as `tfmc run` when greedy."""
    same = decoded = total = 0
    for (p, s), (ids, _) in sorted(whole.items()):
        s = list(s)
        if not exact and s:
            continue
        want = run_bytes([tfmc, "run", model, "--prompt", p, "--generate", k] + s)
        got = run_bytes([exe, "--prompt", p, "--generate", k] + s)
        total += 1
        same += got.returncode == 0 and want.returncode == 0 and got.stdout == want.stdout
    eos_ids = set(re.search(r"eos ([0-9, ]+);", open(model).read()).group(1).replace(",", " ").split())
    c.check(same == total, "%s: --prompt prints the same text as `tfmc run --prompt`%s: %d of %d" %
            (name, "" if exact else " (greedy)", same, total))
    decoded = total = 0
    for (p, s), (ids, _) in sorted(whole.items()):
        got = run_bytes([exe, "--prompt", p, "--generate", k] + list(s))
        out = run([exe, "--generate", k] + list(s) + ids).stdout.split()
        ends = [i for i, t in enumerate(out) if t in eos_ids]
        text = run_bytes([tfmc, "tokenize", tok, "--decode", "--skip-special", " ".join(out[:ends[0]] if ends else out)]).stdout
        total += 1
        decoded += got.stdout == text
    c.check(decoded == total, "%s: the text is the decoding of its ids, cut at eos: %d of %d" % (name, decoded, total))
    p = sorted(whole)[0][0]
    a = [float(x) for x in run([exe, "--prompt", p, "--logits"]).stdout.split()]
    b = [float(x) for x in run([tfmc, "run", model, "--prompt", p, "--logits"]).stdout.split()]
    # the portable C runs the library's kernels (the same bits); the SIMD file's are compiled for
    # its target, within the tolerance docs/compiling.md states
    close = len(a) == len(b) > 100 and all(abs(x - y) <= 1e-4 * max(1.0, abs(y)) for x, y in zip(a, b))
    c.check((a == b if exact else close) and len(a) > 100,
            "%s: --prompt --logits as `tfmc run` (%s)" % (name, "exactly" if exact else "within 1e-4"))


DRIVER = r"""
#include <stdio.h>
#include <string.h>
#include "lib.h"
/* argv[1]: text; prints its ids (lib_encode_text), a tab, the decoding of those ids */
int main(int argc, char **argv)
{
    int ids[64];
    char text[512];
    size_t n, len, i;
    if (argc != 2) return 2;
    if (lib_encode_text(argv[1], strlen(argv[1]), ids, 64, &n) != 0) return 1;
    for (i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
    if (lib_decode_text(ids, n, text, sizeof text, &len) != 0) return 1;
    printf("\t%.*s\n", (int)len, text);
    if (lib_encode_text(argv[1], strlen(argv[1]), ids, 0, &n) != -1 || n == 0) return 3; /* too small: the count */
    if (lib_decode_text(ids, 1, text, 0, &len) != -1) return 4;
    ids[0] = -1;
    return lib_decode_text(ids, 1, text, sizeof text, &len) == -1 ? 0 : 5;
}
"""


def check_library_text(c, tfmc, tmp, model, tok, prompts):
    """A model compiled without --main but with --tokenizer: another C file calls its
    NAME_encode_text and NAME_decode_text through NAME.h, and gets what `tfmc tokenize` gives."""
    src, exe, drv = os.path.join(tmp, "lib.c"), os.path.join(tmp, "libtext"), os.path.join(tmp, "driver.c")
    g = run([tfmc, model, "-o", src, "--tokenizer", tok])
    with open(drv, "w") as f:
        f.write(DRIVER.replace("lib_", "tiny_"))
    flags = run([tfmc, "config", "--cflags", "--libs"]).stdout.split()
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"] if SANITIZE else []
    b = run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", "-I", tmp, src, drv, "-o", exe] + san + flags)
    c.check(g.returncode == 0 and b.returncode == 0, "library text: built (%s)" % (g.stderr + b.stderr).strip()[:300])
    if b.returncode != 0:
        return
    same = 0
    for p in prompts:
        r = run([exe, p])
        ids = run([tfmc, "tokenize", tok, "--add-special", p]).stdout.split()
        text = run([tfmc, "tokenize", tok, "--decode", "--skip-special", " ".join(ids)]).stdout.rstrip("\n")
        same += r.returncode == 0 and r.stdout == " ".join(ids) + "\t" + text + "\n"
    c.check(same == len(prompts), "library text: tiny_encode_text and tiny_decode_text as `tfmc tokenize`, refusals: %d of %d" %
            (same, len(prompts)))


def check_imported(c, tfmc, tmp, prompts, settings):
    """Hugging Face fixture folders (tests/fixtures/hf: their config, weights, eos and tokenizer.json)
    through `tfmc import` (max_len 32: 8 tokens generated): the generated --main (its tokenizer from the model's `tokenizer`
    statement) against `tfmc run`, in ids and in text."""
    hf = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "hf")
    for family, backend in [("llama", "c"), ("gpt2", "c"), ("qwen3", "c")]:  # (portable: the same logits bit for bit)
        model = os.path.join(tmp, family + ".tfm")
        r = run([tfmc, "import", os.path.join(hf, family), "-o", model])
        if r.returncode != 0:
            c.check(False, "%s: tfmc import: %s" % (family, r.stderr.strip()[:300]))
            continue
        exe = build(c, tfmc, tmp, model, family + "_" + backend, backend, "gcc")
        if not exe:
            continue
        tok = os.path.join(hf, family, "tokenizer.json")
        whole = {}
        for p in prompts:
            ids = run([tfmc, "tokenize", tok, "--add-special", p]).stdout.split()
            for s in settings:
                whole[p, tuple(s)] = ids, None
        same = total = 0
        for (p, s), (ids, _) in sorted(whole.items()):
            if backend == "simd" and s:
                continue
            want = run([tfmc, "run", model, "--generate", "8"] + list(s) + ids)
            got = run([exe, "--generate", "8", "--threads", "1"] + list(s) + ids)
            total += 1
            same += got.returncode == 0 and got.stdout == want.stdout
        c.check(same == total, "%s_%s: the same ids as `tfmc run`%s: %d of %d" %
                (family, backend, " (greedy)" if backend == "simd" else "", same, total))
        check_compiled_text(c, tfmc, tok, model, exe, family + "_" + backend, whole, backend != "simd", "8")


def check_compiled(c, tfmc, tmp, model, tok, eos, prompts, settings):
    """The generated --main (portable C with gcc and clang, SIMD with gcc) against `tfmc run`: the
    same ids, greedy and sampled, for the same seed; generation stopping at an eos; bad options."""
    # a second model whose eos is also an id the model generates early, so that every generation stops
    with open(model) as f:
        text = f.read()
    ids0 = run([tfmc, "tokenize", tok, "--add-special", prompts[1]]).stdout.split()
    whole = {}  # (prompt, settings) -> the ids `tfmc run` generates with the model's own eos
    for p in prompts:
        ids = run([tfmc, "tokenize", tok, "--add-special", p]).stdout.split()
        for s in settings:
            whole[p, tuple(s)] = ids, run([tfmc, "run", model, "--generate", "16"] + s + ids).stdout.split()
    counts = {}
    for _, out in whole.values():
        for t in out[1:]:
            counts[t] = counts.get(t, 0) + 1
    common = max(sorted(counts), key=lambda t: counts[t])  # the id generated most often
    stops = os.path.join(tmp, "stops.tfm")
    with open(stops, "w") as f:
        f.write(text.replace("eos %d;" % eos, "eos %d, %s;" % (eos, common)))
    for backend, cc in [("c", "gcc"), ("c", "clang"), ("simd", "gcc")]:
        for m in (model, stops):
            name = "%s_%s_%s" % (os.path.basename(m)[:-4], backend, cc)
            exe = build(c, tfmc, tmp, m, name, backend, cc)
            if not exe:
                continue
            same = total = cut = stopped = 0
            for (p, s), (ids, full) in sorted(whole.items()):
                s = list(s)
                if backend == "simd" and s:
                    continue  # its logits are the library's within a tolerance: sampled ids may differ
                want = run([tfmc, "run", m, "--generate", "16"] + s + ids)
                got = run([exe, "--generate", "16", "--threads", "1"] + s + ids)
                total += 1
                same += got.returncode == 0 and want.returncode == 0 and got.stdout == want.stdout
                # the generation of the model with its own eos alone, cut after the first eos
                ends = [i for i, t in enumerate(full) if t in (str(eos), common if m == stops else str(eos))]
                cut += got.stdout.split() == (full[:ends[0] + 1] if ends else full)
                stopped += bool(ends) and ends[0] < 15
            c.check(same == total, "%s: the same ids as `tfmc run`, %s: %d of %d" %
                    (name, "greedy" if backend == "simd" else "greedy and seeded", same, total))
            check_compiled_text(c, tfmc, tok, m, exe, name, whole, backend != "simd")
            c.check(cut == total and (m != stops or stopped > 0),
                    "%s: generation stops after the first eos: %d of %d (%d stopped early)" % (name, cut, total, stopped))
            threads = "2" if backend == "c" else "1"  # the SIMD file has no thread pool
            many = run([exe, "--generate", "8", "--temperature", "1", "--seed", "5", "--threads", threads],
                       "\n".join([" ".join(ids0)] * 3) + "\n")
            lines = many.stdout.splitlines()
            c.check(len(lines) == 3 and len(set(lines)) == 1, "%s: each input line starts from the seed" % name)
            if m == model:
                # the first sampled id against the Python sampler, on the logits the compiled model prints
                logits = [float(x) for x in run([exe, "--logits"] + ids0).stdout.split()]
                agree = total = 0
                for t, k, p in [(1.0, 0, 1.0), (0.5, 0, 1.0), (1.0, 10, 1.0), (1.0, 0, 0.5), (0.9, 3, 0.8), (3.0, 0, 0.95)]:
                    for seed in range(0, 40, 4):
                        args = ["--temperature", repr(t), "--top-k", str(k), "--top-p", repr(p), "--seed", str(seed)]
                        got = run([exe, "--generate", "1"] + args + ids0).stdout.split()
                        total += 1
                        agree += got == [str(reference_sample(logits, t, k, p, seed))]
                c.check(agree == total, "%s: first sampled id equals the Python sampler: %d of %d" % (name, agree, total))
            if backend != "c" or cc != "gcc" or m != model:
                continue
            for args, what in [(["--bogus"], "unknown option"), (["--generate", "2", "--seed"], "needs a value"),
                               (["--temperature", "x"], "--temperature"), (["--temperature", "-1"], "--temperature"),
                               (["--top-p", "0"], "--top-p"), (["--top-p", "1.5"], "--top-p"), (["--top-k", "2.5"], "--top-k"),
                               (["--seed", "-3"], "--seed"), (["--generate", "0"], "--generate"), (["--threads", "0"], "--threads")]:
                r = run([exe] + args + ([] if "needs a value" in what else ["1", "2"]))
                c.check(r.returncode == 2 and what in r.stderr and r.stdout == "" and "Sanitizer" not in r.stderr,
                        "%s: %s is refused: %s" % (name, " ".join(args), r.stderr.strip()))
            r = run([exe, "--generate", "2", "1", "x"])
            c.check(r.returncode == 1 and "not a token id" in r.stderr, "%s: a bad id: %s" % (name, r.stderr.strip()))
            for args, status, what in [(["--prompt", "hi", "--generate", "2", "1", "2"], 2, "not both"),
                                       (["--generate", "2", "--prompt"], 2, "needs a value"),
                                       (["--prompt", "x" * 80, "--generate", "2"], 1, "max_len"),
                                       (["--prompt", "", "--generate", "2"], 1, "no tokens")]:
                r = run([exe] + args)
                c.check(r.returncode == status and what in r.stderr and "Sanitizer" not in r.stderr,
                        "%s: %s: %s" % (name, what, r.stderr.strip()))
            r = subprocess.run([exe, b"--prompt", b"ab\xff", b"--generate", b"2"], capture_output=True, timeout=60)
            c.check(r.returncode == 1 and b"not valid UTF-8 at byte 3" in r.stderr, "%s: bad UTF-8: %s" % (name, r.stderr.strip()))
            # the longest prompt Linux passes (131071 bytes), of texts that take the tokenizer much
            # working memory per byte (one-byte pieces; no merges; four-byte characters), fits its buffer
            for long in [("a " * 65536)[:131071], "".join(chr(0x4e00 + i % 5000) for i in range(43690)),
                         "\U0001F600" * 32767, "".join(chr(33 + i % 90) for i in range(131071)), " " * 131071,
                         "".join(chr(97 + i * 7 % 26) for i in range(131071))]:
                r = run([exe, "--prompt", long, "--generate", "1"])
                c.check(r.returncode == 1 and "max_len" in r.stderr,
                        "%s: a %d-byte prompt is encoded: %s" % (name, len(long.encode()), r.stderr.strip()))
            out_c = os.path.join(tmp, "refused.c")
            bad_tok = os.path.join(tmp, "wordpiece.json")
            with open(bad_tok, "w") as f:
                f.write('{"model": {"type": "WordPiece"}}')
            for args, status, what in [([], 1, "cannot read the tokenizer"), (["--main"], 1, "cannot read the tokenizer"),
                                       (["--main"], 1, "WordPiece is not supported")]:
                path = bad_tok if "WordPiece" in what else os.path.join(tmp, "missing.json")
                r = run([tfmc, model, "-o", out_c, "--tokenizer", path] + args)
                c.check(r.returncode == status and what in r.stderr and "cannot write" not in r.stderr,
                        "tfmc -o OUT.c --tokenizer %s: %s" % (" ".join(args), r.stderr.strip().splitlines()[0]))
            bare = build(c, tfmc, tmp, model, name + "_bare", backend, cc, ["--tokenizer", "none"])
            if bare:
                r = run([bare, "--prompt", "hi", "--generate", "2"])
                c.check(r.returncode == 2 and "needs a tokenizer" in r.stderr, "%s: no tokenizer: %s" % (name, r.stderr.strip()))


def main(argv):
    global SANITIZE
    SANITIZE = "--san" in argv
    tfmc = os.path.abspath(argv[1])
    c = Checks()
    with tempfile.TemporaryDirectory() as tmp:
        model, tok, eos = write_fixture(tmp)
        prompts = ["Hello", "the cat sat on the mat", "caf\u00e9 na\u00efve", "emoji \U0001F600 and \u65e5\u672c"]
        settings = [[], ["--temperature", "0.8", "--seed", "7"], ["--temperature", "1.2", "--top-k", "5", "--seed", "11"],
                    ["--temperature", "0.7", "--top-p", "0.9", "--seed", "3"]]
        for p in prompts:
            ids = run([tfmc, "tokenize", tok, "--add-special", p]).stdout.split()
            for s in settings:
                text = run([tfmc, "run", model, "--prompt", p, "--generate", "16"] + s)
                gen = run([tfmc, "run", model, "--generate", "16"] + s + ids)
                two = run([tfmc, "run", model, "--prompt", p, "--generate", "16", "--threads", "2"] + s)
                out = gen.stdout.split()
                if str(eos) in out:
                    out = out[:out.index(str(eos)) + 1]
                want = run([tfmc, "tokenize", tok, "--decode", "--skip-special", " ".join(out)]).stdout
                c.check(text.returncode == 0 and text.stdout == want,
                        "%r %s: the text is the decoding of the ids (%r)" % (p, " ".join(s) or "greedy", text.stdout[:40]))
                c.check(two.stdout == text.stdout, "%r %s: 2 threads print the same" % (p, " ".join(s) or "greedy"))
        # the first sampled token against the Python sampler, on the logits tfmc computes
        ids = run([tfmc, "tokenize", tok, prompts[1]]).stdout.split()
        logits = [float(x) for x in run([tfmc, "run", model, "--logits"] + ids).stdout.split()]
        agree = total = 0
        for t, k, p in [(1.0, 0, 1.0), (0.5, 0, 1.0), (2.0, 0, 1.0), (1.0, 10, 1.0), (1.0, 0, 0.5), (0.9, 3, 0.8), (3.0, 0, 0.95)]:
            for seed in range(0, 60, 3):
                args = ["--temperature", repr(t), "--top-k", str(k), "--top-p", repr(p), "--seed", str(seed)]
                got = run([tfmc, "run", model, "--generate", "1"] + args + ids).stdout.split()
                want = reference_sample(logits, t, k, p, seed)
                total += 1
                agree += got == [str(want)]
        c.check(agree == total, "first sampled token equals the Python sampler: %d of %d" % (agree, total))
        a = run([tfmc, "run", model, "--prompt", prompts[1], "--generate", "16", "--temperature", "1", "--seed", "1"]).stdout
        b = run([tfmc, "run", model, "--prompt", prompts[1], "--generate", "16", "--temperature", "1", "--seed", "2"]).stdout
        c.check(a != b, "different seeds, different text")
        # errors
        bare = os.path.join(tmp, "bare.tfm")
        with open(model) as f, open(bare, "w") as g:
            g.write(f.read().replace('  tokenizer "tok.json";\n', ""))
        r = run([tfmc, "run", bare, "--prompt", "hi", "--generate", "2"])
        c.check(r.returncode == 2 and "needs a tokenizer" in r.stderr, "a prompt without a tokenizer: " + r.stderr.strip())
        r = run([tfmc, "run", bare, "--tokenizer", tok, "--prompt", "hi", "--generate", "2"])
        c.check(r.returncode == 0 and r.stdout.endswith("\n"), "--tokenizer FILE gives one")
        r = run([tfmc, "run", model, "--prompt", "hi", "--generate", "2", "1", "2"])
        c.check(r.returncode == 2 and "not both" in r.stderr, "a prompt and ids: " + r.stderr.strip())
        for opt, val in [("--temperature", "-1"), ("--top-p", "0"), ("--top-p", "1.5"), ("--top-k", "2.5"), ("--seed", "x")]:
            r = run([tfmc, "run", model, "--generate", "2", opt, val, "1"])
            c.check(r.returncode == 2 and opt in r.stderr, "%s %s is refused: %s" % (opt, val, r.stderr.strip()))
        r = run([tfmc, "run", model, "--prompt", "x" * 80, "--generate", "2"])
        c.check(r.returncode == 1 and "max_len" in r.stderr, "a prompt too long for max_len: " + r.stderr.strip())
        with open(bare, "w") as g:
            g.write(open(model).read().replace('eos %d;' % eos, 'eos %d;' % (eos + 5)))
        r = run([tfmc, "check", bare])
        c.check(r.returncode == 1 and "outside the vocabulary" in r.stderr, "an eos outside the vocabulary: " + r.stderr.strip().splitlines()[0])
        check_compiled(c, tfmc, tmp, model, tok, eos, prompts, settings)
        check_library_text(c, tfmc, tmp, model, tok, prompts)
        check_imported(c, tfmc, tmp, prompts, settings)
    print("%d passed, %d failed" % (c.passed, c.failed))
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
