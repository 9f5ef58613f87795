"""The sampler's fp32 decode step: per PyTorch op vs one C call per token (`decode_kernel.Step`),
and its plain-case draw in PyTorch ops vs C (`decode_kernel.sample_rows`).

Whole rollouts (`sampler.sample`, 84 new tokens, G=8, random models with EOS reachable only by
chance) of the small model (4 x 256, 2 prompts = 16 rows, 64-token vocabulary) and GPT-2 124M
(12 x 768, 1 prompt = 8 rows, 50257-token head), fp32 at one torch thread, the sides interleaved:
- "oneDNN ops": the per-op path on oneDNN's packed linears (the default before the step on AVX-512),
- "C ops": the per-op path on the C linears (the default before the step on AVX2),
- "C step": every decode token in one `decode_step` call (same C linears and attention kernel).
Then the draw: rollouts with the default path, `SAMPLE` on and off. Prints best times and ratios.

    .venv/bin/python benchmarks/decode_step.py [--repeats 5] [--models small,124m]
"""

from __future__ import annotations

import argparse
import time

import torch

from tinyreason.lm import decode_kernel, sampler
from tinyreason.lm.model import random_model

MODELS = {"small": (256, 4, 64, 2), "124m": (768, 12, 50257, 1)}  # width, layers, vocab, prompts
SIDES = {"oneDNN ops": dict(STEP=False, LINEAR=False), "C ops": dict(STEP=False, LINEAR=True),
         "C step": dict(STEP=True, LINEAR=True)}


def rollouts(model, prompts, sides: dict[str, dict], repeats: int) -> dict[str, float]:
    """Best seconds of an 84-token rollout under each side's `decode_kernel` flags, interleaved
    (a short rollout first on each side: packing, caches); the flags are then reset."""
    names = {k for flags in sides.values() for k in flags}
    default = {k: getattr(decode_kernel, k) for k in names}
    gen = torch.Generator().manual_seed(0)
    times = {side: [] for side in sides}
    for _ in range(repeats):
        for side, flags in sides.items():
            for k, v in flags.items():
                setattr(decode_kernel, k, v)
            sampler.sample(model, prompts, 8, 4, generator=gen)
            t0 = time.perf_counter()
            sampler.sample(model, prompts, 8, 84, generator=gen)
            times[side].append(time.perf_counter() - t0)
    for k, v in default.items():
        setattr(decode_kernel, k, v)
    return {side: min(ts) for side, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5, help="rollouts per side (124M: at most 3)")
    ap.add_argument("--models", default="small,124m")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if not decode_kernel.available():
        raise SystemExit("the C kernels did not compile here (no C compiler?): nothing to compare")
    print(f"torch {torch.__version__}, 1 thread, CPU capability {torch.backends.cpu.get_cpu_capability()}; "
          "fp32 rollouts of 84 tokens, G=8, best of the interleaved repeats")
    for name in args.models.split(","):
        c, n_layer, vocab, n_prompts = MODELS[name]
        model = random_model(None, seed=0, vocab_size=vocab, n_layer=n_layer, n_embd=c, n_head=c // 64,
                             n_positions=1024).eval()
        prompts = [[1 + (i + 7 * j) % 60 for i in range(92)] for j in range(n_prompts)]
        reps = args.repeats if name == "small" else min(args.repeats, 3)
        best = rollouts(model, prompts, SIDES, reps)
        step = best["C step"]
        print(f"  {name}: " + "  ".join(f"{side} {t:6.3f} s" for side, t in best.items())
              + f"  | step vs oneDNN ops {best['oneDNN ops'] / step:4.2f}x, vs C ops {best['C ops'] / step:4.2f}x",
              flush=True)
        draw = rollouts(model, prompts, {"PyTorch draw": dict(SAMPLE=False), "C draw": dict(SAMPLE=True)}, reps)
        print(f"  {name}: PyTorch draw {draw['PyTorch draw']:6.3f} s  C draw {draw['C draw']:6.3f} s  "
              f"{draw['PyTorch draw'] / draw['C draw']:4.2f}x", flush=True)


if __name__ == "__main__":
    main()
