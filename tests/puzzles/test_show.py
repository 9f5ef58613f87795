from __future__ import annotations

import numpy as np
import pytest

from puzzle_paths import HRM_DATASETS
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
@pytest.mark.parametrize("name", ["sudoku-noaug", "maze-noaug", "arc-noaug"])
def test_show_writes_png(name, tmp_path):
    png = tmp_path / "s.png"
    extra = ["--predictions", str(_predictions(tmp_path))] if name.startswith("sudoku") else []
    assert main(["hrm", "show", str(HRM_DATASETS / name), "--png", str(png), *extra]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_show_maze_and_arc_text(capsys):
    assert main(["hrm", "show", str(HRM_DATASETS / "maze-noaug"), "--index", "1"]) == 0
    out = capsys.readouterr().out
    assert "#" * 15 in out and "S" in out and "o" in out
    assert main(["hrm", "show", str(HRM_DATASETS / "arc-aug3"), "--split", "train", "--index", "3"]) == 0
    assert "puzzle 009d5c81" in capsys.readouterr().out


def test_show_rejects_predictions_for_another_split(tmp_path, capsys):
    root = HRM_DATASETS / "sudoku-noaug"
    d = open_split(root, "train")
    np.savez(tmp_path / "p.npz", predictions=np.array(d.labels[:2]), inputs=np.array(d.inputs[:2]))
    assert main(["hrm", "show", str(root), "--predictions", str(tmp_path / "p.npz")]) == 2
    assert "wrong dataset or split" in capsys.readouterr().err
    assert main(["hrm", "show", str(root), "--index", "99"]) == 2
