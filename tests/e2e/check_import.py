#!/usr/bin/env python3
"""check_import.py TFMC HF_FIXTURES: `tfmc import` of Hugging Face model folders, end to end.

For each folder of tests/fixtures/hf (gpt2; llama with grouped-query attention, a sharded BF16
checkpoint and generation_config.json's eos list; mistral with a sliding window and one key/value
head; qwen2 with biases on q, k and v only and tied embeddings; qwen3 with per-head q and k norms and
head_dim larger than hidden / heads; phi3 with fused qkv_proj and gate_up_proj and a window), llama32 with Llama 3.1's rope_scaling and
a max_position_embeddings of 131072 (max_len capped at 8192); gemma with (1 + w) norms, the embedding
times sqrt(hidden_size), the tanh-GELU gate, MQA and head_dim * heads != hidden; gpt_neox (Pythia) with
its per-head fused query_key_value, a quarter of each head rotating, the parallel residual and old
buffers in the file; gpt_neox_seq as newer transformers saves it (rope_theta, partial_rotary_factor
0.5, a sequential residual); each copied to a temporary folder:
`tfmc import DIR -o DIR/model.tfm`, then `tfmc run` of the .tfm (and its generated C) must give the logits of the
prompt's last position within 1e-4 x max|logit| of expected.json (a numpy forward written from each
family's modeling code, tests/fixtures/hf/gen_hf.py), the same argmax at every position, the same
6 greedy ids, and `--prompt` text through the folder's tokenizer.json. Written outside the folder
(-o elsewhere, or standard output) the .tfm uses absolute paths and runs the same.

Then the refusals, each naming the config field with its line and column: rope_scaling of
another type or incomplete, an
activation tfmc lacks, a model_type it does not import, a missing config.json, a folder with only
pytorch_model.bin, a sharded index naming a missing shard or a tensor its shard lacks; and the
warning for a field tfmc does not know (the import still succeeds).
Prints a line per check and `N passed, M failed`. Standard library only."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

TOLERANCE = 1e-4


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, ok, what):
        self.passed += bool(ok)
        self.failed += not ok
        print(("ok    " if ok else "FAIL  ") + what)


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def check_model(c, tfmc, tfm, expected, what):
    ids = [str(i) for i in expected["prompt"]]
    r = run([tfmc, "run", tfm, "--logits"] + ids)
    if r.returncode != 0:
        c.check(False, "%s: run --logits: %s" % (what, r.stderr.strip()))
        return
    got = [float(x) for x in r.stdout.split()]
    want = expected["last_logits"]
    scale = max(1.0, max(abs(x) for x in want))
    diff = max(abs(a - b) for a, b in zip(got, want)) if len(got) == len(want) else float("inf")
    c.check(diff <= TOLERANCE * scale, "%s: last logits within %.2g (max diff %.3g)" % (what, TOLERANCE * scale, diff))
    am = run([tfmc, "run", tfm] + ids).stdout.split()
    c.check(am == [str(x) for x in expected["argmax"]], "%s: argmax at every position" % what)
    gen = run([tfmc, "run", tfm, "--generate", "6"] + ids).stdout.split()
    c.check(gen == [str(x) for x in expected["generated"]], "%s: 6 greedy ids %s" % (what, " ".join(gen)))


def main(argv):
    tfmc, fixtures = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    c = Checks()
    with tempfile.TemporaryDirectory() as tmp:
        for name in ["gpt2", "llama", "llama32", "mistral", "qwen2", "qwen3", "phi3", "gemma", "gpt_neox", "gpt_neox_seq"]:
            d = os.path.join(tmp, name)
            shutil.copytree(os.path.join(fixtures, name), d)
            expected = json.load(open(os.path.join(d, "expected.json")))
            tfm = os.path.join(d, "model.tfm")
            r = run([tfmc, "import", d, "-o", tfm])
            c.check(r.returncode == 0 and r.stderr == "", "%s: import (%s)" % (name, r.stderr.strip() or "no warning"))
            if r.returncode != 0:
                continue
            text = open(tfm).read()
            c.check('weights "model.safetensors' in text and 'tokenizer "tokenizer.json"' in text,
                    "%s: paths beside the .tfm are bare names" % name)
            c.check(all("#" in l for l in text.splitlines()[3:-2] if l.strip() not in ("}",)),
                    "%s: every statement says where it came from" % name)
            check_model(c, tfmc, tfm, expected, name)
            r = run([tfmc, "run", tfm, "--prompt", "Hello, the", "--generate", "6"])
            c.check(r.returncode == 0, "%s: --prompt through tokenizer.json" % name)
            # elsewhere: absolute paths
            out = os.path.join(tmp, name + "_elsewhere.tfm")
            r = run([tfmc, "import", d, "-o", out])
            c.check(r.returncode == 0 and os.path.realpath(d) in open(out).read(), "%s: -o outside the folder: absolute paths" % name)
            check_model(c, tfmc, out, expected, name + " (elsewhere)")
            r = run([tfmc, "import", d])
            c.check(r.returncode == 0 and r.stdout.startswith("# Imported by tfmc"), "%s: to standard output" % name)
            # the generated C (portable backend, its --main) gives the same logits
            cc = shutil.which("cc")
            if cc:
                src, exe = os.path.join(d, "model.c"), os.path.join(d, "model")
                flags = run([tfmc, "config", "--cflags", "--libs"]).stdout.split()
                r = run([tfmc, tfm, "-o", src, "--main"])
                r2 = r.returncode == 0 and run([cc, "-O1", src] + flags + ["-o", exe])
                if r.returncode == 0 and r2.returncode == 0:
                    got = [float(x) for x in run([exe, "--logits"] + [str(i) for i in expected["prompt"]]).stdout.split()]
                    want = expected["last_logits"]
                    diff = max(abs(a - b) for a, b in zip(got, want)) if len(got) == len(want) else float("inf")
                    c.check(diff <= TOLERANCE * max(1.0, max(abs(x) for x in want)), "%s: generated C, max diff %.3g" % (name, diff))
                else:
                    c.check(False, "%s: generated C builds: %s" % (name, (r.stderr + (r2.stderr if r2 else "")).strip()[-300:]))
        c.check('eos 258, 2;' in open(os.path.join(tmp, "llama", "model.tfm")).read(), "llama: generation_config.json's eos list")
        c.check('window 4' in open(os.path.join(tmp, "mistral", "model.tfm")).read(), "mistral: sliding_window as window")
        c.check('bias qkv' in open(os.path.join(tmp, "qwen2", "model.tfm")).read(), "qwen2: bias qkv")
        c.check('qk_norm rmsnorm' in open(os.path.join(tmp, "qwen3", "model.tfm")).read(), "qwen3: qk_norm")
        text = open(os.path.join(tmp, "gemma", "model.tfm")).read()
        c.check(text.count("offset 1") == 3 and "scale 5.65685415" in text and "act geglu_tanh" in text,
                "gemma: (1 + w) norms, sqrt(32) embedding scale, geglu_tanh")
        text = open(os.path.join(tmp, "gpt_neox", "model.tfm")).read()
        c.check("rope(base 10000, dims 2)" in text and ", parallel;" in text and "as gpt_neox" in text,
                "gpt_neox: 2 of 8 dimensions rotate, parallel residual")
        text = open(os.path.join(tmp, "gpt_neox_seq", "model.tfm")).read()
        c.check("rope(base 25000, dims 4)" in text and "parallel" not in text, "gpt_neox_seq: rope_theta, partial_rotary_factor, sequential")

        # refusals: the field, its place, its value
        def refused(base, edit, pattern, what):
            d = os.path.join(tmp, "bad")
            shutil.rmtree(d, ignore_errors=True)
            shutil.copytree(os.path.join(fixtures, base), d)
            cfg_path = os.path.join(d, "config.json")
            cfg = json.load(open(cfg_path))
            edit(cfg, d)
            if cfg is not None:
                with open(cfg_path, "w") as f:
                    json.dump(cfg, f, indent=2)
            r = run([tfmc, "import", d, "-o", os.path.join(d, "model.tfm")])
            ok = r.returncode == 1 and re.search(pattern, r.stderr) is not None and not os.path.exists(os.path.join(d, "model.tfm"))
            c.check(ok, "%s: %s" % (what, r.stderr.strip().splitlines()[0] if r.stderr.strip() else "(nothing)"))

        refused("llama", lambda cfg, d: cfg.update(rope_scaling={"rope_type": "yarn", "factor": 8.0}),
                r"config\.json:\d+:\d+: error: `rope_scaling` is \{\"rope_type\": \"yarn\", \"factor\": 8.0\}, of a type", "rope_scaling yarn")
        refused("llama", lambda cfg, d: cfg.update(rope_scaling={"rope_type": "llama3", "factor": 8.0}),
                r"`rope_scaling` of type llama3 lacks `low_freq_factor`", "rope_scaling llama3 incomplete")
        refused("llama", lambda cfg, d: cfg.update(hidden_act="gelu"), r"config\.json:\d+:\d+: error: `hidden_act` is \"gelu\"", "hidden_act")
        refused("llama", lambda cfg, d: cfg.update(model_type="bert"), r"`model_type` is \"bert\", which tfmc does not import", "model_type")
        refused("gpt2", lambda cfg, d: cfg.update(activation_function="swish"), r"`activation_function` is \"swish\"", "activation_function")
        refused("gpt2", lambda cfg, d: cfg.update(scale_attn_by_inverse_layer_idx=True), r"`scale_attn_by_inverse_layer_idx` is true", "a GPT-2 flag")
        refused("llama", lambda cfg, d: cfg.pop("hidden_size"), r"config\.json has no `hidden_size`", "a missing size")
        refused("llama", lambda cfg, d: cfg.update(num_key_value_heads=3), r"heads do not divide", "heads that do not divide")
        refused("gemma", lambda cfg, d: cfg.update(hidden_activation="relu"), r"config\.json:\d+:\d+: error: `hidden_activation` is \"relu\"",
                "gemma hidden_activation")
        refused("gpt_neox", lambda cfg, d: cfg.update(rotary_pct=0.1), r"`rotary_pct` 0\.1 gives 0 rotating dimensions of a head of 8",
                "gpt_neox rotary_pct too small")
        refused("gpt_neox", lambda cfg, d: cfg.update(hidden_act="gelu_10"), r"`hidden_act` is \"gelu_10\"", "gpt_neox hidden_act")
        refused("gemma", lambda cfg, d: cfg.update(model_type="gemma2"), r"`model_type` is \"gemma2\", which tfmc does not import yet",
                "gemma2 not yet")
        # Gemma's hidden_act "gelu" without hidden_activation: the versions of transformers differ; a warning says which
        d = os.path.join(tmp, "gemma_gelu")
        shutil.copytree(os.path.join(fixtures, "gemma"), d)
        cfg = json.load(open(os.path.join(d, "config.json")))
        cfg["hidden_act"] = "gelu"
        json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=2)
        r = run([tfmc, "import", d, "-o", os.path.join(d, "model.tfm")])
        c.check(r.returncode == 0 and "warning: `hidden_act` is \"gelu\"" in r.stderr and "act geglu," in open(os.path.join(d, "model.tfm")).read(),
                "gemma hidden_act gelu: exact geglu, with a warning")

        def no_config(cfg, d):
            os.remove(os.path.join(d, "config.json"))
        d = os.path.join(tmp, "noconfig")
        shutil.copytree(os.path.join(fixtures, "gpt2"), d)
        os.remove(os.path.join(d, "config.json"))
        r = run([tfmc, "import", d])
        c.check(r.returncode == 1 and "cannot read config.json" in r.stderr, "no config.json: " + r.stderr.strip())
        os.remove(os.path.join(d, "model.safetensors"))
        shutil.copy(os.path.join(fixtures, "gpt2", "config.json"), d)
        open(os.path.join(d, "pytorch_model.bin"), "wb").write(b"\x80\x02")
        r = run([tfmc, "import", d])
        c.check(r.returncode == 1 and "pytorch_model.bin is a pickle" in r.stderr, "only pytorch_model.bin: a hint")
        # a field tfmc does not know: a warning, and the import goes on
        d = os.path.join(tmp, "unknown")
        shutil.copytree(os.path.join(fixtures, "mistral"), d)
        cfg = json.load(open(os.path.join(d, "config.json")))
        cfg["frobnicate_heads"] = 3
        json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=2)
        r = run([tfmc, "import", d, "-o", os.path.join(d, "model.tfm")])
        c.check(r.returncode == 0 and re.search(r"config\.json:\d+:\d+: warning: config\.json's `frobnicate_heads`", r.stderr),
                "an unknown field is a warning: " + r.stderr.strip().splitlines()[0])
        # sharded checkpoints that do not add up
        d = os.path.join(tmp, "shards")
        shutil.copytree(os.path.join(fixtures, "llama"), d)
        index = json.load(open(os.path.join(d, "model.safetensors.index.json")))
        first = sorted(index["weight_map"])[0]
        index["weight_map"][first] = "model-00002-of-00002.safetensors" if index["weight_map"][first].startswith("model-00001") else "model-00001-of-00002.safetensors"
        json.dump(index, open(os.path.join(d, "model.safetensors.index.json"), "w"))
        run([tfmc, "import", d, "-o", os.path.join(d, "model.tfm")])
        r = run([tfmc, "check", os.path.join(d, "model.tfm")])
        c.check(r.returncode == 1 and "does not hold it" in r.stderr, "an index naming the wrong shard: " + r.stderr.strip().splitlines()[0][-90:])
        index["weight_map"][first] = "model-00009-of-00009.safetensors"
        json.dump(index, open(os.path.join(d, "model.safetensors.index.json"), "w"))
        r = run([tfmc, "check", os.path.join(d, "model.tfm")])
        c.check(r.returncode == 1 and "model-00009-of-00009.safetensors: cannot open" in r.stderr, "an index naming a missing shard")
    print("%d passed, %d failed" % (c.passed, c.failed))
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
