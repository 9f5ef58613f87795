"""Several dataset folders read as one split, as TRM's PuzzleDataset merges its `data_paths`.

TRM checks that the folders agree on seq_len, vocab_size, pad_id, ignore_label_id,
blank_identifier_id, sets and num_puzzle_identifiers; sums num_puzzle_identifiers,
total_groups and total_puzzles; weights mean_puzzle_examples by total_puzzles; and keeps
every folder's examples, puzzle identifiers and indices as they are, iterating the folders
one after the other (as the sets `all`, `all1`, `all2`, ...). Identifiers are not offset:
its model has the summed number of puzzle embeddings, and folder k's ids index the same
rows as folder 0's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyreason.errors import UserError
from tinyreason.puzzles.dataset import PuzzleDatasetMetadata, SplitData, example_names, open_split, read_identifiers

MERGE_SAME = ("seq_len", "vocab_size", "pad_id", "ignore_label_id", "blank_identifier_id", "sets", "num_puzzle_identifiers")


class RowConcat:
    """The rows of several (N_k, L) arrays read as one (sum N_k, L) array without copying them
    (they stay memory-mapped): len, shape, dtype, and indexing by an int, a slice or an index
    array, which returns a new ndarray."""

    def __init__(self, parts: list[np.ndarray]):
        self.parts = parts
        self.starts = np.cumsum([0] + [len(p) for p in parts])  # (K+1,)
        self.dtype = np.result_type(*[p.dtype for p in parts])
        self.shape = (int(self.starts[-1]), int(parts[0].shape[1]))
        self.ndim = 2

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self[np.array([key])][0]
        rows = np.arange(len(self))[key] if isinstance(key, slice) else np.asarray(key, dtype=np.int64).reshape(-1)
        rows = np.where(rows < 0, rows + len(self), rows)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"row index out of range 0..{len(self) - 1}")
        out = np.empty((len(rows), self.shape[1]), dtype=self.dtype)  # (R, L)
        part = np.searchsorted(self.starts, rows, side="right") - 1  # (R,)
        for k in np.unique(part):
            sel = part == k
            out[sel] = self.parts[k][rows[sel] - self.starts[k]]
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        arr = self[:]
        return arr if dtype is None else arr.astype(dtype)


@dataclass
class MergedSplit:
    """One split of several dataset folders with SplitData's attributes: examples in folder
    order; puzzle_indices and group_indices offset to index the merged rows and puzzles;
    puzzle_identifiers as stored (not offset, as TRM). `path` is the first folder's split
    (for messages); `parts` are the folders' own splits.

    Departure: TRM's test loader never puts two folders in one batch; ours may. Per-example
    outputs are the same, and padding rows are not counted. Training takes the folders in
    turn, each in batches of its own (`tinyreason.hrm.train_data.epoch_rows`).
    """

    parts: list[SplitData]
    path: Path
    set_name: str
    metadata: PuzzleDatasetMetadata
    inputs: RowConcat  # (N, L)
    labels: RowConcat  # (N, L)
    puzzle_identifiers: np.ndarray  # (P,)
    puzzle_indices: np.ndarray  # (P+1,)
    group_indices: np.ndarray  # (G+1,)

    def __len__(self) -> int:
        return len(self.inputs)

    def example_puzzles(self, rows: np.ndarray) -> np.ndarray:
        """Puzzle index of each example row."""
        return np.searchsorted(self.puzzle_indices, rows, side="right") - 1


def merge_metadata(parts: list[SplitData]) -> PuzzleDatasetMetadata:
    """TRM's merged metadata, or a UserError naming the field and both folders. A folder without
    total_puzzles (HRM's files) weighs mean_puzzle_examples by its puzzle count; the merged
    total_puzzles is then None."""
    first = parts[0].metadata
    for part in parts[1:]:
        for name in MERGE_SAME:
            if getattr(part.metadata, name) != getattr(first, name):
                raise UserError(
                    f"{part.path}: {name} {getattr(part.metadata, name)} differs from {getattr(first, name)} in {parts[0].path} "
                    f"(merged datasets must agree on {', '.join(MERGE_SAME)}, as TRM's data_paths)"
                )
    counts = [p.metadata.total_puzzles for p in parts]
    weights = [len(p.puzzle_identifiers) if c is None else c for p, c in zip(parts, counts)]
    mean = sum(p.metadata.mean_puzzle_examples * w for p, w in zip(parts, weights)) / sum(weights) if sum(weights) else 0.0
    return first.model_copy(update={
        "num_puzzle_identifiers": sum(p.metadata.num_puzzle_identifiers for p in parts),
        "total_groups": sum(p.metadata.total_groups for p in parts),
        "mean_puzzle_examples": mean,
        "total_puzzles": None if None in counts else sum(counts),
    })


def open_splits(dataset_dirs: list[str | Path], split: str, set_name: str | None = None, check_values: bool = True) -> SplitData | MergedSplit:
    """`split` of one dataset folder (exactly `open_split`) or of several, merged."""
    if not dataset_dirs:
        raise UserError("no dataset folder given")
    if len(dataset_dirs) == 1:
        return open_split(dataset_dirs[0], split, set_name, check_values)
    parts = [open_split(d, split, set_name, check_values) for d in dataset_dirs]
    meta = merge_metadata(parts)
    rows0 = np.cumsum([0] + [len(p) for p in parts])
    puzzles0 = np.cumsum([0] + [len(p.puzzle_identifiers) for p in parts])
    return MergedSplit(
        parts=parts, path=parts[0].path, set_name=parts[0].set_name, metadata=meta,
        inputs=RowConcat([p.inputs for p in parts]), labels=RowConcat([p.labels for p in parts]),
        puzzle_identifiers=np.concatenate([p.puzzle_identifiers for p in parts]),
        puzzle_indices=np.concatenate([[0]] + [p.puzzle_indices[1:] + rows0[k] for k, p in enumerate(parts)]).astype(np.int64),
        group_indices=np.concatenate([[0]] + [p.group_indices[1:] + puzzles0[k] for k, p in enumerate(parts)]).astype(np.int64),
    )


def limit_warning(data: SplitData | MergedSplit, limit: int | None) -> str | None:
    """A warning when `limit` (first N examples, folder 0's first) leaves whole folders of a
    merged split out, else None."""
    parts = split_parts(data)
    if limit is None or len(parts) == 1 or limit > len(data) - len(parts[-1]):
        return None
    starts = data.inputs.starts  # (K+1,) folder k's first row
    used = int(np.searchsorted(starts, limit, side="left"))  # folders holding any of the first `limit` rows
    return (f"warning: the limit {limit} keeps the first examples of {used} of the {len(parts)} folders only "
            f"(they follow in folder order); {int(starts[-2]) + 1} or more reaches the last")


def split_parts(data: SplitData | MergedSplit) -> list[SplitData]:
    """The single-folder splits behind `data` (itself when it is one)."""
    return data.parts if isinstance(data, MergedSplit) else [data]


def read_example_names(data: SplitData | MergedSplit) -> list[str]:
    """Puzzle name of every example row, from the identifiers.json of its own dataset folder."""
    return [name for p in split_parts(data) for name in example_names(p, read_identifiers(p.path.parent))]
