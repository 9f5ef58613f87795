"""Our builder against the official builders' outputs in tests/fixtures/hrm_datasets."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from puzzle_paths import HRM_DATASETS, SOURCES
from tinyreason.cli import main
from tinyreason.puzzles import arc
from tinyreason.puzzles.build import build_arc
from tinyreason.puzzles.dataset import open_split, read_identifiers

# The order `os.listdir` gave the official builder when it wrote the ARC fixtures. Its seeded
# shuffle runs on this order, so we pass it explicitly: a fresh clone's listing may differ.
OFFICIAL_LISTING = {
    "evaluation": ["009d5c81", "00576224", "00dbd492"],
    "training": ["007bbfb7", "045e512c", "017c7c7b", "00d62c1b", "025d127b", "0520fde7"],
}

CASES = {
    "sudoku-noaug": ["sudoku"],
    "sudoku-aug2": ["sudoku", "--num-aug", "2"],
    "maze-noaug": ["maze"],
    "maze-aug": ["maze", "--num-aug", "7"],
}


def assert_same_dataset(ours, official, splits=("train", "test")):
    assert read_identifiers(ours) == read_identifiers(official)
    for split in splits:
        a, b = open_split(ours, split), open_split(official, split)
        assert a.metadata == b.metadata
        for name in ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices"):
            x, y = getattr(a, name), getattr(b, name)
            assert x.shape == y.shape and np.array_equal(x, y), f"{split} {name}"
        assert (ours / split / "dataset.json").read_text() == (official / split / "dataset.json").read_text()


@pytest.mark.parametrize("name", list(CASES))
def test_csv_builds_equal_official(name, tmp_path):
    out = tmp_path / name
    assert main(["hrm", "build", *CASES[name], "--source", str(SOURCES), "--out", str(out)]) == 0
    assert_same_dataset(out, HRM_DATASETS / name)
    if name.endswith("noaug"):  # same dtype too (with augmentation we keep uint8, official int64)
        assert np.load(out / "train/all__inputs.npy").dtype == np.load(HRM_DATASETS / name / "train/all__inputs.npy").dtype
    assert "kind: " in (out / "config.yaml").read_text()


def _official_order_source():
    subdirs = dict(arc.load_source(SOURCES / "arc"))
    return [
        (sub, sorted(subdirs[sub], key=lambda t: OFFICIAL_LISTING[sub].index(t.name)))
        for sub in ("evaluation", "training")
    ]


@pytest.mark.parametrize("name,num_aug", [("arc-noaug", 0), ("arc-aug3", 3)])
def test_arc_builds_equal_official_including_random_translations(name, num_aug, tmp_path):
    build_arc(_official_order_source(), tmp_path, num_aug, np.random.RandomState(42))
    assert_same_dataset(tmp_path, HRM_DATASETS / name)


def test_arc_cli_test_split_decodes_to_the_official_grids_per_name(tmp_path):
    assert main(["hrm", "build", "arc", "--source", str(SOURCES / "arc"), "--out", str(tmp_path), "--arc-order", "sorted"]) == 0
    official = HRM_DATASETS / "arc-noaug"

    def grids(root):
        d, names = open_split(root, "test"), read_identifiers(root)
        out = {}
        for p, ident in enumerate(d.puzzle_identifiers):
            rows = range(d.puzzle_indices[p], d.puzzle_indices[p + 1])
            out[names[ident]] = [(arc.decode_grid(d.inputs[r]).tolist(), arc.decode_grid(d.labels[r]).tolist()) for r in rows]
        return out

    assert grids(tmp_path) == grids(official)
    assert json.loads((tmp_path / "test/dataset.json").read_text()) == json.loads((official / "test/dataset.json").read_text())


@pytest.mark.parametrize("kind,extra", [("sudoku", ["--givens", "40"]), ("maze", ["--size", "9", "--min-path-len", "6"])])
def test_generated_datasets_load_and_verify(kind, extra, tmp_path):
    from tinyreason.puzzles.verify import verify_tokens

    args = ["hrm", "build", kind, "--generate", "3", "--generate-test", "2", "--num-aug", "1", "--out", str(tmp_path), *extra]
    assert main(args) == 0
    train, test = open_split(tmp_path, "train"), open_split(tmp_path, "test")
    assert len(train) == 6 and len(test) == 2 and train.metadata.total_groups == 3
    for d in (train, test):
        for i in range(len(d)):
            assert verify_tokens(kind, d.inputs[i], d.labels[i], d.labels[i])
    assert (tmp_path / "source/train.csv").read_text().startswith("source,question,answer,rating\n")


def _copy_sources(dest, kind):
    dest.mkdir()
    for split in ("train", "test"):
        shutil.copy(SOURCES / f"{kind}_{split}.csv", dest / f"{split}.csv")
    return dest


@pytest.mark.parametrize(
    "kind,bad_row,msg",
    [
        ("sudoku", "gen9,..1,123,5", "row 3: sudoku question and answer must have 81 cells"),
        ("sudoku", "gen9," + "1" * 81 + "," + "1" * 81 + ",5", "row 3: the answer is not a valid solution"),
        ("maze", "gen9,#####,#####,0", "row 3: maze of 5 cells is not square"),
        ("maze", "gen9," + "#" * 8 + "x," + "#" * 9 + ",0", "row 3: unknown maze characters"),
    ],
)
def test_bad_source_rows_exit_2_naming_file_and_row(kind, bad_row, msg, tmp_path, capsys):
    src = _copy_sources(tmp_path / "src", kind)
    lines = (src / "train.csv").read_text().splitlines()
    lines.insert(2, bad_row)
    (src / "train.csv").write_text("\n".join(lines) + "\n")
    assert main(["hrm", "build", kind, "--source", str(src), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "train.csv" in err and msg in err


def test_bad_arc_grid_exits_2(tmp_path, capsys):
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "x.json").write_text(json.dumps({"train": [{"input": [[12]], "output": [[1]]}], "test": []}))
    assert main(["hrm", "build", "arc", "--source", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "x.json train[0].input: colours must be 0-9" in capsys.readouterr().err


def test_bad_options_exit_2_before_writing_anything(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["hrm", "build", "maze", "--out", str(out)]) == 2
    assert main(["hrm", "build", "arc", "--generate", "3", "--out", str(out)]) == 2
    assert main(["hrm", "build", "maze", "--source", str(SOURCES), "--num-aug", "8", "--out", str(out)]) == 2
    assert main(["hrm", "build", "sudoku", "--generate", "0", "--out", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "exactly one of --source DIR and --generate N" in err[0] and "ARC has no generator" in err[1]
    assert "maze has 7 dihedral transforms" in err[2] and "generate" in err[3]
    assert not out.exists()
