"""Per-step GRPO metrics (gathered from every rank) and logged samples (trackers: tinyreason.telemetry)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from tinyreason.lm import mfu
from tinyreason.runlog import RunDir


def step_metrics(gathered: list[dict], step: int, lr: float, grad_norm: float, times: dict[str, float],
                 n_params: int, n_head: int, peak: float, device, beta: float, num_iterations: int,
                 task_names: Sequence[str]) -> dict:
    """One metrics.jsonl record from every rank's `local` dict (see grpo_train) and the step's times.

    Per task (in `task_names` order) the reward's mean and std and each reward function's;
    a function's None values (does not apply) are left out of its mean.

    FLOPs count the real tokens actually run: each prompt once per group (the sampler
    prefills it once, the update and reference pass compute it once) and without the LM
    head (`n_head` parameters; only completion positions get logits), each completion token
    with all `n_params`; 2 FLOPs per parameter and token for inference (rollout, reference
    model), 6 for training. MFU is against the peak of the run's dtype, capped at 1.
    """
    rewards = np.array([r for d in gathered for r in d["rewards"]], dtype=np.float64)
    tasks = [x for d in gathered for x in d["tasks"]]
    parts = [p for d in gathered for p in d["parts"]]
    lengths = np.array([x for d in gathered for x in d["lengths"]], dtype=np.float64)
    sums = {k: sum(d["sums"][k] for d in gathered) for k in gathered[0]["sums"]}
    tokens = max(sums["tokens"], 1.0)
    world = len(gathered)
    gen_tokens = float(lengths.sum())
    prompt_tokens = sum(d["prompt_tokens"] for d in gathered)
    upd_tokens = gen_tokens + prompt_tokens
    t_roll, t_upd, t_step = times["rollout"], times["update"], times["step"]
    pass_flops = n_params * gen_tokens + (n_params - n_head) * prompt_tokens  # parameter x token products of one pass
    rollout_flops = 2 * pass_flops
    ref_flops = 2 * pass_flops if beta else 0.0
    train_flops = 6 * pass_flops * num_iterations
    rec = {
        "step": step,
        "loss": sums["loss"] / world,
        "num_completions": len(rewards),
        "reward_mean": float(rewards.mean()),
        "reward_std": _std(rewards),
        "frac_zero_std": float(np.mean([z for d in gathered for z in d["zero_std"]])),
        "kl": sums["kl"] / tokens,
        "clip_low": sums["clip_low"] / tokens,
        "clip_high": sums["clip_high"] / tokens,
        "clip_ratio": (sums["clip_low"] + sums["clip_high"]) / tokens,
        "entropy": sums["entropy"] / tokens,
        "completion_len_mean": float(lengths.mean()),
        "completion_len_min": float(lengths.min()),
        "completion_len_max": float(lengths.max()),
        "frac_truncated": float(np.mean([x for d in gathered for x in d["truncated"]])),
        "grad_norm": grad_norm,
        "lr": lr,
        "rollout_tok_s": gen_tokens / max(t_roll, 1e-9),
        "update_tok_s": upd_tokens * num_iterations / max(t_upd, 1e-9),
        **{f"time_{k}": v for k, v in times.items()},
        "peak_mem_mb": mfu.peak_memory_mb(device),
        "mfu_rollout": mfu.mfu(rollout_flops, t_roll * world, peak),
        "mfu_update": mfu.mfu(train_flops, t_upd * world, peak),
        "mfu": mfu.mfu(rollout_flops + ref_flops + train_flops, t_step * world, peak),
    }
    for task in task_names:
        idx = [i for i, x in enumerate(tasks) if x == task]
        if not idx:
            continue
        rec[f"reward/{task}/mean"] = float(rewards[idx].mean())
        rec[f"reward/{task}/std"] = _std(rewards[idx])
        for name in parts[idx[0]]:
            vals = np.array([parts[i][name] for i in idx if parts[i][name] is not None], dtype=np.float64)
            if not len(vals):
                continue
            rec[f"reward/{task}/{name}"] = float(vals.mean())
            rec[f"reward/{task}/{name}/std"] = _std(vals)
    return rec


def _std(x: np.ndarray) -> float:
    return float(x.std(ddof=1)) if len(x) > 1 else 0.0


def log_samples(run: RunDir, step: int, batch, completions, rewards, parts, adv, g: int, k: int) -> None:
    """Append `k` completions spread over the batch, with prompt, reference, reward and advantage."""
    with open(run.path / "samples.jsonl", "a", encoding="utf-8") as f:
        for r in range(0, len(completions), max(1, len(completions) // max(1, k)))[:k]:
            s = batch[r // g]
            f.write(json.dumps({"step": step, "task": s.task, "prompt": s.prompt, "completion": completions[r],
                                "reference": s.completion, "reward": rewards[r], "advantage": adv[r],
                                "components": parts[r]}) + "\n")
