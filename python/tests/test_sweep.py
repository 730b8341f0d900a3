"""The variant sweep from Python: 24 declared architectures (norm x score x positions x
(experts | a shared block with a window)), each compiled in-process and run on the interpreter
backend and on the llvm backend (JIT); the JIT's logits within 1e-6 x max|logit| of the
interpreter's, which test_tfmc.py and check_models.py tie to PyTorch."""
import itertools

import numpy as np
import pytest

import tfmc

NORMS = ["layernorm(eps 1e-5)", "rmsnorm(eps 1e-6)"]
SCORES = ["softmax", "softmax1"]
POSITIONS = ["learned", "rope(base 10000)", "alibi"]
KINDS = ["moe", "shared_window"]
VARIANTS = list(itertools.product(NORMS, SCORES, POSITIONS, KINDS))


def source(i, norm, score, pos, kind):
    shared = kind == "shared_window"
    return ("model v%d {\n  vocab 64; max_len 16; dim 32;\n  init random(seed %d);\n  embed token, position %s;\n"
            "  block%s x %d {\n    attention heads 4, %s, score %s, norm %s;\n    %s, norm %s;\n  }\n"
            "  norm %s;\n  unembed %s;\n}\n") % (
        i, 31 + i, pos, " shared" if shared else "", 3 if shared else 2, "window 4" if shared else "causal", score, norm,
        "mlp hidden 48, act gelu" if shared else "moe experts 4, top 2, hidden 24, act swiglu", norm, norm,
        "tied" if shared else "separate")


def test_there_are_24():
    assert len(VARIANTS) == 24


@pytest.mark.parametrize("i", range(len(VARIANTS)))
def test_variant(i):
    if not tfmc.backend_available("llvm"):
        pytest.skip("no llvm backend in this build")
    src = source(i, *VARIANTS[i])
    tokens = [(i * 7 + k * 13 + 1) % 64 for k in range(10)]
    ref = tfmc.loads(src).program().logits(tokens)
    jit_ctx = tfmc.loads(src)
    jit_ctx.set_backend("llvm")
    m = jit_ctx.program()
    got = m.logits(tokens)
    assert np.isfinite(ref).all()
    assert np.max(np.abs(got - ref)) <= 1e-6 * float(np.max(np.abs(ref)))
    # decode through the KV cache on the JIT: the same as the full prefill's rows
    s = m.session()
    s.prefill(tokens[:6])
    for k in range(6, 10):
        step = s.decode(tokens[k])
        assert np.max(np.abs(step - ref[k])) <= 1e-5 * float(np.max(np.abs(ref[k])))
