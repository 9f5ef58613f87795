"""ARC: de-augment predictions per original task, vote across augmentations, pass@k.

Follows the official ARC evaluators (sapientinc/HRM `arc_eval`, TRM `evaluators/arc.py`):
each test example's identifier names its augmentation, `<task>_t<tid>_<colour map>` (HRM)
or `<task>|||t<tid>|||<colour map>` (TRM); the predicted and input grids are decoded
(largest EOS-free top-left rectangle) and mapped back with the inverse colour map and
inverse dihedral transform; predictions are grouped per original task and de-augmented
input grid, counted, and ranked by (votes, mean sigmoid(q_halt)) descending, ties in the
order first seen. pass@k for one test input: the label is among the top k. The top 2 are
the attempts of TRM's `submission.json` (padded with the first).

Reference answers: with TRM's `test_puzzles.json` (`test_puzzles=`), as TRM: its tasks and
test pairs, so a test input without predictions fails. Without it (HRM's builders write
none), the tasks and test inputs seen in the predictions, labels de-augmented from the
dataset. Departure (stricter, as our issue asks): `pass@k` counts a task only when *all*
its test inputs pass; the official fractional score (mean over a task's test inputs,
TRM's `ARC/pass@k`) is reported as `pass@k_fractional`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from tinyreason.errors import UserError
from tinyreason.puzzles.arc import decode_grid, parse_aug_name, parse_grid, undo_augment_grid


def _grid_key(grid: np.ndarray) -> str:
    return hashlib.sha256(bytes(grid.shape) + np.ascontiguousarray(grid, dtype=np.uint8).tobytes()).hexdigest()[:16]


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def collect_votes(names: Sequence[str], inputs: np.ndarray, predictions: np.ndarray, labels: np.ndarray, q_halt_logits: np.ndarray) -> dict[str, dict[str, dict]]:
    """task -> de-augmented input key -> {"label": key, "votes": {pred key: [count, sum sigmoid(q)]},
    "grids": {pred key: grid}}, in the order first seen."""
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
    return tasks


def reference_slots(tasks: dict[str, dict[str, dict]], test_puzzles: dict[str, dict]) -> dict[str, list[dict]]:
    """Per task of `test_puzzles` (TRM's test_puzzles.json) its test pairs in order, each with the
    votes collected for its input (none if it got no prediction) and the label from the file."""
    out = {}
    for task, puzzle in test_puzzles.items():
        slots = []
        for i, pair in enumerate(puzzle.get("test", []) if isinstance(puzzle, dict) else []):
            where = f"test_puzzles.json {task} test[{i}]"
            if not isinstance(pair, dict) or "input" not in pair or "output" not in pair:
                raise UserError(f"{where}: needs 'input' and 'output'")
            seen = tasks.get(task, {}).get(_grid_key(parse_grid(pair["input"], where + ".input")), {"votes": {}, "grids": {}})
            slots.append({**seen, "label": _grid_key(parse_grid(pair["output"], where + ".output"))})
        if not slots:
            raise UserError(f"test_puzzles.json {task}: no test pairs")
        out[task] = slots
    return out


def arc_vote(
    names: Sequence[str],
    inputs: np.ndarray,
    predictions: np.ndarray,
    labels: np.ndarray,
    q_halt_logits: np.ndarray,
    pass_ks: Sequence[int] = (1, 2),
    attempts: int = 2,
    test_puzzles: dict[str, dict] | None = None,
) -> dict:
    """Vote over augmentations. names (N,) identifier names (either naming); inputs, predictions,
    labels (N, 900) tokens (labels as stored in the dataset, or with -100 for ignored cells);
    q (N,). `test_puzzles`: TRM's test_puzzles.json, the reference tasks and answers.

    Returns {"num_tasks", "pass@k", "pass@k_fractional", "per_task": [...], "submission":
    {task: [{"attempt_1": grid, ..., "attempt_<attempts>": grid} per test input with predictions]}}.
    """
    tasks = collect_votes(names, inputs, predictions, labels, q_halt_logits)
    if test_puzzles is None:
        reference = {task: list(tasks[task].values()) for task in sorted(tasks)}
    else:
        reference = reference_slots(tasks, test_puzzles)
    per_task, submission = [], {}
    totals = {k: 0.0 for k in pass_ks}
    fractional = {k: 0.0 for k in pass_ks}
    for task, slots in reference.items():
        passes = {k: [] for k in pass_ks}
        tests, submission[task] = [], []
        for slot in slots:
            ranked = sorted(slot["votes"].items(), key=lambda kv: (kv[1][0], kv[1][1] / kv[1][0]), reverse=True)
            for k in pass_ks:
                passes[k].append(any(h == slot["label"] for h, _ in ranked[:k]))
            grids = [slot["grids"][h].tolist() for h, _ in ranked[:attempts]]
            tests.append({
                "candidates": len(ranked),
                "top_votes": [(c, round(s / c, 4)) for _, (c, s) in ranked[:attempts]],
                "attempts": grids,
                "correct_rank": next((i + 1 for i, (h, _) in enumerate(ranked) if h == slot["label"]), None),
            })
            if grids:
                grids += [grids[0]] * (attempts - len(grids))
                submission[task].append({f"attempt_{i + 1}": g for i, g in enumerate(grids)})
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
    out["submission"] = submission
    return out
