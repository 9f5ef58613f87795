"""Batched evaluation of one HRM over a dataset split: per-example arrays, sharded under torchrun.

`run_eval` feeds the split in fixed-size batches (the last one padded, as the official test
loader), runs `inference.run_act`, scores every example (token/exact accuracy, losses, Q values,
ACT steps, answer-stable step, wall time) and checks answers with the puzzle verifier.
Under torchrun every rank takes its slice of each global batch (`iter_batches`) and the
per-example arrays are gathered, so totals equal a single-process run.
"""

from __future__ import annotations

import time
import numpy as np
import torch

from tinyreason import dist
from tinyreason.errors import UserError
from tinyreason.hrm.inference import run_act
from tinyreason.hrm.losses import log_probs, map_ignore_labels
from tinyreason.hrm.metrics import example_metrics, stable_step
from tinyreason.puzzles.dataset import PuzzleDatasetMetadata, SplitData, iter_batches
from tinyreason.puzzles.verify import guess_kind, verify_tokens
from tinyreason.runlog import console, progress

PER_EXAMPLE_KEYS = (
    "example_index", "n_labels", "accuracy", "exact", "solved", "lm_loss", "q_halt_loss", "q_halt_right",
    "steps", "q_halt_logits", "q_continue_logits", "stable_step", "time", "pad_q_halt_loss",
)


def detect_kind(meta: PuzzleDatasetMetadata) -> str:
    """Puzzle kind from the official encodings (sudoku 11/81, maze 6/N*N, ARC 12/900); "exact"
    (exact match only, no verifier) for any other dataset, with a note on the console."""
    try:
        return guess_kind(meta.vocab_size, meta.seq_len)
    except UserError:
        console.print(f"note: unknown puzzle kind (vocab {meta.vocab_size}, seq_len {meta.seq_len}): solved = exact match")
        return "exact"


def verify_rows(kind: str, inputs: np.ndarray, preds: np.ndarray, labels: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """Verifier verdict per row; `exact` kind (unknown puzzles) falls back to exact match.

    `labels` are dataset tokens (ignored cells as stored). An exact answer is always solved,
    so the verifier runs only on the others (a different valid sudoku, another shortest path).
    """
    if kind == "exact":
        return exact.copy()
    return np.array([bool(e) or bool(verify_tokens(kind, i, p, lab)) for i, p, lab, e in zip(inputs, preds, labels, exact)], dtype=bool)


def run_eval(
    model: torch.nn.Module,
    data: SplitData,
    *,
    loss_type: str = "stablemax_cross_entropy",
    kind: str = "auto",
    batch_size: int = 64,
    halt: str = "fixed",
    adaptive_rule: str = "auto",
    limit: int | None = None,
    keep: tuple[str, ...] = (),
    show_progress: bool = True,
) -> dict[str, np.ndarray]:
    """Evaluate on `data`; returns per-example arrays (rank-gathered, sorted by example index).

    Always: PER_EXAMPLE_KEYS. `keep` may add "predictions" (N, L) and "probs" (N, L, V) float32
    final-step probabilities under the model's normaliser (for ensembles and ARC voting).
    """
    info = dist.DistInfo(torch.distributed.get_rank(), torch.distributed.get_world_size()) if dist_enabled() else dist.DistInfo()
    meta = data.metadata
    kind = detect_kind(meta) if kind == "auto" else kind
    total = len(data) if limit is None else min(limit, len(data))
    batch_size = max(1, min(batch_size, -(-total // info.world_size)))  # no batch larger than the data
    n_batches = -(-total // (batch_size * info.world_size))
    batches = iter_batches(data, batch_size, rank=info.rank, world_size=info.world_size, limit=limit)
    chunks: list[dict[str, np.ndarray]] = []
    for batch in progress(batches, "eval", total=n_batches, disable=not show_progress or not info.is_main):
        n = int(batch["n_valid"])
        if n == 0:
            continue
        t0 = time.perf_counter()
        inputs = {k: batch[k] for k in ("inputs", "puzzle_identifiers")}
        out = run_act(model, inputs, halt=halt, adaptive_rule=adaptive_rule, step_predictions=True)
        elapsed = time.perf_counter() - t0
        labels = map_ignore_labels(batch["labels"][:n], meta.ignore_label_id)  # (n, L) with -100
        per = example_metrics(out["logits"][:n], torch.from_numpy(labels), out["q_halt_logits"][:n], loss_type)
        steps = out["steps"][:n].numpy()
        preds = per.pop("predictions")
        chunk = {
            **per,
            "example_index": batch["example_indices"][:n],
            "steps": steps,
            "q_halt_logits": out["q_halt_logits"][:n].numpy(),
            "q_continue_logits": out["q_continue_logits"][:n].numpy(),
            "stable_step": stable_step(out["step_predictions"][:, :n].numpy(), labels, steps),
            "time": np.full(n, elapsed / n),
            # Official q_halt_loss also sums BCE(q_halt, 1) over batch padding rows (they have no
            # labels, so they count as "correct"); spread over the batch's examples for `aggregate`.
            "pad_q_halt_loss": np.full(n, float(torch.nn.functional.softplus(-out["q_halt_logits"][n:].double()).sum()) / n),
            "solved": verify_rows(kind, batch["inputs"][:n], preds, batch["labels"][:n], per["exact"]),
        }
        if "predictions" in keep:
            chunk["predictions"] = preds
        if "probs" in keep:
            chunk["probs"] = log_probs(out["logits"][:n], loss_type).exp().float().numpy()
        chunks.append(chunk)
    return gather(chunks, keys=PER_EXAMPLE_KEYS + tuple(keep))


def dist_enabled() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def gather(chunks: list[dict[str, np.ndarray]], keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Concatenate this rank's chunks, gather all ranks, sort rows by example index."""
    local = {k: np.concatenate([c[k] for c in chunks]) for k in keys} if chunks else {}
    parts = [p for p in dist.all_gather_objects(local) if p]
    if not parts:
        return {k: np.zeros(0) for k in keys}
    merged = {k: np.concatenate([p[k] for p in parts]) for k in keys}
    order = np.argsort(merged["example_index"], kind="stable")
    return {k: v[order] for k, v in merged.items()}


def labels_for(data: SplitData, rows: np.ndarray) -> np.ndarray:
    """Labels of example rows with the dataset's ignore id mapped to -100 (N, L)."""
    return map_ignore_labels(np.asarray(data.labels[rows]), data.metadata.ignore_label_id)

