"""Would a compiled decode step speed up small-model rollouts? torch.compile vs eager, one run.

The small RookWorld model's rollout is bound by per-op overhead (docs/lm.md), so fusing the
decode step is the obvious candidate. This times one static-shape GPT-2 decode step (the
small config: 4 layers, 256 wide, 4 heads, 64-token vocabulary; 16 rows = 2 prompts x G=8;
a 176-slot KV cache written by index, additive mask, argmax feedback), eager and under
`torch.compile(dynamic=False)` (Inductor's C++ backend), in fp32 and with bf16 weights, and
prints ms per step, the ratio and the compile time. A simplified step with random weights:
it measures the compiler's effect, not the sampler (`sampler_vs_generate.py` does that).

    .venv/bin/python benchmarks/compile_decode.py [--threads 1] [--reps 3]
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from linear_kernels import setup  # same folder: --threads/--reps, seeded

LAYERS, WIDTH, HEADS, VOCAB, ROWS, SLOTS, PROMPT, NEW = 4, 256, 4, 64, 16, 176, 92, 84


def make_step(dtype: torch.dtype):
    """A decode step over random weights in `dtype` (layer norms, residual stream and KV cache fp32)."""
    c, d = WIDTH, WIDTH // HEADS

    def lin(o, i):
        return torch.randn(o, i, dtype=dtype) * 0.02, torch.zeros(o, dtype=dtype)

    layers = [dict(qkv=lin(3 * c, c), proj=lin(c, c), fc=lin(4 * c, c), out=lin(c, 4 * c)) for _ in range(LAYERS)]
    wte, wpe, head = torch.randn(VOCAB, c) * 0.02, torch.randn(1024, c) * 0.02, torch.randn(VOCAB, c, dtype=dtype) * 0.02
    caches = [(torch.zeros(ROWS, HEADS, SLOTS, d), torch.zeros(ROWS, HEADS, SLOTS, d)) for _ in range(LAYERS)]

    def step(tok, pos, slot, bias):  # tok, pos (A,); slot (1,) long; bias (A, 1, 1, SLOTS)
        x = (F.embedding(tok, wte) + F.embedding(pos, wpe))[:, None]  # (A, 1, C)
        for w, (kc, vc) in zip(layers, caches):
            q, k, v = F.linear(F.layer_norm(x, (c,)).to(dtype), *w["qkv"]).float().split(c, -1)  # (A, 1, C) each
            q, k, v = (z.view(ROWS, 1, HEADS, d).transpose(1, 2) for z in (q, k, v))  # (A, H, 1, D)
            kc.index_copy_(2, slot, k)
            vc.index_copy_(2, slot, v)
            att = torch.softmax(q @ kc.transpose(-1, -2) * d**-0.5 + bias, -1)  # (A, H, 1, SLOTS)
            a = (att @ vc).transpose(1, 2).reshape(ROWS, 1, c).to(dtype)  # (A, 1, C)
            x = x + F.linear(a, *w["proj"]).float()
            h = F.gelu(F.linear(F.layer_norm(x, (c,)).to(dtype), *w["fc"]), approximate="tanh")  # (A, 1, 4C)
            x = x + F.linear(h, *w["out"]).float()
        return F.linear(F.layer_norm(x[:, 0], (c,)).to(dtype), head).float()  # (A, V)

    return step


def per_step(step, n: int = NEW) -> float:
    """Seconds per step over `n` decode steps after a 92-token prompt."""
    tok, bias = torch.randint(0, VOCAB, (ROWS,)), torch.zeros(ROWS, 1, 1, SLOTS)
    t0 = time.perf_counter()
    for i in range(n):
        bias[..., PROMPT + i + 1:] = float("-inf")
        bias[..., : PROMPT + i + 1] = 0.0
        tok = step(tok, torch.full((ROWS,), PROMPT + i), torch.tensor([PROMPT + i]), bias).argmax(-1)
    return (time.perf_counter() - t0) / n


def main() -> None:
    args = setup()
    print(f"torch {torch.__version__}, {args.threads} thread(s); small GPT-2 decode step, {ROWS} rows, best of {args.reps}")
    for dtype in (torch.float32, torch.bfloat16):
        step = make_step(dtype)
        with torch.inference_mode():
            per_step(step, 5)
            eager = min(per_step(step) for _ in range(args.reps))
            t0 = time.perf_counter()
            compiled = torch.compile(step, dynamic=False)
            per_step(compiled, 3)
            compile_s = time.perf_counter() - t0
            comp = min(per_step(compiled) for _ in range(args.reps))
        name = str(dtype).replace("torch.", "")
        print(f"{name:8s}: eager {eager * 1e3:5.2f} ms/step  compiled {comp * 1e3:5.2f} ms/step  "
              f"speed-up {eager / comp:4.2f}x; compile {compile_s:.0f} s", flush=True)


if __name__ == "__main__":
    main()
