"""The official HRM ACT loss: stablemax/softmax cross entropy, Q-halt BCE, bootstrapped Q-continue.

Mirrors `models/losses.py::ACTLossHead` of sapientinc/HRM (same reductions, so the numbers
match the official trainer and evaluator): per-sequence mean token loss summed over the
batch, Q-halt BCE against "whole sequence right", Q-continue BCE against the model's own
bootstrapped target (training mode only), total = lm + 0.5 * (q_halt + q_continue).
Labels use -100 for "ignore"; datasets store their own `ignore_label_id` (0 in the official
builders), mapped with `map_ignore_labels` exactly as the official `PuzzleDataset` does.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

IGNORE_LABEL_ID = -100
LossType = Literal["stablemax_cross_entropy", "softmax_cross_entropy"]


def map_ignore_labels(labels: np.ndarray, ignore_label_id: int | None) -> np.ndarray:
    """Dataset labels -> training labels: `ignore_label_id` becomes -100 (copy, int64)."""
    out = np.asarray(labels).astype(np.int64, copy=True)
    if ignore_label_id is not None:
        out[out == ignore_label_id] = IGNORE_LABEL_ID
    return out


def _s(x: torch.Tensor, epsilon: float = 1e-30) -> torch.Tensor:
    """Stablemax's s(x): x+1 for x>=0, 1/(1-x) below (Prieto et al. 2025, as official)."""
    return torch.where(x < 0, 1 / (1 - x + epsilon), x + 1)


def log_stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    s_x = _s(x)
    return torch.log(s_x / torch.sum(s_x, dim=dim, keepdim=True))


def log_probs(logits: torch.Tensor, loss_type: str) -> torch.Tensor:
    """Log-probabilities under the normaliser the model was trained with (float64 for stablemax)."""
    if loss_type == "stablemax_cross_entropy":
        return log_stablemax(logits.to(torch.float64), dim=-1)
    if loss_type == "softmax_cross_entropy":
        return torch.log_softmax(logits.to(torch.float32), dim=-1)
    raise ValueError(f"unknown loss_type {loss_type!r}")


def token_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, loss_type: str) -> torch.Tensor:
    """Per-token loss (B, L); 0 where labels == -100. logits (B, L, V), labels (B, L)."""
    valid = labels != IGNORE_LABEL_ID  # (B, L)
    if loss_type == "softmax_cross_entropy":
        flat = F.cross_entropy(
            logits.to(torch.float32).reshape(-1, logits.shape[-1]),
            labels.to(torch.long).reshape(-1),
            ignore_index=IGNORE_LABEL_ID,
            reduction="none",
        )
        return flat.view(labels.shape)
    lp = log_probs(logits, loss_type)  # (B, L, V) float64
    picked = torch.gather(lp, -1, torch.where(valid, labels, 0).long().unsqueeze(-1)).squeeze(-1)  # (B, L)
    return -torch.where(valid, picked, 0)


def act_loss(
    outputs: dict[str, torch.Tensor],
    labels: torch.Tensor,
    halted: torch.Tensor,
    steps: torch.Tensor,
    loss_type: str = "stablemax_cross_entropy",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and summed metrics of one ACT step, as official `ACTLossHead.forward`.

    outputs: logits (B, L, V), q_halt_logits (B,), q_continue_logits (B,), optional
    target_q_continue (B,). labels (B, L) with -100 ignored; halted, steps (B,) from the carry.
    Metrics are sums over halted rows with labels (divide by `count`); losses are batch sums.
    """
    logits = outputs["logits"]
    with torch.no_grad():
        mask = labels != IGNORE_LABEL_ID  # (B, L)
        loss_counts = mask.sum(-1)  # (B,)
        is_correct = mask & (torch.argmax(logits, dim=-1) == labels)
        seq_is_correct = is_correct.sum(-1) == loss_counts  # (B,)
        valid = halted & (loss_counts > 0)
        divisor = loss_counts.clamp_min(1).unsqueeze(-1)  # (B, 1)
        metrics = {
            "count": valid.sum(),
            "accuracy": torch.where(valid, (is_correct.float() / divisor).sum(-1), 0).sum(),
            "exact_accuracy": (valid & seq_is_correct).sum(),
            "q_halt_accuracy": (valid & ((outputs["q_halt_logits"] >= 0) == seq_is_correct)).sum(),
            "steps": torch.where(valid, steps, 0).sum(),
        }
    lm_loss = (token_cross_entropy(logits, labels, loss_type) / divisor).sum()
    q_halt_logits = outputs["q_halt_logits"]
    q_halt_loss = F.binary_cross_entropy_with_logits(q_halt_logits, seq_is_correct.to(q_halt_logits.dtype), reduction="sum")
    metrics["lm_loss"] = lm_loss.detach()
    metrics["q_halt_loss"] = q_halt_loss.detach()
    q_continue_loss: torch.Tensor | float = 0.0
    if "target_q_continue" in outputs:
        q_continue_loss = F.binary_cross_entropy_with_logits(
            outputs["q_continue_logits"], outputs["target_q_continue"].to(outputs["q_continue_logits"].dtype), reduction="sum"
        )
        metrics["q_continue_loss"] = q_continue_loss.detach()
    total = lm_loss + 0.5 * (q_halt_loss + q_continue_loss)
    return total, metrics
