from __future__ import annotations

import shutil

import numpy as np
import pytest

from puzzle_paths import DATASETS, HRM_DATASETS
from tinyreason.cli import main
from tinyreason.errors import UserError
from tinyreason.puzzles.dataset import example_names, iter_batches, load_metadata, open_split, read_identifiers


@pytest.mark.parametrize("name", DATASETS)
def test_reads_every_fixture_dataset(name):
    root = HRM_DATASETS / name
    names = read_identifiers(root)
    for split in ("train", "test"):
        d = open_split(root, split)
        assert isinstance(d.inputs, np.memmap) and d.inputs.shape == d.labels.shape
        assert d.metadata == load_metadata(root, split)
        assert d.inputs.shape[1] == d.metadata.seq_len
        assert len(example_names(d, names)) == len(d)
        rows = sum(b["n_valid"] for b in iter_batches(d, 5))
        assert rows == len(d)


def test_batches_pad_the_last_batch_with_metadata_ids():
    d = open_split(HRM_DATASETS / "arc-noaug", "train")  # 38 examples, 9 puzzles
    batches = list(iter_batches(d, 16))
    assert [b["n_valid"] for b in batches] == [16, 16, 6]
    last = batches[-1]
    assert last["inputs"].shape == (16, 900) and last["inputs"].dtype == np.int32
    assert np.all(last["inputs"][6:] == d.metadata.pad_id)
    assert np.all(last["puzzle_identifiers"][6:] == d.metadata.blank_identifier_id)
    assert np.all(last["example_indices"][6:] == -1) and last["example_indices"][5] == 37
    first = batches[0]
    assert first["puzzle_identifiers"].tolist()[:6] == [1, 1, 1, 1, 1, 2]  # puzzle_indices [0, 5, 7, ...]
    assert np.array_equal(first["labels"], d.labels[:16])
    official = list(iter_batches(d, 16, ignore_label_id=-100))[-1]
    assert np.all(official["labels"][6:] == -100) and not np.any(official["labels"] == 0)


def test_ranks_split_each_global_batch():
    d = open_split(HRM_DATASETS / "sudoku-noaug", "train")  # 12 examples
    r0 = [b["example_indices"].tolist() for b in iter_batches(d, 4, rank=0, world_size=2)]
    r1 = [b["example_indices"].tolist() for b in iter_batches(d, 4, rank=1, world_size=2)]
    assert r0 == [[0, 1, 2, 3], [8, 9, 10, 11]] and r1 == [[4, 5, 6, 7], [-1, -1, -1, -1]]


def _corrupt(tmp_path, name, fn):
    root = tmp_path / "ds"
    shutil.copytree(HRM_DATASETS / "sudoku-noaug", root)
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    fn(root)
    return root


@pytest.mark.parametrize(
    "fn,msg",
    [
        (lambda r: (r / "test/all__labels.npy").unlink(), "all__labels.npy: missing"),
        (lambda r: np.save(r / "test/all__labels.npy", np.ones((5, 81), np.uint8)), "5 rows but inputs has 6"),
        (lambda r: np.save(r / "test/all__inputs.npy", np.ones((6, 80), np.uint8)), "expected (N, 81)"),
        (lambda r: np.save(r / "test/all__puzzle_indices.npy", np.array([0, 1, 3, 2, 4, 5, 6], np.int32)), "row 3 decreases"),
        (lambda r: np.save(r / "test/all__group_indices.npy", np.arange(6, dtype=np.int32)), "must run from 0 to 6"),
        (lambda r: np.save(r / "test/all__inputs.npy", np.full((6, 81), 11, np.uint8)), "row 0 has tokens outside 0..10"),
        (lambda r: np.save(r / "test/all__puzzle_identifiers.npy", np.ones(6, np.int32)), "row 0 is 1, outside 0..0"),
        (lambda r: (r / "test/dataset.json").write_text("{}"), "invalid dataset metadata"),
        (lambda r: np.save(r / "test/all__labels.npy", np.ones((6, 81), np.float32)), "all__labels.npy: dtype float32, expected integers"),
        (lambda r: (r / "test/all__inputs.npy").write_bytes(b"garbage"), "all__inputs.npy: not a readable .npy file"),
        (lambda r: (r / "identifiers.json").write_text("[1, 2"), "identifiers.json: not valid JSON"),
    ],
)
def test_inconsistent_datasets_are_user_errors(tmp_path, fn, msg):
    root = _corrupt(tmp_path, "sudoku-noaug", fn)
    with pytest.raises(UserError) as e:
        open_split(root, "test")
        read_identifiers(root)
    assert msg in str(e.value)


def test_cli_exit_2_on_broken_dataset(tmp_path, capsys):
    root = _corrupt(tmp_path, "sudoku-noaug", lambda r: (r / "test/all__inputs.npy").unlink())
    assert main(["hrm", "show", str(root)]) == 2
    assert "test/all__inputs.npy: missing" in capsys.readouterr().err
