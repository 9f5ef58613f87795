"""Per-example and aggregate HRM evaluation metrics, on plain arrays.

Official definitions (sapientinc/HRM `ACTLossHead` + `pretrain.evaluate`): an example counts
when it has at least one labelled token (batch padding rows have none); `accuracy` is the
mean over examples of the per-example token accuracy; `exact_accuracy` the fraction with
every labelled token right; `q_halt_accuracy` the fraction where (q_halt_logit >= 0) equals
exactness; `steps` the mean ACT steps; `lm_loss` the mean of per-example mean token loss;
`q_halt_loss` the mean BCE of q_halt against exactness. The official evaluator's q_halt_loss
also sums BCE(q_halt, 1) over the padding rows of a short last batch (its loss assumes full
batches), so it depends on the batch size; that figure is `q_halt_loss_official`.

Our additions, defined here once:
- `solve_rate`: fraction accepted by the puzzle verifier (a different valid sudoku counts).
- `stable_step`: first ACT step from which the labelled-token prediction stays equal to the
  answer finally given. `step_efficiency` = mean over examples of stable_step / steps_used:
  the share of the ACT steps spent that were needed for the same answer (1.0 = no wasted
  step; with fixed halting, steps_used = halt_max_steps).
- Calibration of the halting head: `q_halt_precision` = P(exact | q_halt > 0),
  `q_halt_npv` = P(not exact | q_halt <= 0), `q_halt_ece` = expected calibration error of
  sigmoid(q_halt) as the probability of an exact answer (10 equal-width bins).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from tinyreason.hrm.losses import IGNORE_LABEL_ID, token_cross_entropy


def example_metrics(
    logits: torch.Tensor,
    labels: torch.Tensor,
    q_halt_logits: torch.Tensor,
    loss_type: str = "stablemax_cross_entropy",
) -> dict[str, np.ndarray]:
    """Per-example metrics of final-step outputs. logits (N, L, V), labels (N, L) with -100."""
    logits = torch.as_tensor(logits)
    labels = torch.as_tensor(labels).long()
    q = torch.as_tensor(q_halt_logits).double()  # (N,)
    mask = labels != IGNORE_LABEL_ID  # (N, L)
    n_labels = mask.sum(-1)  # (N,)
    preds = logits.argmax(-1)  # (N, L)
    correct = (mask & (preds == labels)).sum(-1)  # (N,)
    exact = (correct == n_labels) & (n_labels > 0)
    divisor = n_labels.clamp_min(1)
    lm = token_cross_entropy(logits, labels, loss_type).double().sum(-1) / divisor  # (N,)
    q_loss = torch.nn.functional.binary_cross_entropy_with_logits(q, exact.double(), reduction="none")
    return {
        "n_labels": n_labels.numpy(),
        "accuracy": (correct.double() / divisor).numpy(),
        "exact": exact.numpy(),
        "lm_loss": lm.numpy(),
        "q_halt_loss": q_loss.numpy(),
        "q_halt_right": ((q >= 0) == exact).numpy(),
        "predictions": preds.numpy(),
    }


def stable_step(step_predictions: np.ndarray, labels: np.ndarray, steps_used: np.ndarray) -> np.ndarray:
    """First 1-based ACT step from which the prediction on labelled tokens equals the answer given.

    step_predictions (S, N, L): argmax after each step run (rows that halted early repeat their
    answer); labels (N, L) with -100; steps_used (N,) the step whose prediction was the answer.
    """
    preds = np.asarray(step_predictions)
    S, N, _ = preds.shape
    steps_used = np.asarray(steps_used).astype(np.int64)
    mask = np.asarray(labels) != IGNORE_LABEL_ID  # (N, L)
    final = preds[np.clip(steps_used - 1, 0, S - 1), np.arange(N)]  # (N, L)
    same = np.all((preds == final[None]) | ~mask[None], axis=-1)  # (S, N)
    out = steps_used.copy()
    alive = np.ones(N, dtype=bool)
    for s in range(S, 0, -1):  # walk back from the answer step while the answer is unchanged
        before = s < steps_used
        out[alive & before & same[s - 1]] = s
        alive &= ~(before & ~same[s - 1])
    return np.maximum(out, 1)


def calibration(q_halt_logits: np.ndarray, exact: np.ndarray, bins: int = 10) -> dict[str, float]:
    """How far sigmoid(q_halt) is from the exact-answer rate, and how often q_halt > 0 is right."""
    q = np.asarray(q_halt_logits, dtype=np.float64)
    ok = np.asarray(exact, dtype=bool)
    p = 1.0 / (1.0 + np.exp(-q))
    idx = np.minimum((p * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            ece += sel.mean() * abs(p[sel].mean() - ok[sel].mean())
    pos = q > 0
    return {
        "q_halt_positive_rate": float(pos.mean()) if len(q) else math.nan,
        "q_halt_precision": float(ok[pos].mean()) if pos.any() else math.nan,
        "q_halt_npv": float((~ok[~pos]).mean()) if (~pos).any() else math.nan,
        "q_halt_ece": float(ece),
    }


def _stats(prefix: str, x: np.ndarray) -> dict[str, float]:
    x = np.asarray(x, dtype=np.float64)
    if not len(x):
        return {}
    return {f"{prefix}_mean": float(x.mean()), f"{prefix}_std": float(x.std()), f"{prefix}_min": float(x.min()), f"{prefix}_max": float(x.max())}


def aggregate(per: dict[str, np.ndarray], halt_max_steps: int | None = None) -> dict[str, float]:
    """Aggregate metrics over examples with labels (official names plus ours, see module doc).

    `per` holds arrays of equal length N: accuracy, exact, lm_loss, q_halt_loss, q_halt_right,
    n_labels, steps, q_halt_logits, q_continue_logits and optionally solved, stable_step, time.
    """
    valid = np.asarray(per["n_labels"]) > 0
    v = {k: np.asarray(a)[valid] for k, a in per.items() if np.ndim(a) == 1 and len(a) == len(valid)}
    n = int(valid.sum())
    mean = lambda a: float(np.mean(a)) if n else math.nan  # noqa: E731
    out: dict[str, float] = {
        "total_puzzles": n,
        "count": n,
        "accuracy": mean(v["accuracy"]),
        "average_accuracy": mean(v["accuracy"]),
        "exact_accuracy": mean(v["exact"]),
        "solve_rate": mean(v["solved"]) if "solved" in v else mean(v["exact"]),
        "q_halt_accuracy": mean(v["q_halt_right"]),
        "steps": mean(v["steps"]),
        "average_steps": mean(v["steps"]),
        "lm_loss": mean(v["lm_loss"]),
        "q_halt_loss": mean(v["q_halt_loss"]),
    }
    if "pad_q_halt_loss" in v:  # the official reduction, which also counts batch padding rows
        out["q_halt_loss_official"] = mean(v["q_halt_loss"] + v["pad_q_halt_loss"])
    if "solved" in v:
        out["solved_not_exact"] = int(np.sum(v["solved"] & ~v["exact"].astype(bool)))
    if "stable_step" in v:
        out["average_stable_step"] = mean(v["stable_step"])
        out["step_efficiency"] = mean(v["stable_step"] / np.maximum(v["steps"], 1))
    if halt_max_steps:
        out["halt_max_steps"] = int(halt_max_steps)
        out["steps_fraction_of_max"] = mean(v["steps"] / halt_max_steps)
    out.update(_stats("q_halt", v["q_halt_logits"]))
    out.update(_stats("q_continue", v["q_continue_logits"]))
    out.update(calibration(v["q_halt_logits"], v["exact"]))
    if "time" in v:
        total = float(np.sum(v["time"]))
        out["time_per_puzzle"] = total / n if n else math.nan
        out["puzzles_per_second"] = n / total if total > 0 else math.nan
    return out
