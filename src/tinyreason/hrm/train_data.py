"""Training batches as the official `PuzzleDataset` (train mode) samples them, resumable.

Per epoch the groups are shuffled; from each group one random puzzle is drawn and its
examples (in random order) fill the global batch; a puzzle that does not fit is cut (its
remaining examples are dropped, as officially) and an incomplete last batch is dropped.
Each rank takes its contiguous slice of every global batch. The order depends only on
(seed, epoch), so a resumed run regenerates the epoch and skips the batches already seen.

Several dataset folders (a `MergedSplit`) are taken one after the other, each shuffled on
its own, with no batch spanning two, as TRM's train loader iterates its `data_paths`.
Departure: TRM joins `epochs_per_iter` epochs of one folder (its eval interval, or all
epochs when there is none) before the next folder; ours alternates the folders every epoch,
so a run sees every folder from its start, and drops each folder's incomplete last batch
every epoch. A folder that cannot fill one batch on its own is refused (TRM's joined epochs
would fill one).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from tinyreason.errors import UserError
from tinyreason.hrm.losses import map_ignore_labels
from tinyreason.puzzles.dataset import SplitData
from tinyreason.puzzles.merge import MergedSplit, split_parts


def epoch_rows(data: SplitData | MergedSplit, global_batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Example-row indices of every global batch of one epoch: list of (global_batch_size,) arrays."""
    parts = split_parts(data)
    starts = data.inputs.starts if isinstance(data, MergedSplit) else [0]  # folder k's first row in `data`
    out = []
    for k, part in enumerate(parts):
        rows = _folder_rows(part, global_batch_size, [seed, epoch] if len(parts) == 1 else [seed, epoch, k])
        if not rows:
            alone = " on their own (each folder's batches are its own, as TRM's)" if len(parts) > 1 else ""
            raise UserError(f"{part.path}: {part.metadata.total_groups} groups cannot fill one batch of "
                            f"{global_batch_size}{alone}; lower global_batch_size")
        out += [r + starts[k] for r in rows]
    return out


def _folder_rows(data: SplitData, global_batch_size: int, key: list[int]) -> list[np.ndarray]:
    """One folder's batches of one epoch, in the order of the random stream seeded by `key`."""
    rng = np.random.default_rng(key)
    groups, puzzles = data.group_indices, data.puzzle_indices
    batches, current = [], []
    for g in rng.permutation(len(groups) - 1):
        p = int(rng.integers(groups[g], groups[g + 1]))
        rows = np.arange(puzzles[p], puzzles[p + 1])
        rng.shuffle(rows)
        take = min(len(rows), global_batch_size - len(current))
        current.extend(rows[:take].tolist())
        if len(current) == global_batch_size:
            batches.append(np.asarray(current, dtype=np.int64))
            current = []
    return batches


def batch_arrays(data: SplitData | MergedSplit, rows: np.ndarray) -> dict[str, np.ndarray]:
    """{"inputs" (B, L) int32, "labels" (B, L) int64 with -100, "puzzle_identifiers" (B,) int32}."""
    return {
        "inputs": np.asarray(data.inputs[rows], dtype=np.int32),
        "labels": map_ignore_labels(np.asarray(data.labels[rows]), data.metadata.ignore_label_id),
        "puzzle_identifiers": np.asarray(data.puzzle_identifiers[data.example_puzzles(rows)], dtype=np.int32),
    }


def train_batches(
    data: SplitData | MergedSplit, global_batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
    start_epoch: int = 0, skip: int = 0,
) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
    """Endless (epoch, index in epoch, this rank's batch), starting at (start_epoch, skip)."""
    if global_batch_size % world_size:
        raise UserError(f"global_batch_size {global_batch_size} is not divisible by the {world_size} ranks")
    local = global_batch_size // world_size
    epoch = start_epoch
    while True:
        batches = epoch_rows(data, global_batch_size, seed, epoch)  # raises when a folder fills no batch
        for i in range(skip, len(batches)):
            yield epoch, i, batch_arrays(data, batches[i][rank * local : (rank + 1) * local])
        epoch, skip = epoch + 1, 0
