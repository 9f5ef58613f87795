"""The sampler's fp32 decode step: per PyTorch op vs one C call per token (`kernels.Step`),
and its plain-case draw in PyTorch ops vs C (`kernels.sample_rows`).

Whole rollouts (`sampler.sample`, 84 new tokens, G=8, random models with EOS reachable only by
chance) of the small model (4 x 256, 2 prompts = 16 rows, 64-token vocabulary) and GPT-2 124M
(12 x 768, 1 prompt = 8 rows, 50257-token head), fp32 at one torch thread, with the malloc
setting `chess grpo` uses (`kernels.keep_freed_memory`), the sides interleaved:
- "oneDNN ops": the per-op path on oneDNN's packed linears (the default before the step on AVX-512),
- "C ops": the per-op path on the C linears (the default before the step on AVX2),
- "C step": every decode token in one `decode_step` call (same C linears and attention kernel).
Then one draw of the next tokens: PyTorch ops vs `sample_rows` (whole rollouts are too noisy to
show its few ms). Prints best times and ratios. Run it under `make test-avx2`'s ISA caps
(ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2) to see an AVX2 CPU's
choice on an AVX-512 one (the C kernels are compiled for the host either way).

    .venv/bin/python benchmarks/decode_step.py [--repeats 5] [--models small,124m]
"""

from __future__ import annotations

import argparse
import time

import torch

from tinyreason import kernels
from tinyreason.lm import sampler
from tinyreason.lm.model import random_model

MODELS = {"small": (256, 4, 64, 2), "124m": (768, 12, 50257, 1)}  # width, layers, vocab, prompts
SIDES = {"oneDNN ops": dict(decode_step=False, decode_linear=False), "C ops": dict(decode_step=False, decode_linear=True),
         "C step": dict(decode_step=True, decode_linear=True)}


def rollouts(model, prompts, sides: dict[str, dict], repeats: int) -> dict[str, float]:
    """Best seconds of an 84-token rollout under each side's `kernels.FORCED` choices, interleaved
    (a short rollout first on each side: packing, caches); the flags are then reset."""
    names = {k for flags in sides.values() for k in flags}
    default = {k: kernels.FORCED.get(k) for k in names}
    gen = torch.Generator().manual_seed(0)
    times = {side: [] for side in sides}
    for _ in range(repeats):
        for side, flags in sides.items():
            for k, v in flags.items():
                kernels.FORCED[k] = v
            sampler.sample(model, prompts, 8, 4, generator=gen)
            t0 = time.perf_counter()
            sampler.sample(model, prompts, 8, 84, generator=gen)
            times[side].append(time.perf_counter() - t0)
    for k, v in default.items():
        kernels.FORCED.pop(k) if v is None else kernels.FORCED.update({k: v})
    return {side: min(ts) for side, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7, help="rollouts per side (124M: at most 3)")
    ap.add_argument("--models", default="small,124m")
    args = ap.parse_args()
    torch.set_num_threads(1)
    kernels.keep_freed_memory()  # as `chess grpo` sets on CPU: without it every step's fresh tensors fault in pages
    if not kernels.compiled():
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
        draw(16 if name == "small" else 8, vocab)


def draw(rows: int, vocab: int) -> None:
    """One plain-case draw (`sampler._pick`, T=1, no top-k/top-p) from (rows, vocab) logits: the
    PyTorch ops vs `sample_rows`, best of 5 interleaved means. A rollout makes one per token."""
    logits, gen = torch.randn(rows, vocab), torch.Generator().manual_seed(0)
    n = 2000 if vocab < 1000 else 200
    best = {}
    for _ in range(5):
        for on in (False, True):
            kernels.FORCED["sample_rows"] = on
            t0 = time.perf_counter()
            for _ in range(n):
                sampler._pick(logits, 1.0, 0, 1.0, gen)
            best[on] = min(best.get(on, 1e9), (time.perf_counter() - t0) / n)
    kernels.FORCED.pop("sample_rows")
    print(f"    draw ({rows}, {vocab}): PyTorch ops {best[False] * 1e6:7.1f} us  C {best[True] * 1e6:7.1f} us  "
          f"{best[False] / best[True]:4.2f}x  (84 tokens: {(best[False] - best[True]) * 84e3:.1f} ms less)", flush=True)


if __name__ == "__main__":
    main()
