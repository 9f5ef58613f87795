from __future__ import annotations

import numpy as np
import pytest

from puzzle_paths import HRM_DATASETS, TRM_DATASETS
from tinyreason.cli import main
from tinyreason.puzzles.dataset import open_split


def _predictions(tmp_path):
    d = open_split(HRM_DATASETS / "sudoku-noaug", "test")
    preds = np.array(d.labels[:2])
    preds[1, 0] = 1  # a blank: wrong
    np.savez(tmp_path / "p.npz", predictions=preds, inputs=np.array(d.inputs[:2]))
    return tmp_path / "p.npz"


def test_show_sudoku_with_predictions(tmp_path, capsys):
    args = ["hrm", "show", str(HRM_DATASETS / "sudoku-noaug"), "--count", "2", "--predictions", str(_predictions(tmp_path))]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "test[0]" in out and "prediction correct" in out and "prediction WRONG" in out
    assert "------+-------+------" in out


@pytest.mark.slow  # importing matplotlib and drawing take ~2 s
@pytest.mark.parametrize("name,extra", [("sudoku-noaug", []), ("maze-noaug", []), ("arc-aug3", ["--split", "train", "--index", "3"])])
def test_show_writes_png(name, extra, tmp_path):
    png = tmp_path / "s.png"
    if name.startswith("sudoku"):
        extra = ["--count", "2", "--predictions", str(_predictions(tmp_path))]
    assert main(["hrm", "show", str(HRM_DATASETS / name), "--png", str(png), *extra]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_show_maze_and_arc_text(capsys):
    assert main(["hrm", "show", str(HRM_DATASETS / "maze-noaug"), "--index", "1"]) == 0
    out = capsys.readouterr().out
    assert "#" * 15 in out and "S" in out and "o" in out
    assert main(["hrm", "show", str(HRM_DATASETS / "arc-aug3"), "--split", "train", "--index", "3"]) == 0
    out = capsys.readouterr().out  # a translated train example is located, not cropped at the top-left
    assert "puzzle 009d5c81" in out and "00000008800000    00000007700000" in out


def test_show_rejects_predictions_for_another_split(tmp_path, capsys):
    root = HRM_DATASETS / "sudoku-noaug"
    d = open_split(root, "train")
    np.savez(tmp_path / "p.npz", predictions=np.array(d.labels[:2]), inputs=np.array(d.inputs[:2]))
    assert main(["hrm", "show", str(root), "--predictions", str(tmp_path / "p.npz")]) == 2
    assert "wrong dataset or split" in capsys.readouterr().err
    assert main(["hrm", "show", str(root), "--index", "99"]) == 2


def test_show_bad_kind_and_predictions_file_exit_2(tmp_path, capsys):
    root = str(HRM_DATASETS / "sudoku-noaug")
    assert main(["hrm", "show", root, "--kind", "arc"]) == 2
    assert "kind 'arc' does not fit sequences of 81 tokens" in capsys.readouterr().err
    cut = tmp_path / "cut.npz"
    cut.write_bytes(_predictions(tmp_path).read_bytes()[:200])
    assert main(["hrm", "show", root, "--predictions", str(cut)]) == 2
    np.savez(tmp_path / "short.npz", predictions=np.zeros((2, 80), np.int64))
    assert main(["hrm", "show", root, "--predictions", str(tmp_path / "short.npz")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "cut.npz is not a readable .npz file" in err[0] and "expected (N, 81)" in err[1]


def test_show_trm_arc_names_the_augmented_puzzle(capsys):
    assert main(["hrm", "show", str(TRM_DATASETS / "arc-trm-aug3"), "--index", "2"]) == 0
    out = capsys.readouterr().out
    assert "48131b3c|||t4|||0132874659" in out and "input" in out and "label" in out
