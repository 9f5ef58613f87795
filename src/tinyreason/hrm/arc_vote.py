"""ARC: de-augment predictions per original task, vote across augmentations, pass@k.

Follows the official ARC evaluator (sapientinc/HRM `arc_eval`, TRM `evaluators/arc.py`):
each test example's identifier `<task>_t<tid>_<colour map>` names the augmentation; the
predicted and input grids are decoded (largest EOS-free top-left rectangle) and mapped back
with the inverse colour map and inverse dihedral transform; predictions are grouped per
original task and de-augmented input grid, counted, and ranked by (votes, mean
sigmoid(q_halt)) descending. pass@k for one test input: the label is among the top k.

Departure (stricter, as our issue asks): `pass@k` counts a task only when *all* its test
inputs pass; the official fractional score (mean over a task's test inputs) is reported
as `pass@k_fractional`. Labels come from the dataset itself (de-augmented), since the
official builder writes no `test_puzzles.json`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from tinyreason.puzzles.arc import decode_grid, parse_aug_name, undo_augment_grid


def _grid_key(grid: np.ndarray) -> str:
    return hashlib.sha256(bytes(grid.shape) + np.ascontiguousarray(grid, dtype=np.uint8).tobytes()).hexdigest()[:16]


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def arc_vote(
    names: Sequence[str],
    inputs: np.ndarray,
    predictions: np.ndarray,
    labels: np.ndarray,
    q_halt_logits: np.ndarray,
    pass_ks: Sequence[int] = (1, 2),
    attempts: int = 2,
) -> dict:
    """Vote over augmentations. names (N,) identifier names; inputs, predictions, labels (N, 900)
    tokens (labels as stored in the dataset, or with -100 for ignored cells); q (N,).

    Returns {"num_tasks", "pass@k", "pass@k_fractional", "per_task": [...]}.
    """
    labels = np.where(np.asarray(labels) < 0, 0, labels)
    tasks: dict[str, dict[str, dict]] = {}
    for name, inp, pred, lab, q in zip(names, inputs, predictions, labels, q_halt_logits):
        task, tid, cmap = parse_aug_name(str(name))
        inp_grid = undo_augment_grid(decode_grid(inp), tid, cmap)
        slot = tasks.setdefault(task, {}).setdefault(_grid_key(inp_grid), {"label": None, "votes": {}, "grids": {}})
        if slot["label"] is None:
            slot["label"] = _grid_key(undo_augment_grid(decode_grid(lab), tid, cmap))
        pred_grid = undo_augment_grid(decode_grid(pred), tid, cmap)
        key = _grid_key(pred_grid)
        vote = slot["votes"].setdefault(key, [0, 0.0])
        vote[0] += 1
        vote[1] += _sigmoid(float(q))
        slot["grids"][key] = pred_grid
    per_task = []
    totals = {k: 0.0 for k in pass_ks}
    fractional = {k: 0.0 for k in pass_ks}
    for task in sorted(tasks):
        passes = {k: [] for k in pass_ks}
        tests = []
        for slot in tasks[task].values():
            ranked = sorted(slot["votes"].items(), key=lambda kv: (kv[1][0], kv[1][1] / kv[1][0]), reverse=True)
            for k in pass_ks:
                passes[k].append(any(h == slot["label"] for h, _ in ranked[:k]))
            tests.append({
                "candidates": len(ranked),
                "top_votes": [(c, round(s / c, 4)) for _, (c, s) in ranked[:attempts]],
                "attempts": [slot["grids"][h].tolist() for h, _ in ranked[:attempts]],
                "correct_rank": next((i + 1 for i, (h, _) in enumerate(ranked) if h == slot["label"]), None),
            })
        row = {"task": task, "num_test_inputs": len(tests), "tests": tests}
        for k in pass_ks:
            row[f"pass@{k}"] = bool(all(passes[k]))
            totals[k] += all(passes[k])
            fractional[k] += float(np.mean(passes[k]))
        per_task.append(row)
    n = len(per_task)
    out: dict = {"num_tasks": n}
    for k in pass_ks:
        out[f"pass@{k}"] = totals[k] / n if n else float("nan")
        out[f"pass@{k}_fractional"] = fractional[k] / n if n else float("nan")
    out["per_task"] = per_task
    return out
