"""The sampler's decode linears: oneDNN's packed GEMM vs the C kernel (`tinyreason.kernels`).

Per decode token, every block linear of every layer and the LM head, in model order (so the
weights stream from L3 or memory as in a rollout, not from a warm L2): the small model (4 x 256,
16 rows = 2 prompts x G=8, character vocabulary) and GPT-2 124M (12 x 768, 8 rows, 50257-token
head), fp32 at the given thread count. Then whole rollouts (`sampler.sample`, 84 new tokens)
with the C linears on and off, interleaved. Prints times and ratios (oneDNN / C).

    .venv/bin/python benchmarks/decode_linear.py [--threads 1] [--repeats 3] [--models small,124m]
"""

from __future__ import annotations

import argparse

import torch
from decode_attention import rollouts_on_off
from linear_kernels import timed

from tinyreason import kernels
from tinyreason.lm.cached_gpt2 import CachedGPT2
from tinyreason.lm.model import random_model

SHAPES = {"small": (16, 256, 4, 64), "124m": (8, 768, 12, 50257)}  # rows, width, layers, vocab


def per_token(name: str, reps: int) -> None:
    rows, c, n_layer, vocab = SHAPES[name]
    torch.manual_seed(0)
    shapes = [(3 * c, c), (c, c), (4 * c, c), (c, 4 * c)] * n_layer + [(vocab, c)]  # (out, in), model order
    weights = [(torch.randn(i, o).t() * 0.02, torch.randn(o) if o != vocab else None) for o, i in shapes]
    xs = {i: torch.randn(rows, i) for _, i in shapes}
    flop = 2 * rows * sum(o * i for o, i in shapes)
    sides = {"oneDNN": [(kernels.dnn_pack(w, rows), b, xs[w.shape[1]]) for w, b in weights],
             "C": [(kernels.Panels(w), b, xs[w.shape[1]]) for w, b in weights]}
    ref, got = (CachedGPT2.linear(sides[s][0][2], *sides[s][0][:2]) for s in sides)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    best = {}
    for side, packed in sides.items():
        def token():
            for w, b, x in packed:
                CachedGPT2.linear(x, w, b)
        best[side] = min(timed(token, reps) for _ in range(5))
    mb = sum(o * i for o, i in shapes) * 4 / 1e6
    print(f"  {name}: {rows} rows, {mb:.0f} MB of weights per token: oneDNN {best['oneDNN'] * 1e3:7.2f} ms "
          f"({mb / best['oneDNN'] / 1e3:4.1f} GB/s, {flop / best['oneDNN'] / 1e9:4.1f} GFLOP/s)  "
          f"C {best['C'] * 1e3:7.2f} ms ({mb / best['C'] / 1e3:4.1f} GB/s, {flop / best['C'] / 1e9:4.1f} GFLOP/s)  "
          f"{best['oneDNN'] / best['C']:4.2f}x", flush=True)


def rollout(name: str, repeats: int) -> None:
    rows, c, n_layer, vocab = SHAPES[name]
    model = random_model(None, seed=0, vocab_size=vocab, n_layer=n_layer, n_embd=c, n_head=c // 64,
                         n_positions=1024).eval()
    prompts = [[1 + (i + j) % 60 for i in range(70)] for j in range(rows // 8)]  # rows // 8 prompts x G=8
    for dtype in (torch.float32, torch.bfloat16):
        on, off = rollouts_on_off(model, prompts, "LINEAR", dtype, repeats)
        print(f"  {name} rollout ({rows} rows x 84 tokens), {str(dtype)[6:]}: oneDNN {off:6.3f} s  C {on:6.3f} s  "
              f"{off / on:4.2f}x (best of {repeats})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default="small,124m")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not kernels.choose.decode_linear("cpu"):
        print("note: the sampler would not pick the C linears here (several threads or no compiler)")
    if not kernels.compiled():
        raise SystemExit("the C kernels did not compile here (no C compiler?): nothing to compare")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}; one decode token's linears, fp32")
    models = args.models.split(",")
    for name in models:
        per_token(name, 20 if name == "small" else 2)
    for name in models:
        rollout(name, args.repeats if name == "small" else 1)


if __name__ == "__main__":
    main()
