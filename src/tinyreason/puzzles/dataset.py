"""The official HRM dataset layout: writer and memory-mapped reader.

    DIR/identifiers.json                    puzzle identifier id -> name ("<blank>" at 0)
    DIR/{train,test}/dataset.json           PuzzleDatasetMetadata
    DIR/{train,test}/{set}__inputs.npy      (N, seq_len) tokens
    DIR/{train,test}/{set}__labels.npy      (N, seq_len) tokens
    DIR/{train,test}/{set}__puzzle_identifiers.npy  (P,) int32, one per puzzle
    DIR/{train,test}/{set}__puzzle_indices.npy      (P+1,) int32, examples of puzzle p are
                                                   rows puzzle_indices[p]:puzzle_indices[p+1]
    DIR/{train,test}/{set}__group_indices.npy       (G+1,) int32, puzzles of group g are
                                                   group_indices[g]:group_indices[g+1]

A group is one original puzzle with its augmented variants; the official trainer samples
one puzzle per group per epoch. All fixture and official datasets use the single set "all".

TRM (Tiny Recursive Models) keeps this layout and adds `total_puzzles` to `dataset.json`
(its ARC builder writes the split's puzzle count, its sudoku/maze builders the group
count); both kinds load, and writing keeps the field only where it was set. TRM also
merges several dataset folders (`data_paths`): see `tinyreason.puzzles.merge`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ValidationError

from tinyreason.errors import UserError
from tinyreason.fileio import atomic_write_npy, atomic_write_text, read_json

FIELDS = ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")


class PuzzleDatasetMetadata(BaseModel):
    """Mirror of the official `dataset/common.py` model (same fields, same order).

    `total_puzzles` is TRM's extra field; None for HRM's files, and then not written.
    """

    pad_id: int
    ignore_label_id: int | None
    blank_identifier_id: int
    vocab_size: int
    seq_len: int
    num_puzzle_identifiers: int
    total_groups: int
    mean_puzzle_examples: float
    total_puzzles: int | None = None
    sets: list[str]

    def to_json(self) -> str:
        """`dataset.json` text as the official builders write it (HRM's without `total_puzzles`)."""
        return json.dumps(self.model_dump(exclude={"total_puzzles"} if self.total_puzzles is None else None))


@dataclass
class SplitData:
    """One set of one split. inputs/labels are memory-mapped; the index arrays are in memory."""

    path: Path
    set_name: str
    metadata: PuzzleDatasetMetadata
    inputs: np.ndarray  # (N, L)
    labels: np.ndarray  # (N, L)
    puzzle_identifiers: np.ndarray  # (P,)
    puzzle_indices: np.ndarray  # (P+1,)
    group_indices: np.ndarray  # (G+1,)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def example_puzzles(self, rows: np.ndarray) -> np.ndarray:
        """Puzzle index of each example row."""
        return np.searchsorted(self.puzzle_indices, rows, side="right") - 1


# ---------------------------------------------------------------- writing


def write_split(out_dir: str | Path, split: str, arrays: dict[str, np.ndarray], metadata: PuzzleDatasetMetadata, set_name: str = "all") -> None:
    """Write `{split}/dataset.json` and `{split}/{set}__*.npy` atomically."""
    split_dir = Path(out_dir) / split
    for name in FIELDS:
        atomic_write_npy(split_dir / f"{set_name}__{name}.npy", arrays[name])
    atomic_write_text(split_dir / "dataset.json", metadata.to_json())


def write_identifiers(out_dir: str | Path, names: list[str]) -> None:
    atomic_write_text(Path(out_dir) / "identifiers.json", json.dumps(names))


# ---------------------------------------------------------------- reading


def load_metadata(dataset_dir: str | Path, split: str) -> PuzzleDatasetMetadata:
    path = Path(dataset_dir) / split / "dataset.json"
    if not path.is_file():
        raise UserError(f"{path}: missing (not an HRM dataset folder with a '{split}' split?)")
    data = read_json(path)
    try:
        return PuzzleDatasetMetadata.model_validate(data)
    except ValidationError as e:
        raise UserError(f"{path}: invalid dataset metadata ({str(e).splitlines()[0]})") from None


def read_identifiers(dataset_dir: str | Path) -> list[str]:
    path = Path(dataset_dir) / "identifiers.json"
    if not path.is_file():
        raise UserError(f"{path}: missing")
    names = read_json(path)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise UserError(f"{path}: must be a JSON list of names")
    return names


def open_split(dataset_dir: str | Path, split: str, set_name: str | None = None, check_values: bool = True) -> SplitData:
    """Open and check one split (memory-mapped). `set_name` is needed only if there are several sets.

    Every array must exist and agree with the others and the metadata; a mismatch is a
    UserError naming the file (and the row, where there is one).
    """
    meta = load_metadata(dataset_dir, split)
    if set_name is None:
        if len(meta.sets) != 1:
            raise UserError(f"{Path(dataset_dir) / split}: several sets {meta.sets}; choose one")
        set_name = meta.sets[0]
    elif set_name not in meta.sets:
        raise UserError(f"{Path(dataset_dir) / split}: no set '{set_name}' (sets: {meta.sets})")
    split_dir = Path(dataset_dir) / split
    arrs = {}
    for name in FIELDS:
        path = split_dir / f"{set_name}__{name}.npy"
        if not path.is_file():
            raise UserError(f"{path}: missing")
        try:
            arrs[name] = np.load(path, mmap_mode="r" if name in ("inputs", "labels") else None)
        except (ValueError, OSError) as e:
            raise UserError(f"{path}: not a readable .npy file ({e})") from None
    data = SplitData(split_dir, set_name, meta, **arrs)
    _check(data, check_values)
    return data


def _check(d: SplitData, check_values: bool) -> None:
    f = lambda name: d.path / f"{d.set_name}__{name}.npy"  # noqa: E731
    m = d.metadata
    for name in FIELDS:
        if getattr(d, name).dtype.kind not in "iu":
            raise UserError(f"{f(name)}: dtype {getattr(d, name).dtype}, expected integers")
    for name in ("inputs", "labels"):
        arr = getattr(d, name)
        if arr.ndim != 2 or arr.shape[1] != m.seq_len:
            raise UserError(f"{f(name)}: shape {arr.shape}, expected (N, {m.seq_len}) from dataset.json seq_len")
    if d.labels.shape[0] != d.inputs.shape[0]:
        raise UserError(f"{f('labels')}: {d.labels.shape[0]} rows but inputs has {d.inputs.shape[0]}")
    for name in ("puzzle_identifiers", "puzzle_indices", "group_indices"):
        if getattr(d, name).ndim != 1:
            raise UserError(f"{f(name)}: must be one-dimensional")
    _check_offsets(d.puzzle_indices, len(d), f("puzzle_indices"), "inputs rows")
    n_puzzles = len(d.puzzle_indices) - 1
    if len(d.puzzle_identifiers) != n_puzzles:
        raise UserError(f"{f('puzzle_identifiers')}: {len(d.puzzle_identifiers)} entries for {n_puzzles} puzzles")
    _check_offsets(d.group_indices, n_puzzles, f("group_indices"), "puzzles")
    if len(d.group_indices) - 1 != m.total_groups:
        raise UserError(f"{f('group_indices')}: {len(d.group_indices) - 1} groups but dataset.json total_groups is {m.total_groups}")
    bad = np.flatnonzero((d.puzzle_identifiers < 0) | (d.puzzle_identifiers >= m.num_puzzle_identifiers))
    if bad.size:
        raise UserError(f"{f('puzzle_identifiers')}: row {bad[0]} is {d.puzzle_identifiers[bad[0]]}, outside 0..{m.num_puzzle_identifiers - 1}")
    if check_values:
        for name in ("inputs", "labels"):
            arr = getattr(d, name)
            if arr.size and (arr.min() < 0 or arr.max() >= m.vocab_size):
                row = int(np.flatnonzero(((arr < 0) | (arr >= m.vocab_size)).any(axis=1))[0])
                raise UserError(f"{f(name)}: row {row} has tokens outside 0..{m.vocab_size - 1} (vocab_size)")


def _check_offsets(idx: np.ndarray, total: int, path: Path, what: str) -> None:
    if len(idx) == 0 or idx[0] != 0 or idx[-1] != total:
        first, last = (idx[0], idx[-1]) if len(idx) else (None, None)
        raise UserError(f"{path}: must run from 0 to {total} ({what}), got {first}..{last}")
    dec = np.flatnonzero(np.diff(idx) < 0)
    if dec.size:
        raise UserError(f"{path}: row {dec[0] + 1} decreases")


def iter_batches(
    data: SplitData,
    batch_size: int,
    rank: int = 0,
    world_size: int = 1,
    ignore_label_id: int | None = None,
    limit: int | None = None,
) -> Iterator[dict[str, np.ndarray | int]]:
    """Examples in order, in batches of exactly `batch_size` rows, like the official test loader.

    Yields {"inputs" (B, L) int32, "labels" (B, L) int32, "puzzle_identifiers" (B,) int32,
    "example_indices" (B,) int64 (-1 on padding rows), "n_valid" int}. A short last batch is
    padded with metadata pad_id (inputs), blank_identifier_id (identifiers) and, for labels,
    `ignore_label_id` if given (the official loader uses -100 and also maps labels equal to
    metadata ignore_label_id to it) else metadata ignore_label_id (or pad_id). With
    torchrun, each global batch of `batch_size * world_size` rows is split by rank.
    `limit` keeps the first `limit` examples.
    """
    meta = data.metadata
    total = len(data) if limit is None else min(limit, len(data))
    label_pad = ignore_label_id if ignore_label_id is not None else (meta.ignore_label_id if meta.ignore_label_id is not None else meta.pad_id)
    step = batch_size * world_size
    for start in range(0, total, step):
        lo, hi = min(start + rank * batch_size, total), min(start + (rank + 1) * batch_size, total)
        rows = np.arange(lo, hi, dtype=np.int64)
        n = len(rows)
        inputs = np.full((batch_size, meta.seq_len), meta.pad_id, dtype=np.int32)  # (B, L)
        labels = np.full((batch_size, meta.seq_len), label_pad, dtype=np.int32)  # (B, L)
        ids = np.full(batch_size, meta.blank_identifier_id, dtype=np.int32)  # (B,)
        index = np.full(batch_size, -1, dtype=np.int64)  # (B,)
        inputs[:n] = data.inputs[lo:hi]
        lab = np.asarray(data.labels[lo:hi], dtype=np.int32)
        if ignore_label_id is not None and meta.ignore_label_id is not None:
            lab = np.where(lab == meta.ignore_label_id, ignore_label_id, lab)
        labels[:n] = lab
        ids[:n] = data.puzzle_identifiers[data.example_puzzles(rows)]
        index[:n] = rows
        yield {"inputs": inputs, "labels": labels, "puzzle_identifiers": ids, "example_indices": index, "n_valid": n}


def example_names(data: SplitData, identifiers: list[str]) -> list[str]:
    """Puzzle name (identifiers.json) of every example row; the official sudoku/maze use '<blank>'."""
    ids = data.puzzle_identifiers[data.example_puzzles(np.arange(len(data)))]
    return [identifiers[i] if 0 <= i < len(identifiers) else str(i) for i in ids]
