#!/usr/bin/env python3
"""Deterministic fuzzing of tfmc's tokenizers (tokenizer/, support/json.c) and `tfmc tokenize`.

Usage: fuzz_tokenizer.py TFMC [--iterations N] [--seed S] [--progress N] [--verbose]

The corpus is two tokenizer.json files written here, small enough to mutate quickly and covering
the two kinds tfmc runs: a byte-level BPE (GPT-2's byte table, the GPT-2 pattern, merges, an added
special token) and a SentencePiece-style BPE (Prepend and Replace normalisers, byte fallback,
Strip decoder, a template post-processor, NFC). Every iteration takes one, and a generator:

  bytes   the JSON text mutated as bytes: truncated, bytes deleted / duplicated / inserted /
          replaced, NULs, invalid UTF-8, a deep nest of brackets
  struct  the JSON mutated as structure: values of the wrong type, huge and negative ids, ids
          given twice, tokens twice, merges naming unknown tokens or of one token, unknown
          component types and patterns, missing parts, nested Sequences, added tokens with
          empty, huge or odd contents
  text    a valid file, with random text (random bytes, random code points, runs of one
          character, long lines) encoded, and random ids (in and out of the vocabulary) decoded

and runs `TFMC tokenize FILE --escapes [--add-special|--plain]` on a few lines, and `--decode`.
A run fails when it exits with a status other than 0 or 1, dies from a signal, takes longer than
its limit twice (tests/limits.py), passes 512 MB resident, prints a sanitizer report, exits 1
with nothing on standard error, or (for a file it accepted) when decoding the ids it gave for a
text that needs no normalisation does not give the text back (byte-level files round-trip
every text exactly). Prints `N runs, M failures`; exits 1 on any failure. Standard library only."""
import argparse
import json
import os
import random
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import limits  # noqa: E402

MEMORY_MB = 512


def byte_chars():
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"


def byte_level():
    ch = byte_chars()
    vocab = {ch[b]: b for b in range(256)}
    merges = []
    for a, b in [(ch[32], "t"), ("h", "e"), (ch[32] + "t", "he"), ("i", "n"), ("a", "n"), (ch[32], "a")]:
        vocab.setdefault(a + b, len(vocab))
        merges.append(a + " " + b)
    return {"version": "1.0",
            "added_tokens": [{"id": len(vocab), "content": "<|endoftext|>", "special": True, "normalized": False,
                              "lstrip": False, "rstrip": False, "single_word": False}],
            "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
            "post_processor": {"type": "ByteLevel"},
            "decoder": {"type": "ByteLevel"},
            "model": {"type": "BPE", "vocab": vocab, "merges": merges, "ignore_merges": False}}


def sentencepiece():
    vocab = {"<unk>": 0, "<s>": 1}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for t in ["\u2581", "h", "i", "e", "\u2581h", "\u2581hi", "\u00e9", "\u2581\u00e9"]:
        vocab[t] = len(vocab)
    return {"added_tokens": [{"id": 0, "content": "<unk>", "special": True}, {"id": 1, "content": "<s>", "special": True}],
            "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Prepend", "prepend": "\u2581"},
                                                              {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
            "pre_tokenizer": None,
            "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                                                       {"Sequence": {"id": "A", "type_id": 0}}]},
            "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                                                          {"type": "ByteFallback"}, {"type": "Fuse"},
                                                          {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
            "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": True, "fuse_unk": True, "vocab": vocab,
                      "merges": [["\u2581", "h"], ["\u2581h", "i"], ["\u2581", "\u00e9"]]}}


TEXTS = ["hello the cat", "h\u00e9 hi", "  spaces  and\ttabs\n", "emoji \U0001F600 \u65e5\u672c", "<|endoftext|> <s>", "12345"]


def escape(b):
    out = []
    for c in b:
        if c == 0x5C:
            out.append("\\\\")
        elif c < 0x20 or c == 0x7F or c >= 0x80:
            out.append("\\x%02x" % c)
        else:
            out.append(chr(c))
    return "".join(out)


def escape_out(b):
    """As `tfmc tokenize --escapes` writes decoded text: \\n \\r \\t \\\\, other controls as \\xHH."""
    out = bytearray()
    for c in b:
        if c in (0x0A, 0x0D, 0x09, 0x5C):
            out += {0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t", 0x5C: b"\\\\"}[c]
        elif c < 0x20 or c == 0x7F:
            out += b"\\x%02x" % c
        else:
            out.append(c)
    return bytes(out)


def mutate_bytes(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not data:
            break
        k = rng.randrange(7)
        i = rng.randrange(len(data))
        if k == 0:
            del data[rng.randrange(len(data)):]
        elif k == 1:
            del data[i:i + rng.randint(1, 8)]
        elif k == 2:
            data[i:i] = data[i:i + rng.randint(1, 16)]
        elif k == 3:
            data[i:i] = bytes(rng.choice([b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"{", b"[", b"\"", b"\\", b",", b"1e999"]))
        elif k == 4:
            data[i] = rng.randrange(256)
        elif k == 5:
            data[i:i] = b"[" * rng.choice([10, 600, 5000])
        else:
            data[i:i] = b"\\u" + rng.choice([b"d800", b"dc00", b"0000", b"zzzz", b"12"])
    return bytes(data)


def mutate_struct(rng, doc):
    doc = json.loads(json.dumps(doc))
    m = doc["model"]
    choices = [
        lambda: m.update(vocab={k: rng.choice([-1, 2 ** 40, 1.5, "x", None, 0]) for k in list(m["vocab"])[:3]} | m["vocab"]),
        lambda: m["vocab"].update({"zz": rng.choice(list(m["vocab"].values()))}),
        lambda: m["merges"].append(rng.choice(["a", "a b c", "nope x", " ", "", ["q"], ["a", "b", "c"], 7, None])),
        lambda: m.update(type=rng.choice(["Unigram", "WordPiece", "", None, 3])),
        lambda: m.pop(rng.choice(["vocab", "merges", "type"]), None),
        lambda: doc.update(pre_tokenizer={"type": "Split", "pattern": {"Regex": rng.choice(["\\w+", GPT2_PATTERN[:-3], ""])},
                                          "behavior": rng.choice(["Isolated", "Contiguous", 1])}),
        lambda: doc.update(normalizer={"type": rng.choice(["Lowercase", "NFKC", "Sequence", "Replace", "Prepend"])}),
        lambda: doc.update(decoder={"type": "Sequence", "decoders": [{"type": "Sequence", "decoders": []}] * rng.choice([1, 20])}),
        lambda: doc.update(added_tokens=[{"id": rng.choice([0, 5, 10 ** 7, -3]), "content": rng.choice(["", "x" * 5000, "\u00e9", "<s>"]),
                                          "special": rng.choice([True, False, "yes"])}]),
        lambda: doc.update(post_processor={"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": rng.choice(["<s>", "nope", 3])}}]}),
        lambda: doc.pop(rng.choice(["model", "decoder", "normalizer", "pre_tokenizer"]), None),
        lambda: m.update(byte_fallback=rng.choice([True, False, "x"]), unk_token=rng.choice([None, "<unk>", "nope", 3])),
        lambda: doc.update(model=rng.choice([[], "BPE", None, {}])),
    ]
    for _ in range(rng.randint(1, 3)):
        try:
            rng.choice(choices)()
        except (AttributeError, TypeError, KeyError, IndexError):
            pass
    return json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode()


def random_text(rng):
    k = rng.randrange(4)
    if k == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
    if k == 1:
        cps = [rng.choice([rng.randrange(0x20, 0x7F), rng.randrange(0xA0, 0x800), rng.randrange(0x800, 0xD800),
                           rng.randrange(0xE000, 0x110000), 0x301, 0x1100, 0x1161, 0x20, 0x0A])
               for _ in range(rng.randint(0, 30))]
        return "".join(map(chr, cps)).encode("utf-8", "surrogatepass")
    if k == 2:
        return rng.choice(["a", " ", "\u00e9", "\U0001F600", "\n"]).encode() * rng.choice([1, 100, 3000])
    return rng.choice(TEXTS).encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tfmc")
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--progress", type=int, default=0)
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    tfmc = os.path.abspath(a.tfmc)
    factor = limits.time_factor(tfmc)
    rng = random.Random(a.seed)
    corpus = [("byte-level", byte_level()), ("sentencepiece", sentencepiece())]
    runs = failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "tokenizer.json")
        for it in range(a.iterations):
            kind, doc = rng.choice(corpus)
            gen = rng.choice(["bytes", "struct", "text"])
            base = json.dumps(doc, ensure_ascii=False).encode()
            data = mutate_bytes(rng, base) if gen == "bytes" else mutate_struct(rng, doc) if gen == "struct" else base
            with open(path, "wb") as f:
                f.write(data)
            texts = [random_text(rng) for _ in range(3)] if gen == "text" else [t.encode() for t in TEXTS[:2]]
            mode = rng.choice([[], ["--add-special"], ["--plain"]])
            jobs = [(mode, "".join(escape(t) + "\n" for t in texts).encode(), texts)]
            vocab = len(doc["model"]["vocab"]) + 1
            ids = " ".join(str(rng.choice([rng.randrange(vocab), rng.randrange(vocab), vocab, 10 ** 6, -1]))
                           for _ in range(rng.randint(1, 12)))
            jobs.append((["--decode"], (ids + "\n").encode(), None))
            for args, stdin, sent in jobs:
                argv = [tfmc, "tokenize", path, "--escapes"] + args
                r = limits.run_confirmed(argv, stdin, timeout=10 * factor, memory_mb=MEMORY_MB)
                runs += 1
                err = r.err.decode("utf-8", "replace")
                why = None
                if r.timed_out:
                    why = "timed out twice (limit %.0f s)" % (r.limit or 0)
                elif r.over_memory:
                    why = "more than %d MB resident" % MEMORY_MB
                elif r.rc is None or r.rc < 0:
                    why = "died from signal %s" % (-(r.rc or 0))
                elif r.rc not in (0, 1):
                    why = "exit status %d" % r.rc
                elif "Sanitizer" in err or "runtime error" in err:
                    why = "a sanitizer report"
                elif r.rc == 1 and not err.strip():
                    why = "exit 1 with nothing on standard error"
                elif gen != "bytes" and gen != "struct" and sent and r.rc == 0 and kind == "byte-level" and "--add-special" not in args:
                    # a byte-level file must give back every text it encoded (valid UTF-8 ones)
                    lines = r.out.decode().split("\n")[:-1]
                    for t, line in zip(sent, lines):
                        try:
                            t.decode("utf-8")
                        except UnicodeDecodeError:
                            continue
                        back = limits.run_confirmed([tfmc, "tokenize", path, "--escapes", "--decode"], (line + "\n").encode(),
                                                    timeout=10 * factor, memory_mb=MEMORY_MB)
                        if back.out != escape_out(t) + b"\n":
                            why = "decode(encode(%r)) is %r" % (t[:40], back.out[:80])
                            break
                if why:
                    failures += 1
                    print("FAIL iteration %d (%s, %s %s): %s\n%s" % (it, kind, gen, " ".join(args), why, err[-1500:]))
                elif a.verbose:
                    print("ok   iteration %d (%s, %s %s): exit %s" % (it, kind, gen, " ".join(args), r.rc))
            if a.progress and (it + 1) % a.progress == 0:
                print("%d iterations, %d runs, %d failures" % (it + 1, runs, failures), flush=True)
    print("%d runs, %d failures" % (runs, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
