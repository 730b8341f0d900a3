#!/usr/bin/env python3
"""check_bad_weights.py TFMC FIXTURES_DIR

Bad weight files and oversized declarations through `tfmc check` and `tfmc run` (issue 10): each
must fail with a message naming the tensor or the bytes, exit status 1, within a second of CPU
time and 200 MB of peak memory (measured with wait4, so a busy machine cannot make it fail):

- a small file declared big (dim 65535 over a 24-wide checkpoint), and sizes whose memory exceeds
  the machine's or --max-memory (max_len 16777216, dim 100000 with hidden 100000);
- every missing, unexpected or mis-shaped tensor reported in one run, with a hint when the names
  are another scheme's or carry a prefix;
- a weights file that is missing, a directory or truncated, reported by `tfmc check` too;
- a NaN named by its index [row, column].
The expectations are written from the fixtures' own headers (read here with struct/json), not
from tfmc's output. Standard library only."""
import json, os, shutil, struct, subprocess, sys, tempfile

CPU_LIMIT_S = 1.0
RSS_LIMIT_KB = 200 * 1024


def read_header(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def write_safetensors(path, header, data):
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def tfmc(exe, args, cwd):
    """Run tfmc; (exit status, stderr, CPU seconds, peak RSS in KB, stdout) of exactly that process."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen([exe] + args, cwd=cwd, stdout=out, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return p.returncode, err.read(), ru.ru_utime + ru.ru_stime, ru.ru_maxrss, out.read()


class Runner:
    def __init__(self, exe, tmp):
        self.exe, self.tmp, self.failures, self.count = exe, tmp, [], 0
        self.last_cpu = 0.0

    def expect(self, label, args, want, status=1, count=None):
        """tfmc ARGS fails with `status` and every string of `want` in its errors."""
        self.count += 1
        code, err, cpu, rss, _ = tfmc(self.exe, args, self.tmp)
        problems = []
        if code != status:
            problems.append("exit %d, want %d" % (code, status))
        for w in want:
            if w not in err:
                problems.append("no %r in the errors" % w)
        if count is not None and err.count(": error: ") != count:
            problems.append("%d errors, want %d" % (err.count(": error: "), count))
        if cpu > CPU_LIMIT_S:
            problems.append("took %.2f s of CPU (limit %.1f)" % (cpu, CPU_LIMIT_S))
        if rss > RSS_LIMIT_KB:
            problems.append("peak memory %d MB (limit %d)" % (rss // 1024, RSS_LIMIT_KB // 1024))
        if problems:
            self.failures.append("%s: %s\n    tfmc %s\n    %s" % (label, "; ".join(problems), " ".join(args),
                                                               err.strip().replace("\n", "\n    ")[:3000]))
        return err


def main():
    exe, fixtures = os.path.abspath(sys.argv[1]), sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="tfmc_badw_")
    try:
        r = Runner(exe, tmp)
        for name in ("gpt2", "rmsnorm", "llama"):
            shutil.copy(os.path.join(fixtures, name + ".safetensors"), tmp)
        gpt2 = open(os.path.join(fixtures, "gpt2.tfm")).read()
        rms = open(os.path.join(fixtures, "rmsnorm.tfm")).read()
        hdr, data = read_header(os.path.join(tmp, "rmsnorm.safetensors"))

        def model(name, text):
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
            return name

        # 1. a small file declared big: every mis-shaped tensor, fast, no memory taken
        big = model("big.tfm", gpt2.replace("dim 24", "dim 65535").replace("heads 3", "heads 5"))
        for cmd in ("check", "run"):
            err = r.expect("dim 65535 over a small file (%s)" % cmd, [cmd, big, "1", "2"][: 2 if cmd == "check" else 4],
                           ["`transformer.wte.weight` has shape [64, 24]; the declaration needs [64, 65535]",
                            "needs at least", "GiB"])
        # 2. memory stated before it is taken
        # KV caches alone: 2 blocks x 2 x 16777216 x 4096 x 4 bytes = 1 TiB, more than any machine
        huge_len = model("huge_len.tfm", rms.replace("max_len 16", "max_len 16777216").replace("dim 16", "dim 4096")
                         .replace('weights "rmsnorm.safetensors";', "init random(seed 1);")
                         .replace("position learned", "position rope(base 10000)"))
        r.expect("max_len 16777216", ["check", huge_len], ["needs at least", "KV caches", "GiB", "the limit is"])
        r.expect("max_len 16777216 (run)", ["run", huge_len, "1"], ["needs at least", "KV caches"])
        wide = model("wide.tfm", rms.replace("dim 16", "dim 100000").replace("hidden 32", "hidden 100000")
                     .replace('weights "rmsnorm.safetensors";', "init random(seed 1);"))
        r.expect("dim 100000, hidden 100000", ["run", wide, "1"], ["needs at least", "weights", "GiB"])
        # the fixture itself, under a small --max-memory: the early estimate, then the exact arena
        rms_tfm = model("rms.tfm", rms)
        r.expect("--max-memory=4K", ["run", "--max-memory=4K", rms_tfm, "1", "2"], ["the limit is", "--max-memory"])
        code, err, _, _, out = tfmc(exe, ["run", "--max-memory=1G", rms_tfm, "1", "2"], tmp)
        if code != 0 or len(out.split()) != 2:
            r.failures.append("--max-memory=1G: the fixture must run (exit %d): %s" % (code, err))
        r.expect("check --max-memory=1K", ["check", "--max-memory=1K", rms_tfm], ["the limit is 1.0 KiB (--max-memory)"])
        r.expect("--max-memory=12Q", ["run", "--max-memory=12Q", rms_tfm, "1"], ["malformed option"], status=2)

        # 3. every missing tensor in one run, with a hint for the scheme
        names = [k for k in hdr if k != "__metadata__"]
        drop = [n for n in names if n.startswith("layers.1.")][:3]
        cut = {k: v for k, v in hdr.items() if k not in drop}
        write_safetensors(os.path.join(tmp, "cut.safetensors"), cut, data)
        cut_tfm = model("cut.tfm", rms.replace("rmsnorm.safetensors", "cut.safetensors"))
        for cmd in ("check", "run"):
            r.expect("three tensors missing (%s)" % cmd, [cmd, cut_tfm] + (["1"] if cmd == "run" else []),
                     ["tensor `%s` is missing" % n for n in drop], count=3)
        # an extra tensor, and a mis-shaped one, both reported
        extra = dict(hdr)
        extra["layers.9.extra"] = {"dtype": "F32", "shape": [2], "data_offsets": [len(data), len(data) + 8]}
        shaped = dict(extra)
        victim = [n for n in names if n.endswith("norm.weight")][0]
        shaped[victim] = dict(hdr[victim], shape=[hdr[victim]["shape"][0] // 2, 2])
        write_safetensors(os.path.join(tmp, "extra.safetensors"), shaped, data + bytes(8))
        r.expect("an unexpected and a mis-shaped tensor", ["check", model("extra.tfm", rms.replace("rmsnorm.safetensors", "extra.safetensors"))],
                 ["unexpected tensor `layers.9.extra`", "tensor `%s` has shape [%d, 2]" % (victim, hdr[victim]["shape"][0] // 2)],
                 count=2)
        # another scheme's names: a GPT-2 checkpoint declared in our scheme, and as llama
        wrong = model("wrong.tfm", gpt2.replace(" as gpt2", ""))
        r.expect("GPT-2 names, tfmc scheme", ["check", wrong], ["is missing", "as gpt2"])
        r.expect("GPT-2 names, llama scheme", ["check", model("wrong2.tfm", gpt2.replace(" as gpt2", " as llama"))],
                 ["is missing", "as gpt2"])
        # our names under a prefix
        pre = {("base." + k if k != "__metadata__" else k): v for k, v in hdr.items()}
        write_safetensors(os.path.join(tmp, "prefixed.safetensors"), pre, data)
        r.expect("prefixed names", ["check", model("pre.tfm", rms.replace("rmsnorm.safetensors", "prefixed.safetensors"))],
                 ["is missing", "prefix `base.`"])

        # 4. the file itself: missing, a directory, truncated
        r.expect("no such file", ["check", model("none.tfm", rms.replace("rmsnorm.safetensors", "none.safetensors"))],
                 ["none.safetensors: cannot open"])
        os.mkdir(os.path.join(tmp, "dir.safetensors"))
        r.expect("a directory", ["check", model("dir.tfm", rms.replace("rmsnorm.safetensors", "dir.safetensors"))],
                 ["dir.safetensors: not a regular file"])
        raw = open(os.path.join(tmp, "rmsnorm.safetensors"), "rb").read()
        open(os.path.join(tmp, "short.safetensors"), "wb").write(raw[: len(raw) - 100])
        r.expect("truncated", ["check", model("short.tfm", rms.replace("rmsnorm.safetensors", "short.safetensors"))],
                 ["short.safetensors:", "truncated file?"])

        # 5. a NaN named by its index in the file's shape
        emb = hdr["embed.token.weight"]
        rows, cols = emb["shape"]
        at = emb["data_offsets"][0] + 4 * (3 * cols + 4)
        nan = data[:at] + struct.pack("<f", float("nan")) + data[at + 4:]
        write_safetensors(os.path.join(tmp, "nan.safetensors"), hdr, nan)
        r.expect("a NaN at [3, 4]", ["run", model("nan.tfm", rms.replace("rmsnorm.safetensors", "nan.safetensors")), "1"],
                 ["tensor `embed.token.weight` holds NaN at [3, 4]"])

        for f in r.failures:
            print("FAIL:", f)
        print("%d cases, %d failures" % (r.count, len(r.failures)))
        return 1 if r.failures else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
