"""Optimizer pieces shared by the SFT and GRPO trainers: AdamW, LR schedule and gradient all-reduce."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from tinyreason import dist


def adamw(param_groups, **kwargs) -> torch.optim.AdamW:
    """torch's AdamW, on its fused kernel where every parameter allows it (floating point on CPU
    or CUDA), as the Hugging Face Trainer's default `adamw_torch_fused`: one pass over each
    tensor instead of about ten. GPT-2 124M on one CPU core: 0.07 s per step instead of 0.55 s.
    Same update rule and state layout, so checkpoints of either kind load into the other.

    The fused kernel writes the parameters without bumping their version counters (torch
    2.13), which is how the sampler sees that weights changed (its packed/bf16 copies would
    stay those of step 0: rollouts from a stale policy). A step post-hook bumps them."""
    groups = list(param_groups)
    params = [p for g in groups for p in (g["params"] if isinstance(g, dict) else [g])]
    fused = bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    opt = torch.optim.AdamW(groups, fused=fused or None, **kwargs)
    if fused:
        opt.register_step_post_hook(_bump_versions)
    return opt


def _bump_versions(opt: torch.optim.Optimizer, args, kwargs) -> None:
    """Mark every parameter as modified in place (version counter + 1)."""
    torch.autograd.graph.increment_version([p for g in opt.param_groups for p in g["params"]])


def lr_lambda(schedule: str, warmup_steps: int, max_steps: int, min_lr_ratio: float) -> Callable[[int], float]:
    """LR multiplier per scheduler step: linear warmup, then constant, linear or cosine decay to
    `min_lr_ratio` at `max_steps`."""
    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        frac = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
        decay = 1 - frac if schedule == "linear" else 0.5 * (1 + math.cos(math.pi * frac))
        return min_lr_ratio + (1 - min_lr_ratio) * decay
    return f


def allreduce_grads(params: list[torch.nn.Parameter]) -> None:
    """Average gradients over ranks in one flat bucket (no-op in one process).

    Done by hand instead of wrapping the model in DDP: the trainers run forward passes
    that are not the module's own (`grouped_logprobs`, the sampler), which DDP's
    forward hooks would not see."""
    if not torch.distributed.is_initialized():
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])  # (sum of numel,)
    dist.all_reduce_mean(flat)
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n
