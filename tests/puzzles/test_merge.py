"""Several dataset folders as one split (TRM's data_paths) and TRM's dataset.json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from puzzle_paths import HRM_DATASETS, TRM_DATASETS
from tinyreason.errors import UserError
from tinyreason.puzzles.dataset import example_names, iter_batches, load_metadata, open_split, read_identifiers, write_split
from tinyreason.puzzles.merge import MergedSplit, limit_warning, open_splits, read_example_names


def test_trm_and_hrm_dataset_json_load_and_write_back_as_they_were(tmp_path):
    for root, total in ((TRM_DATASETS / "arc-trm-aug3", 16), (HRM_DATASETS / "arc-aug3", None)):
        d = open_split(root, "test")
        assert d.metadata.total_puzzles == total
        arrays = {f: np.asarray(getattr(d, f)) for f in ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")}
        write_split(tmp_path / root.name, "test", arrays, d.metadata)
        assert (tmp_path / root.name / "test/dataset.json").read_bytes() == (root / "test/dataset.json").read_bytes()


def test_one_folder_opens_exactly_as_open_split():
    d = open_splits([HRM_DATASETS / "sudoku-noaug"], "test")
    assert not isinstance(d, MergedSplit) and isinstance(d.inputs, np.memmap)


def test_two_folders_merge_as_trm_puzzle_dataset():
    a_root, b_root = TRM_DATASETS / "arc-trm-aug3", TRM_DATASETS / "arc-trm-aug0"
    a_meta, b_meta = load_metadata(a_root, "test"), load_metadata(b_root, "test")
    assert a_meta.num_puzzle_identifiers != b_meta.num_puzzle_identifiers
    with pytest.raises(UserError, match="num_puzzle_identifiers 13 differs from 49"):
        open_splits([a_root, b_root], "test")
    with pytest.raises(UserError, match="seq_len 900 differs from 81"):
        open_splits([HRM_DATASETS / "sudoku-noaug", HRM_DATASETS / "arc-noaug"], "test")

    m = open_splits([a_root, a_root], "test")  # the same folder twice: every count doubles
    single = open_split(a_root, "test")
    assert len(m) == 2 * len(single) and m.inputs.shape == (2 * len(single), 900)
    assert m.metadata.num_puzzle_identifiers == 98 and m.metadata.total_groups == 8 and m.metadata.total_puzzles == 32
    assert m.metadata.mean_puzzle_examples == pytest.approx(single.metadata.mean_puzzle_examples)
    # indices are offset, identifiers are not (as TRM)
    n, p = len(single), len(single.puzzle_identifiers)
    assert np.array_equal(m.puzzle_indices, np.concatenate([single.puzzle_indices, single.puzzle_indices[1:] + n]))
    assert np.array_equal(m.group_indices, np.concatenate([single.group_indices, single.group_indices[1:] + p]))
    assert np.array_equal(m.puzzle_identifiers, np.tile(single.puzzle_identifiers, 2))
    assert np.array_equal(np.asarray(m.labels), np.concatenate([single.labels, single.labels]))
    rows = np.array([n + 1, 0, 2 * n - 1])
    assert np.array_equal(m.inputs[rows], np.asarray(single.inputs)[[1, 0, n - 1]])
    assert np.array_equal(m.inputs[n - 2 : n + 2], np.asarray(single.inputs)[[n - 2, n - 1, 0, 1]])
    names = example_names(single, read_identifiers(a_root))
    assert read_example_names(m) == names + names and read_example_names(single) == names
    batches = list(iter_batches(m, 7))
    assert sum(b["n_valid"] for b in batches) == 2 * n
    assert np.array_equal(np.concatenate([b["inputs"][: b["n_valid"]] for b in batches]), np.asarray(m.inputs, dtype=np.int32))


def test_hrm_folders_merge_without_total_puzzles():
    m = open_splits([HRM_DATASETS / "sudoku-noaug", HRM_DATASETS / "sudoku-aug2"], "train")
    x, y = open_split(HRM_DATASETS / "sudoku-noaug", "train"), open_split(HRM_DATASETS / "sudoku-aug2", "train")
    assert m.metadata.total_puzzles is None and m.metadata.total_groups == x.metadata.total_groups + y.metadata.total_groups
    assert len(m) == len(x) + len(y) and m.metadata.num_puzzle_identifiers == 2
    assert json.loads(m.metadata.to_json()).keys() == json.loads((HRM_DATASETS / "sudoku-noaug/train/dataset.json").read_text()).keys()


def test_limit_warning_names_the_folders_a_limit_leaves_out():
    folders = [HRM_DATASETS / "sudoku-noaug", HRM_DATASETS / "sudoku-aug2", HRM_DATASETS / "sudoku-noaug"]
    merged = open_splits(folders, "train")  # 12 + 36 + 12 rows, in folder order
    assert limit_warning(merged, None) is None and limit_warning(merged, 49) is None  # reaches the last folder
    assert "first examples of 1 of the 3 folders only" in limit_warning(merged, 12)
    assert "first examples of 2 of the 3 folders only" in limit_warning(merged, 13)
    assert limit_warning(merged, 48).endswith("49 or more reaches the last")
    assert limit_warning(open_split(folders[0], "train"), 1) is None  # one folder: nothing left out
