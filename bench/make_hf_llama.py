#!/usr/bin/env python3
"""make_hf_llama.py DIR [15M|110M]: a Llama checkpoint folder as Hugging Face saves it (config.json,
model.safetensors in F32), of the shape of llama2.c's stories15M or stories110M, with seeded random
weights, for bench/load.sh. numpy only; the file is written once and reused."""
import json
import os
import struct
import sys

import numpy as np

SHAPES = {"15M": dict(dim=288, layers=6, heads=6, hidden=768), "110M": dict(dim=768, layers=12, heads=12, hidden=2048)}


def main(argv):
    folder, shape = argv[1], SHAPES[argv[2] if len(argv) > 2 else "110M"]
    d, L, H, I, V = shape["dim"], shape["layers"], shape["heads"], shape["hidden"], 32000
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(1)
    r = lambda *s: (rng.standard_normal(s, dtype=np.float32) * 0.02)
    W = {"model.embed_tokens.weight": r(V, d), "model.norm.weight": np.ones(d, np.float32), "lm_head.weight": r(V, d)}
    for l in range(L):
        p = "model.layers.%d." % l
        W.update({p + "input_layernorm.weight": np.ones(d, np.float32), p + "post_attention_layernorm.weight": np.ones(d, np.float32),
                  p + "self_attn.q_proj.weight": r(d, d), p + "self_attn.k_proj.weight": r(d, d),
                  p + "self_attn.v_proj.weight": r(d, d), p + "self_attn.o_proj.weight": r(d, d),
                  p + "mlp.gate_proj.weight": r(I, d), p + "mlp.up_proj.weight": r(I, d), p + "mlp.down_proj.weight": r(d, I)})
    header, offset = {}, 0
    for k in sorted(W):
        header[k] = {"dtype": "F32", "shape": list(W[k].shape), "data_offsets": [offset, offset + W[k].nbytes]}
        offset += W[k].nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # the data section 8-aligned, as safetensors writes it
    with open(os.path.join(folder, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for k in sorted(W):
            f.write(W[k].tobytes())
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": V, "hidden_size": d,
           "intermediate_size": I, "num_hidden_layers": L, "num_attention_heads": H, "num_key_value_heads": H,
           "hidden_act": "silu", "max_position_embeddings": 1024, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
           "tie_word_embeddings": False, "torch_dtype": "float32", "bos_token_id": 1, "eos_token_id": 2}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


if __name__ == "__main__":
    main(sys.argv)
