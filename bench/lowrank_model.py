#!/usr/bin/python3
# lowrank_model.py OUT_DIR RANK: a declared model (dim 256, 4 blocks, MLP 1024) whose every matrix is
# rank RANK plus 1e-5 noise, in our weight naming scheme, for bench/lowrank.sh. Needs numpy.
import json, os, struct, sys
import numpy as np

out, rank = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
V, D, F, L, T = 256, 256, 1024, 4, 128


def low(rows, cols):
    u = rng.standard_normal((rows, rank)) / np.sqrt(rank)
    v = rng.standard_normal((rank, cols)) / np.sqrt(cols)
    return (u @ v + 1e-5 * rng.standard_normal((rows, cols))).astype(np.float32)


t = {"embed.token.weight": (0.1 * rng.standard_normal((V, D))).astype(np.float32),
     "embed.position.weight": (0.1 * rng.standard_normal((T, D))).astype(np.float32)}
for l in range(L):
    for k in "qkvo":
        t["layers.%d.attention.%s.weight" % (2 * l, k)] = low(D, D)
    t["layers.%d.mlp.up.weight" % (2 * l + 1)] = low(F, D)
    t["layers.%d.mlp.down.weight" % (2 * l + 1)] = low(D, F)
header, data, at = {}, b"", 0
for name, a in t.items():
    b = a.tobytes()
    header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [at, at + len(b)]}
    data, at = data + b, at + len(b)
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
open(os.path.join(out, "lowrank.safetensors"), "wb").write(struct.pack("<Q", len(h)) + h + data)
open(os.path.join(out, "lowrank.tfm"), "w").write("""model lowrank {
  vocab %d; max_len %d; dim %d;
  weights "lowrank.safetensors";
  embed token, position learned;
  block x %d {
    attention heads 4, causal, bias false;
    mlp hidden %d, act relu, bias false;
  }
  unembed tied;
}
""" % (V, T, D, L, F))
