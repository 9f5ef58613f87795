"""ARC datasets in TRM's naming (its `dataset/build_arc_dataset.py`), and the split writer that
the HRM flavour (`build.build_arc`) shares.

TRM's builder reads, per subset in the given order, `{prefix}_{subset}_challenges.json` (task
name -> task) and, if present, `{prefix}_{subset}_solutions.json` (task name -> test output
grids); without it the test outputs are [[0]] placeholders. Per subset: a seeded shuffle of
the tasks, then per task its augmentation group, named `name|||t{k}|||{colour perm}`. The test
examples of the test subsets (its `--test-set-name`, `--test-set-name2`) go to the test split,
every other example to train. It also writes `test_puzzles.json` (the test subsets' tasks as
read, solutions filled in) and `total_puzzles` (puzzles in the split) in `dataset.json`, and
numbers identifiers from `puzzle_identifiers_start`. With the same seed, our output equals
TRM's: arrays, identifiers, metadata and test_puzzles.json.

Departure: where the first subset is a test subset, TRM orders the two splits by Python set
iteration (it varies with PYTHONHASHSEED); we always number and write train first, as TRM
does whenever a train-only subset comes first (its README's commands).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tinyreason.errors import UserError
from tinyreason.fileio import atomic_write_text, read_json
from tinyreason.puzzles import arc
from tinyreason.puzzles.dataset import PuzzleDatasetMetadata, write_identifiers, write_split
from tinyreason.runlog import console, progress

TRM_SUBSETS = ["training", "evaluation", "concept"]  # TRM README, ARC-AGI-1 (ARC-AGI-2: training2 evaluation2 concept)
TRM_TEST_SETS = ["evaluation"]
Group = list[tuple[str, list[arc.Pair]]]  # one task's puzzles (original first): (name, examples)


def input_prefix(source: str | Path) -> str:
    """TRM's --input-file-prefix; a folder stands for `<folder>/arc-agi` (TRM's `kaggle/combined` layout)."""
    return str(Path(source) / "arc-agi") if Path(source).is_dir() else str(source)


def load_subsets(prefix: str, subsets: list[str]) -> list[tuple[str, list[tuple[str, dict]]]]:
    """(subset, [(task name, task JSON with test outputs filled in)]) in file order, as TRM reads them."""
    out = []
    for subset in subsets:
        path = Path(f"{prefix}_{subset}_challenges.json")
        if not path.is_file():
            raise UserError(f"{path}: missing (TRM's layout: <prefix>_<subset>_challenges.json, optional _solutions.json)")
        tasks = read_json(path)
        if not isinstance(tasks, dict) or not all(isinstance(t, dict) and isinstance(t.get("test"), list) for t in tasks.values()):
            raise UserError(f"{path}: expected a JSON object task name -> {{'train': [...], 'test': [...]}}")
        sols_path = Path(f"{prefix}_{subset}_solutions.json")
        if sols_path.is_file():
            sols = read_json(sols_path)
            for name, task in tasks.items():
                grids = sols.get(name) if isinstance(sols, dict) else None
                if not isinstance(grids, list) or len(grids) > len(task["test"]):
                    raise UserError(f"{sols_path}: task {name} needs a list of at most {len(task['test'])} test output grids")
                for example, grid in zip(task["test"], grids):
                    example["output"] = grid
        else:
            console.print(f"[yellow]warning[/]: {sols_path} missing: test outputs of {subset} are [[0]] placeholders (as TRM)")
            for task in tasks.values():
                for example in task["test"]:
                    example.setdefault("output", [[0]])
        out.append((subset, list(tasks.items())))
    return out


def build_arc_trm(
    subsets: list[tuple[str, list[tuple[str, dict]]]], out: Path, num_aug: int, rng: np.random.RandomState,
    test_sets: list[str], id_start: int = 1,
) -> None:
    """TRM's build_arc_dataset on loaded subsets (see `load_subsets`), drawing from `rng` as TRM
    draws from the global numpy RNG seeded with its --seed."""
    splits: dict[str, list[Group]] = {"train": [], "test": []}
    test_puzzles: dict[str, dict] = {}
    for subset, items in subsets:
        items = list(items)
        rng.shuffle(items)
        dest_of = {"train": "train", "test": "test" if subset in test_sets else "train"}
        for name, raw in progress(items, f"arc {subset}"):
            task = arc.task_from_json(raw, name, subset, f"{subset}/{name}")
            task.name = name  # TRM names a task by its key only
            if dest_of["test"] == "test":
                test_puzzles[name] = raw
            group = arc.augment_task(task, num_aug, rng, sep=arc.TRM_SEPARATOR)
            for dest in dict.fromkeys(dest_of.values()):
                members = [(n, [p for k, ps in ex.items() if dest_of[k] == dest for p in ps]) for n, ex in group]
                if not members[0][1]:
                    raise UserError(f"{subset}/{name}: no examples for the {dest} split (TRM's builder fails here too)")
                splits[dest].append(members)
    write_arc_splits(splits, out, rng, id_start=id_start, total_puzzles=True, hint=f"subsets {[s for s, _ in subsets]}, test subsets {test_sets}")
    atomic_write_text(Path(out) / "test_puzzles.json", json.dumps(test_puzzles))


def write_arc_splits(
    splits: dict[str, list[Group]], out: Path, rng: np.random.RandomState, id_start: int = 1, total_puzzles: bool = False, hint: str = "",
) -> None:
    """identifiers.json and both splits, as the official builders save them: identifiers numbered
    from `id_start` in split/group/puzzle order; per puzzle one example kept in place and, on
    the train split only, the others randomly translated. `total_puzzles`: TRM's metadata field."""
    names: dict[str, int] = {}
    for groups in splits.values():
        for group in groups:
            for name, _ in group:
                names.setdefault(name, id_start + len(names))
    num_ids = id_start + len(names)
    by_id = {i: name for name, i in names.items()}
    write_identifiers(out, [by_id.get(i, "<blank>") for i in range(num_ids)])
    for split, groups in splits.items():
        inputs, labels, ids, p_idx, g_idx = [], [], [], [0], [0]
        for group in groups:
            for name, pairs in group:
                keep = rng.randint(0, len(pairs))
                for i, (a, b) in enumerate(pairs):
                    r = c = 0
                    if split == "train" and i != keep:
                        r = rng.randint(0, arc.MAX_SIZE - max(a.shape[0], b.shape[0]) + 1)
                        c = rng.randint(0, arc.MAX_SIZE - max(a.shape[1], b.shape[1]) + 1)
                    inputs.append(arc.encode_grid(a, r, c))
                    labels.append(arc.encode_grid(b, r, c))
                p_idx.append(len(inputs))
                ids.append(names[name])
            g_idx.append(len(ids))
        if not inputs:
            raise UserError(f"ARC source gives no {split} examples ({hint})")
        arrays = {
            "inputs": np.stack(inputs), "labels": np.stack(labels), "puzzle_identifiers": np.array(ids, dtype=np.int32),
            "puzzle_indices": np.array(p_idx, dtype=np.int32), "group_indices": np.array(g_idx, dtype=np.int32),
        }
        meta = PuzzleDatasetMetadata(
            pad_id=arc.PAD, ignore_label_id=arc.PAD, blank_identifier_id=0, vocab_size=12, seq_len=arc.MAX_SIZE**2,
            num_puzzle_identifiers=num_ids, total_groups=len(groups), mean_puzzle_examples=len(inputs) / len(ids),
            total_puzzles=len(ids) if total_puzzles else None, sets=["all"],
        )
        write_split(out, split, arrays, meta)


def read_test_puzzles(dataset_dirs: list[Path]) -> dict[str, dict] | None:
    """TRM's `test_puzzles.json` of the dataset folders, merged (None where none has one, as HRM's)."""
    paths = [Path(d) / "test_puzzles.json" for d in dataset_dirs]
    found = [p for p in paths if p.is_file()]
    if not found:
        return None
    if len(found) != len(paths):
        missing = next(p for p in paths if not p.is_file())
        raise UserError(f"{missing}: missing, but {found[0]} exists; merge ARC datasets of one builder flavour")
    merged: dict[str, dict] = {}
    for path in found:
        puzzles = read_json(path)
        if not isinstance(puzzles, dict):
            raise UserError(f"{path}: expected a JSON object task name -> task")
        merged.update(puzzles)
    return merged
