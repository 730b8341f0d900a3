#!/usr/bin/python3
# torch_gpt2.py: the PyTorch reference for bench/models.sh: the same GPT-2-small shape (random
# weights, plain torch modules), prefill 128 tokens and decode with a KV cache, on one thread or
# on the count given (bench/threads.sh: the same counts as tfmc). Usage: torch_gpt2.py [THREADS]
import sys
import time
import torch

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
torch.manual_seed(1)
V, D, H, L, F, T = 50257, 768, 12, 12, 3072, 256


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = torch.nn.LayerNorm(D), torch.nn.LayerNorm(D)
        self.qkv, self.proj = torch.nn.Linear(D, 3 * D), torch.nn.Linear(D, D)
        self.fc, self.out = torch.nn.Linear(D, F), torch.nn.Linear(F, D)

    def forward(self, x, cache, pos):
        n = x.shape[0]
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=1)
        cache[0][pos:pos + n], cache[1][pos:pos + n] = k, v
        k, v = cache[0][:pos + n], cache[1][:pos + n]
        q, k, v = (t.view(-1, H, D // H).transpose(0, 1) for t in (q, k, v))
        s = q @ k.transpose(1, 2) / (D // H) ** 0.5
        mask = torch.arange(pos + n)[None, :] > (pos + torch.arange(n))[:, None]
        a = (s.masked_fill(mask, float("-inf")).softmax(-1) @ v).transpose(0, 1).reshape(n, D)
        x = x + self.proj(a)
        return x + self.out(torch.nn.functional.gelu(self.fc(self.ln2(x)), approximate="tanh"))


wte, wpe = torch.randn(V, D) * 0.02, torch.randn(T, D) * 0.02
blocks = [Block() for _ in range(L)]
lnf = torch.nn.LayerNorm(D)


@torch.no_grad()
def step(ids, caches, pos):
    x = wte[ids] + wpe[pos:pos + len(ids)]
    for b, c in zip(blocks, caches):
        x = b(x, c, pos)
    return lnf(x) @ wte.T


ids = torch.tensor([(i * 7919) % V for i in range(128)])
best = 1e9
for _ in range(3):
    caches = [(torch.zeros(T, D), torch.zeros(T, D)) for _ in range(L)]
    t0 = time.perf_counter()
    step(ids, caches, 0)
    best = min(best, time.perf_counter() - t0)
caches = [(torch.zeros(T, D), torch.zeros(T, D)) for _ in range(L)]
nxt = step(ids[:1], caches, 0)[-1].argmax().reshape(1)
steps = 64
t0 = time.perf_counter()
for i in range(steps):
    nxt = step(nxt, caches, 1 + i)[-1].argmax().reshape(1)
print("torch_prefill128_ms=%.1f" % (best * 1e3))
print("torch_decode_tok_s=%.1f" % (steps / (time.perf_counter() - t0)))
