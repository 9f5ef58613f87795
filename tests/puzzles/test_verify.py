from __future__ import annotations

import numpy as np
import pytest

from puzzle_paths import HRM_DATASETS
from tinyreason.errors import UserError
from tinyreason.puzzles import maze, sudoku
from tinyreason.puzzles.dataset import open_split
from tinyreason.puzzles.verify import decode, encode, guess_kind, verify_tokens


@pytest.mark.parametrize("name,kind", [("sudoku-aug2", "sudoku"), ("maze-aug", "maze"), ("arc-aug3", "arc")])
def test_labels_verify_and_encode_decode_round_trips(name, kind):
    for split in ("train", "test"):
        d = open_split(HRM_DATASETS / name, split)
        assert guess_kind(d.metadata.vocab_size, d.metadata.seq_len) == kind
        for i in range(0, len(d), 7):
            assert verify_tokens(kind, d.inputs[i], d.labels[i], d.labels[i])
            if kind != "arc" or split == "test":  # train ARC grids are translated
                assert np.array_equal(encode(kind, decode(kind, d.labels[i])), d.labels[i])


def test_sudoku_tokens_accept_a_different_valid_solution():
    d = open_split(HRM_DATASETS / "sudoku-noaug", "test")
    solution = decode("sudoku", d.labels[0])
    puzzle = solution.copy()
    puzzle[4:] = 0  # an ambiguous puzzle made from a real solution
    first, second = sudoku.solve(puzzle, limit=2).solutions
    inp, label, other = encode("sudoku", puzzle), encode("sudoku", first), encode("sudoku", second)
    assert not np.array_equal(label, other)
    assert verify_tokens("sudoku", inp, other, label)
    wrong = other.copy()
    wrong[80] = wrong[79]
    assert not verify_tokens("sudoku", inp, wrong, label)
    assert not verify_tokens("sudoku", inp, np.zeros(81, np.uint8), label)  # all PAD


def test_maze_tokens_accept_another_shortest_path_and_reject_pad():
    q = maze.to_grid("#####" "#S  #" "#   #" "#  G#" "#####", "t")
    a1 = maze.to_grid("#####" "#Soo#" "#  o#" "#  G#" "#####", "t")
    a2 = maze.to_grid("#####" "#S  #" "#o  #" "#ooG#" "#####", "t")
    inp, lab = encode("maze", q), encode("maze", a1)
    assert verify_tokens("maze", inp, encode("maze", a2), lab)
    padded = encode("maze", a2)
    padded[0] = 0
    assert not verify_tokens("maze", inp, padded, lab)


def test_arc_tokens_exact_match_after_crop():
    d = open_split(HRM_DATASETS / "arc-noaug", "test")
    inp, lab = d.inputs[0], d.labels[0]
    noisy = lab.copy().reshape(30, 30)
    noisy[29, 29] = 5  # junk outside the EOS-bounded grid is ignored by the crop
    assert verify_tokens("arc", inp, noisy.reshape(-1), lab)
    wrong = lab.copy()
    wrong[0] = 2 if wrong[0] != 2 else 3
    assert not verify_tokens("arc", inp, wrong, lab)


def test_unknown_kind():
    with pytest.raises(UserError):
        verify_tokens("chess", np.zeros(1), np.zeros(1), np.zeros(1))
