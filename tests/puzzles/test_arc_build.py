"""`hrm build arc --flavour trm` against TRM's builder output in tests/fixtures/trm_datasets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from puzzle_paths import HRM_DATASETS, SOURCES, TRM_DATASETS
from test_build import assert_same_dataset
from tinyreason.cli import main
from tinyreason.puzzles import arc
from tinyreason.puzzles.dataset import open_split, read_identifiers

COMBINED = TRM_DATASETS / "sources" / "arc_combined"
TRM_ARGS = ["--subsets", "training", "evaluation", "concept", "--test-set-name", "evaluation"]


def build(out, *extra) -> int:
    return main(["hrm", "build", "arc", "--flavour", "trm", "--source", str(COMBINED / "arc-agi"), "--out", str(out), *extra])


@pytest.mark.parametrize("num_aug", [0, 3])
def test_trm_flavour_equals_trm_builder_byte_for_byte(num_aug, tmp_path):
    """Everything, train translations included (TRM numbers and saves train first here)."""
    assert build(tmp_path, *TRM_ARGS, "--num-aug", str(num_aug)) == 0
    official = TRM_DATASETS / f"arc-trm-aug{num_aug}"
    assert_same_dataset(tmp_path, official)
    for name in ("identifiers.json", "test_puzzles.json"):
        assert (tmp_path / name).read_bytes() == (official / name).read_bytes(), name
    assert json.loads((tmp_path / "test/dataset.json").read_text())["total_puzzles"] == 4 * (1 + num_aug)


def test_trm_test_split_per_name_decodes_to_test_puzzles(tmp_path):
    """Compared as the HRM builders are: per puzzle name on the test split, decoded. Each
    `name|||t{k}|||{perm}` puzzle, mapped back with its inverse, is the task as given."""
    assert build(tmp_path, "--num-aug", "3") == 0  # TRM README defaults: training evaluation concept / evaluation
    given = json.loads((TRM_DATASETS / "arc-trm-aug3" / "test_puzzles.json").read_text())

    def grids(root):
        d, names = open_split(root, "test"), read_identifiers(root)
        out = {}
        for p, ident in enumerate(d.puzzle_identifiers):
            rows = range(d.puzzle_indices[p], d.puzzle_indices[p + 1])
            out[names[ident]] = [(arc.decode_grid(d.inputs[r]).tolist(), arc.decode_grid(d.labels[r]).tolist()) for r in rows]
        return out

    ours = grids(tmp_path)
    assert ours == grids(TRM_DATASETS / "arc-trm-aug3") and len(ours) == 16
    for name, pairs in ours.items():
        task, tid, cmap = arc.parse_aug_name(name)
        assert "|||" not in task and (name == task) == (name in given)
        back = [[arc.undo_augment_grid(np.array(g, dtype=np.uint8), tid, cmap).tolist() for g in pair] for pair in pairs]
        assert back == [[t["input"], t["output"]] for t in given[task]["test"]]


def test_identifiers_start_and_a_missing_solutions_file(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("training_challenges", "training_solutions", "evaluation_challenges"):
        (src / f"arc-agi_{name}.json").write_bytes((COMBINED / f"arc-agi_{name}.json").read_bytes())
    out = tmp_path / "out"
    assert main(["hrm", "build", "arc", "--flavour", "trm", "--source", str(src), "--out", str(out),
                 "--subsets", "training", "evaluation", "--puzzle-identifiers-start", "3"]) == 0
    assert "test outputs of evaluation are [[0]] placeholders" in " ".join(capsys.readouterr().err.split())
    names = read_identifiers(out)
    assert names[:3] == ["<blank>"] * 3 and len(names) == 3 + 10
    test = open_split(out, "test")
    assert test.metadata.num_puzzle_identifiers == 13 and test.puzzle_identifiers.min() >= 3
    assert all(arc.decode_grid(row).tolist() == [[0]] for row in test.labels)
    assert all(t["output"] == [[0]] for p in json.loads((out / "test_puzzles.json").read_text()).values() for t in p["test"])


def test_trm_flavour_sudoku_adds_total_puzzles_to_hrm_arrays(tmp_path):
    """TRM's sudoku/maze builders are HRM's plus `total_puzzles` = total_groups in dataset.json."""
    assert main(["hrm", "build", "sudoku", "--flavour", "trm", "--source", str(SOURCES), "--out", str(tmp_path)]) == 0
    official = HRM_DATASETS / "sudoku-noaug"
    for split in ("train", "test"):
        ours, hrm = json.loads((tmp_path / split / "dataset.json").read_text()), json.loads((official / split / "dataset.json").read_text())
        assert list(ours) == [*list(hrm)[:-1], "total_puzzles", "sets"]
        assert ours == {**hrm, "total_puzzles": hrm["total_groups"]}
        assert np.array_equal(open_split(tmp_path, split).inputs, open_split(official, split).inputs)


@pytest.mark.parametrize(
    "args,msg",
    [
        (["sudoku", "--flavour", "trm", "--source", "x", "--subsets", "a"], "--subsets: options of TRM's ARC builder"),
        (["arc", "--source", "x", "--subsets", "training"], "--subsets: options of TRM's ARC builder; use with arc --flavour trm"),
        (["arc", "--flavour", "trm", "--source", str(COMBINED / "nope")], "nope_training_challenges.json: missing"),
        (["arc", "--flavour", "trm", "--source", str(COMBINED), "--test-set-name", "other"], "ARC source gives no test examples"),
    ],
)
def test_bad_trm_builds_exit_2(args, msg, tmp_path, capsys):
    assert main(["hrm", "build", *args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err
