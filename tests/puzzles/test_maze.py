from __future__ import annotations

import csv

import numpy as np
import pytest

from puzzle_paths import SOURCES
from tinyreason.errors import UserError
from tinyreason.puzzles import maze


def _fixture_rows(split="test"):
    with open(SOURCES / f"maze_{split}.csv", newline="") as f:
        rows = list(csv.reader(f))[1:]
    return [maze.parse_row(q, a, "row") for _, q, a, _ in rows]


def test_fixture_labels_are_shortest_paths_and_bfs_reproduces_their_length():
    for q, a in _fixture_rows():
        assert maze.is_shortest_path(q, a)
        ours = maze.shortest_path(q)
        assert (ours == "o").sum() == (a == "o").sum()
        assert maze.is_shortest_path(q, ours)


@pytest.mark.parametrize("size,min_len", [(30, 40), (11, 10), (8, 5)])
def test_generator_sizes_and_min_path_length(size, min_len):
    rng = np.random.default_rng(size)
    q, a = maze.generate(rng, size=size, min_path_len=min_len)
    assert q.shape == (size, size)
    assert (q == "S").sum() == 1 and (q == "G").sum() == 1
    assert (a == "o").sum() + 1 >= min_len
    assert maze.is_shortest_path(q, a)
    assert np.all(q[0] == "#") and np.all(q[:, -1] == "#")


def test_verifier_accepts_any_shortest_path():
    q = maze.to_grid("#####" "#S  #" "#   #" "#  G#" "#####", "t")
    a1 = maze.to_grid("#####" "#Soo#" "#  o#" "#  G#" "#####", "t")
    a2 = maze.to_grid("#####" "#S  #" "#o  #" "#ooG#" "#####", "t")
    assert maze.is_shortest_path(q, a1) and maze.is_shortest_path(q, a2)


def test_verifier_rejects_bad_paths():
    q, a = _fixture_rows()[1]
    path = np.argwhere(a == "o")
    broken = a.copy()
    broken[tuple(path[len(path) // 2])] = " "
    assert not maze.is_shortest_path(q, broken)  # disconnected
    extra = a.copy()
    free = np.argwhere(q == " ")
    off = next(tuple(c) for c in free if a[tuple(c)] == " ")
    extra[off] = "o"
    assert not maze.is_shortest_path(q, extra)  # too long
    walled = a.copy()
    walled[tuple(np.argwhere(q == "#")[0])] = "o"
    assert not maze.is_shortest_path(q, walled)  # through a wall
    moved = a.copy()
    moved[moved == "S"] = " "
    assert not maze.is_shortest_path(q, moved)  # start changed
    assert not maze.is_shortest_path(q, q)  # no path drawn


def test_longer_detour_is_rejected():
    q = maze.to_grid("#####" "#S  #" "#   #" "#  G#" "#####", "t")
    detour = maze.to_grid("#####" "#Soo#" "#oo #" "# oG#" "#####", "t")
    assert not maze.is_shortest_path(q, detour)


def test_bad_mazes_raise_user_errors():
    with pytest.raises(UserError, match="not square"):
        maze.to_grid("#" * 10, "m.csv row 3")
    with pytest.raises(UserError, match="m.csv row 3.*unknown maze characters 'x'"):
        maze.to_grid("#" * 8 + "x", "m.csv row 3")
    with pytest.raises(UserError, match="one S and one G"):
        maze.parse_row("#" * 9, "#" * 9, "m.csv row 3")


def test_source_answer_must_be_a_shortest_path():
    q = "#####" "#S  #" "#   #" "#  G#" "#####"
    detour = "#####" "#Soo#" "#oo #" "# oG#" "#####"
    with pytest.raises(UserError, match="m.csv row 4: the answer is not the question with a shortest S-G path"):
        maze.parse_row(q, detour, "m.csv row 4")
    with pytest.raises(UserError, match="shortest"):
        maze.parse_row(q, q, "m.csv row 4")  # no path drawn
