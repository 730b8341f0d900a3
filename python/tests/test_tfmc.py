"""The Python package against independent references: hand-computed RASP outputs, the `tfmc`
command's output, PyTorch's logits (tests/fixtures/*.expected.safetensors, made by gen.py), and
the weights file the command exports, read here by a reader of the test's own."""
import json
import os
import struct
import subprocess

import numpy as np
import pytest

import tfmc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLES = os.path.join(ROOT, "examples")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
TFMC = os.environ.get("TFMC_EXE", os.path.join(ROOT, "build", "tfmc"))
LLVM = tfmc.backend_available("llvm")


def cli(*args, stdin=""):
    return subprocess.run([TFMC] + list(args), input=stdin, capture_output=True, text=True, check=True).stdout


def expected(name):
    """A fixture's PyTorch reference: {tokens, logits, ...} as numpy arrays (own reader)."""
    raw = open(os.path.join(FIXTURES, name + ".expected.safetensors"), "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for k, t in header.items():
        if k == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[k] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=np.float32).reshape(t["shape"])
    return out


def test_eval_and_run_sort_by_hand():
    p = tfmc.load(os.path.join(EXAMPLES, "sort.tfm")).program()
    assert (p.name, p.kind, p.max_len) == ("sort", "rasp", 5)
    assert p.eval([3, 1, 4, 2]) == [1, 2, 3, 4]
    assert p.run([3, 1, 4, 2]) == [1, 2, 3, 4]
    assert p.eval([5, 4, 3, 2, 1]) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("name", sorted(f[:-4] for f in os.listdir(EXAMPLES) if f.endswith(".tfm")))
def test_examples_match_the_command(name):
    path = os.path.join(EXAMPLES, name + ".tfm")
    p = tfmc.load(path).program()
    text = open(path).read()
    # the first words of its vocabulary, as the command reads them
    body = text[text.index("vocab {") + 7:text.index("}", text.index("vocab {"))]
    first = body.split(",")[0].strip().strip('"')
    words = [str(int(first.split("..")[0]))] * 3 if ".." in first else [first] * 3
    want = cli("eval", path, "--", *words).split()
    got = ["_" if v is None else (str(v).lower() if isinstance(v, bool) else "%.9g" % v if isinstance(v, float) else str(v))
           for v in p.run(words)]
    assert got == want
    assert p.eval(words) == p.run(words)


def test_verify():
    r = tfmc.load(os.path.join(EXAMPLES, "reverse.tfm")).program().verify(max_len=3)
    assert r.equal and r.exhaustive and r.checked > 0
    assert "verified" in r.report or r.report == ""


def test_errors_carry_file_line_col():
    with pytest.raises(tfmc.TfmcError) as e:
        tfmc.loads("rasp r {\n  vocab {1, 2};\n  max_len 2;\n  return bogus;\n}\n", name="bad.tfm")
    assert (e.value.file, e.value.line, e.value.col) == ("bad.tfm", 4, 10)
    assert "bogus" in e.value.message and str(e.value).startswith("bad.tfm:4:10: ")
    p = tfmc.load(os.path.join(EXAMPLES, "sort.tfm")).program()
    with pytest.raises(tfmc.TfmcError) as e:
        p.run([9])
    assert "9" in str(e.value)


@pytest.mark.parametrize("name", ["gpt2", "llama", "moe", "alibi", "softmax1"])
def test_model_logits_against_pytorch(name):
    ref = expected(name)
    m = tfmc.load(os.path.join(FIXTURES, name + ".tfm")).program()
    tokens = [int(t) for t in ref["tokens"]]
    got = m.logits(tokens)
    want = ref["logits"]
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= 1e-4 * max(1.0, float(np.max(np.abs(want))))


def test_prefill_decode_generate():
    m = tfmc.load(os.path.join(EXAMPLES, "models", "llama.tfm")).program()
    full = m.logits([5, 6, 7, 8])
    s = m.session()
    s.prefill([5, 6])
    step = s.decode(7)
    assert np.allclose(step, full[2], rtol=0, atol=1e-5 * float(np.max(np.abs(full[2]))))
    assert m.generate([5, 6, 7], 4) == [int(x) for x in cli("run", os.path.join(EXAMPLES, "models", "llama.tfm"),
                                                            "--generate", "4", "5", "6", "7").split()]


def test_weights_equal_the_export(tmp_path):
    path = os.path.join(EXAMPLES, "sort.tfm")
    w = tfmc.load(path).program().weights()
    out = tmp_path / "w.safetensors"
    cli(path, "--emit=weights", "-o", str(out))
    raw = out.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    names = [k for k in header if k != "__metadata__"]
    assert sorted(w) == sorted(names)
    for k in names:
        a, b = header[k]["data_offsets"]
        arr = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=np.float32).reshape(header[k]["shape"])
        assert np.array_equal(w[k], arr)
    assert w.labels and w.labels[0] == "one"


def test_llvm_backend():
    p = tfmc.load(os.path.join(EXAMPLES, "sort.tfm")).program()
    if not LLVM:
        with pytest.raises(tfmc.TfmcError) as e:
            p.run([3, 1, 4, 2], backend="llvm")
        assert "llvm" in str(e.value)
        pytest.skip("no llvm backend in this build")
    assert p.run([3, 1, 4, 2], backend="llvm") == [1, 2, 3, 4]
    assert p.verify(backend="llvm").equal
