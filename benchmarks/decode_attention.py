"""One layer's decode attention in the sampler: PyTorch ops vs the C kernel (`tinyreason.kernels`).

Both do the same work per call: write the step's keys/values into the generated-token cache
and attend from every row's query to its group's prompt K/V (shared per group) and to its own
generated K/V, for GRPO rollout shapes: small (16 rows = 2 prompts x G=8, 4 heads) and 124M
(8 rows = 1 prompt x 8, 12 heads), 92 prompt tokens, head size 64, fp32 (the sampler's CPU
KV cache dtype, bf16 weights included). Prints µs per call at several decode positions and the
ratio. Then the whole rollout (`sampler.sample`, random small model, 2 prompts x G=8 x 84 new
tokens) with the kernel on and off, interleaved.

    .venv/bin/python benchmarks/decode_attention.py [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch
from linear_kernels import timed

from tinyreason import kernels
from tinyreason.lm import sampler
from tinyreason.lm.model import random_model
from tinyreason.lm.shared_prefix import SharedPrefix


def best_of_5(fn, n: int) -> float:
    """Fastest of five mean times over n calls (µs-scale calls: the other tenants' noise is one-sided)."""
    return min(timed(fn, n) for _ in range(5))


def layer_calls(b: int, g: int, h: int, p: int = 92, d: int = 64, t_new: int = 84, n: int = 200) -> None:
    a, c = b * g, h * d
    torch.manual_seed(0)
    kv = [(torch.randn(b, h, p, d), torch.randn(b, h, p, d))]
    prefix = SharedPrefix(kv, torch.ones(b, p, dtype=torch.long), g)
    prefix.use_kernel()  # the prompt keys also in the kernel's layout; `attend` reads the plain ones
    kc, vc = torch.randn(a, h, t_new, d), torch.randn(a, h, t_new, d)
    kct = kernels.key_tiles(kc)  # (A, H, T16 / 16, D, 16): the kernel's generated-key layout
    qkv = torch.randn(a, 3 * c)
    for t in (0, 41, 83):
        def plain():
            q, k, v = (z.view(a, 1, h, d).transpose(1, 2) for z in qkv.view(a, 1, 3 * c).split(c, dim=-1))
            kc[:, :, t:t + 1] = k
            vc[:, :, t:t + 1] = v
            return prefix.attend(0, q, kc[:, :, :t + 1], vc[:, :, :t + 1], 0.125).transpose(1, 2).reshape(a, 1, c)

        def fused():
            return prefix.attend_fused(0, qkv, kct, vc, t, 0.125)

        torch.testing.assert_close(fused(), plain().view(a, c), atol=1e-5, rtol=1e-5)
        tp, tf = best_of_5(plain, n), best_of_5(fused, n)
        print(f"  {a:2d} rows x {h:2d} heads, position {t:2d}: PyTorch ops {tp * 1e6:7.1f} µs  C kernel {tf * 1e6:6.1f} µs  "
              f"{tp / tf:5.2f}x", flush=True)


def rollouts_on_off(model, prompts, flag: str, dtype: torch.dtype, repeats: int, fixed=None) -> tuple[float, float]:
    """Best seconds of an 84-token rollout (G=8) with `kernels.FORCED[flag]` True and False,
    interleaved; a short rollout first on each side (packing, caches). `fixed`: other
    `kernels.FORCED` choices set alike on both sides. The choices are then reset."""
    gen = torch.Generator().manual_seed(0)
    times = {True: [], False: []}
    fixed = {"decode_step": False, **(fixed or {})}  # by default the per-op path, where one flag swaps one kernel
    default = {k: kernels.FORCED.get(k) for k in (flag, *fixed)}
    for k, v in fixed.items():
        kernels.FORCED[k] = v
    for _ in range(repeats):
        for on in (True, False):
            kernels.FORCED[flag] = on
            sampler.sample(model, prompts, 8, 4, dtype=dtype, generator=gen)
            t0 = time.perf_counter()
            sampler.sample(model, prompts, 8, 84, dtype=dtype, generator=gen)
            times[on].append(time.perf_counter() - t0)
    for k, v in default.items():
        kernels.FORCED.pop(k) if v is None else kernels.FORCED.update({k: v})
    return min(times[True]), min(times[False])


def rollout(repeats: int) -> None:
    model = random_model(None, seed=0, vocab_size=128, n_layer=4, n_embd=256, n_head=4, n_positions=1024).eval()
    prompts = [list(range(1, 93)), list(range(3, 95))]
    for dtype in (torch.float32, torch.bfloat16):
        on, off = rollouts_on_off(model, prompts, "decode_attention", dtype, repeats)
        print(f"  small model rollout (16 rows x 84 tokens), {str(dtype)[6:]}: PyTorch ops {off * 1e3:6.1f} ms  "
              f"C kernel {on * 1e3:6.1f} ms  {off / on:5.2f}x (best of {repeats})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not kernels.compiled():
        raise SystemExit("the C kernel did not compile here (no C compiler?): nothing to compare")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); one layer's decode attention + cache write")
    layer_calls(2, 8, 4)
    layer_calls(1, 8, 12)
    rollout(args.repeats)


if __name__ == "__main__":
    main()
