"""The GRPO update's completion attention: `grouped`'s SDPA route vs the C kernel (`tinyreason.kernels.completion_attention`).

Per layer at GRPO shapes (92-token prompts, 83 fed completion tokens, G=8): the small model
(2 prompts, 4 heads) and GPT-2 124M (1 prompt, 12 heads), head size 64, fp32. The SDPA route
is what `grouped.grouped_logprobs` runs without the kernel: prompt keys and values repeated
per row, concatenated with the row's own, SDPA with the (N, 1, T, P+T) mask (the reference
model's pass); with the rollout's kept output, `replay.kept_attention` (SDPA's flash backward).
Times: forward (no grad), kept output + backward, forward + backward; medians of 20; the
gradient reaches qkv on both sides.

    .venv/bin/python benchmarks/group_attention.py [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from tinyreason import kernels
from tinyreason.lm.replay import kept_attention
from tinyreason.lm.shared_prefix import prompt_starts

SHAPES = {"small": (2, 8, 92, 83, 4), "124m": (1, 8, 92, 83, 12)}  # prompts, G, P, T', heads


def median_time(f, n: int = 20) -> float:
    for _ in range(3):
        f()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return sorted(ts)[n // 2]


def heads(z: torch.Tensor, rows: int, length: int, h: int) -> torch.Tensor:
    return z.reshape(rows, length, h, -1).transpose(1, 2)  # (rows, H, length, D)


def compare(name: str, scale: float = 0.125) -> None:
    b, g, p, t, h = SHAPES[name]
    c, n = 64 * h, b * g
    pm = torch.ones(b, p, dtype=torch.long)
    pm[0, :3] = 0  # left padding
    qkv = torch.randn(b * p + n * t, 3 * c, requires_grad=True)  # (B*P + N*T, 3C)
    starts = prompt_starts(pm)
    ar = torch.arange(t)
    mask = torch.cat([pm.bool().repeat_interleave(g, 0)[:, None, None, :].expand(n, 1, t, p),
                      (ar[None, :] <= ar[:, None]).expand(n, 1, t, t)], -1)  # (N, 1, T, P+T)
    bias = torch.zeros(mask.shape).masked_fill_(~mask, float("-inf"))

    def route(kept=None):  # grouped.py without the kernel
        q, k, v = qkv.split(c, -1)
        kp, vp = (heads(z[: b * p], b, p, h) for z in (k, v))
        qc, kc, vc = (heads(z[b * p:], n, t, h) for z in (q, k, v))
        k_all = torch.cat([kp.repeat_interleave(g, 0), kc], 2)
        v_all = torch.cat([vp.repeat_interleave(g, 0), vc], 2)
        if kept is None:
            ac = F.scaled_dot_product_attention(qc, k_all, v_all, attn_mask=mask, scale=scale)
        else:
            ac = kept_attention(qc, k_all, v_all, bias, scale, *kept)
        return ac.transpose(1, 2).reshape(n * t, c)

    def kernel(kept=None):
        return kernels.completion_attention(qkv, starts, b * p, p, g, t, h, scale, kept)

    with torch.no_grad():
        kept = (route().view(n, t, c), torch.empty(n, t, h))
        kernels.c_library().group_attention_fwd(qkv.data_ptr(), n, t, h, b * p, p, g, starts.data_ptr(), scale,
                                               kept[0].data_ptr(), t * c, kept[1].data_ptr(), t * h)  # its lse
        fwd = [median_time(route), median_time(kernel)]
    gy = torch.randn(n * t, c)
    back = [median_time(lambda f=f: torch.autograd.grad(f(kept), qkv, gy)) for f in (route, kernel)]
    both = [median_time(lambda f=f: torch.autograd.grad(f(), qkv, gy)) for f in (route, kernel)]
    print(f"  {name} ({b} x G={g}, P={p}, T={t}, {h} heads), per layer: "
          + "  ".join(f"{label} SDPA {r * 1e3:6.2f} ms C {k * 1e3:6.2f} ms {r / k:4.2f}x"
                      for label, (r, k) in (("forward", fwd), ("kept+backward", back), ("fwd+bwd", both))), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not kernels.compiled():
        raise SystemExit("the C kernels did not compile here (no C compiler?): nothing to compare")
    cap = torch.backends.cpu.get_cpu_capability()
    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU capability {cap}")
    for name in SHAPES:
        compare(name)


if __name__ == "__main__":
    main()
