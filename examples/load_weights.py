#!/usr/bin/env python3
"""Run a model exported by `tfmc FILE --emit=weights -o prog.safetensors` with numpy alone.
usage: load_weights.py prog.safetensors TOKEN...   (needs numpy; Debian: /usr/bin/python3)"""
import json, struct, sys
import numpy as np

def load(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = {k: json.loads(v) if v[:1] in "[{" else v for k, v in header.pop("__metadata__").items()}
    data = raw[8 + n:]
    t = {k: np.frombuffer(data[a:b], "<f4").reshape(v["shape"]) for k, v in header.items()
         for a, b in [v["data_offsets"]]}
    return meta, t

def forward(meta, t, words):
    ids = [int(meta["bos_id"])] + [meta["vocab"].index(w) for w in words]
    x = t["tok_emb"][ids] + t["pos_emb"][: len(ids)]
    for i, b in enumerate(meta["blocks"]):
        if b["kind"] == "mlp":
            p = f"blocks.{i}.mlp."
            x = x + np.maximum(x @ t[p + "w1"].T + t[p + "b1"], 0) @ t[p + "w2"].T + t[p + "b2"]
            continue
        delta = 0
        for h in range(b["heads"]):
            w = {k: t[f"blocks.{i}.heads.{h}.{k}"] for k in ("wq", "wk", "wv", "wo")}
            s = b["scale"] * (x @ w["wq"].T) @ (x @ w["wk"].T).T
            if b["causal"]:
                s = np.where(np.tril(np.ones_like(s)) > 0, s, -np.inf)
            p = np.exp(s - s.max(axis=1, keepdims=True))
            delta = delta + (p / p.sum(axis=1, keepdims=True)) @ (x @ w["wv"].T) @ w["wo"].T
        x = x + delta
    out = meta["output"]
    if out["kind"] == "numerical":
        return ["%.9g" % v for v in x[1:, out["dim"]]]
    v = x[1:][:, out["dims"]]
    return [out["values"][j] if v[i, j] > 0.5 else "_" for i, j in enumerate(v.argmax(axis=1))]

if __name__ == "__main__":
    meta, tensors = load(sys.argv[1])
    print(" ".join(forward(meta, tensors, sys.argv[2:])))
