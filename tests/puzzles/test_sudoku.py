from __future__ import annotations

import csv

import numpy as np
import pytest

from puzzle_paths import SOURCES
from tinyreason.errors import UserError
from tinyreason.puzzles import sudoku


def _fixture_rows(split="test"):
    with open(SOURCES / f"sudoku_{split}.csv", newline="") as f:
        rows = list(csv.reader(f))[1:]
    return [sudoku.parse_row(q, a, "row") for _, q, a, _ in rows]


def test_solver_finds_the_unique_solution_of_fixture_puzzles():
    for q, a in _fixture_rows()[:3]:
        res = sudoku.solve(q, limit=2)
        assert len(res.solutions) == 1
        assert np.array_equal(res.solutions[0], a)
        assert sudoku.count_solutions(q) == 1


def test_generator_gives_unique_valid_puzzles_with_requested_givens():
    rng = np.random.default_rng(0)
    for givens in (45, 30):
        puzzle, solution, rating = sudoku.generate(rng, givens=givens)
        assert sudoku.is_valid_solution(puzzle, solution)
        assert sudoku.count_solutions(puzzle, limit=2) == 1
        assert (puzzle > 0).sum() == givens
        assert rating >= 81 - givens  # at least one assignment per blank


def test_min_rating_redraws_harder_puzzles():
    rng = np.random.default_rng(1)
    easy = sudoku.generate(rng, givens=26)[2]
    puzzle, _, hard = sudoku.generate(rng, givens=26, min_rating=2 * easy, max_tries=30)
    assert hard >= 2 * easy
    assert hard == sudoku.rating(puzzle)


def test_verifier_accepts_another_valid_solution_of_an_ambiguous_puzzle():
    _, solution = _fixture_rows()[0]
    puzzle = solution.copy()
    puzzle[3:] = 0  # keep three rows: many completions
    first, second = sudoku.solve(puzzle, limit=2).solutions
    assert not np.array_equal(first, second)
    assert sudoku.is_valid_solution(puzzle, first) and sudoku.is_valid_solution(puzzle, second)


def test_verifier_rejects_invalid_answers():
    q, a = _fixture_rows()[0]
    given = np.argwhere(q > 0)[0]
    changed = a.copy()
    changed[tuple(given)] = changed[tuple(given)] % 9 + 1  # breaks a given
    assert not sudoku.is_valid_solution(q, changed)
    swapped = a.copy()
    blank = np.argwhere(q == 0)[0]
    swapped[tuple(blank)] = swapped[tuple(blank)] % 9 + 1  # duplicate in a row
    assert not sudoku.is_valid_solution(q, swapped)
    incomplete = a.copy()
    incomplete[tuple(blank)] = 0
    assert not sudoku.is_valid_solution(q, incomplete)


def test_official_shuffle_keeps_validity_and_blanks():
    rng = np.random.RandomState(0)
    for q, a in _fixture_rows()[:3]:
        q2, a2 = sudoku.shuffle_sudoku(q, a, rng)
        assert sudoku.is_valid_solution(q2, a2)
        assert (q2 == 0).sum() == (q == 0).sum()


def test_plain_backtracking_agrees_with_mrv():
    q, a = _fixture_rows()[4]
    plain = sudoku.solve(q, limit=2, mrv=False)
    assert len(plain.solutions) == 1 and np.array_equal(plain.solutions[0], a)


@pytest.mark.parametrize(
    "question,answer,msg",
    [
        ("1" * 80, "1" * 81, "81 cells"),
        ("x" * 81, "1" * 81, "digits"),
        ("." * 81, "1" * 81, "not a valid solution"),
    ],
)
def test_bad_rows_raise_user_errors_naming_the_row(question, answer, msg):
    with pytest.raises(UserError, match=f"f.csv row 7.*{msg}"):
        sudoku.parse_row(question, answer, "f.csv row 7")


def test_every_shuffle_inverts_to_the_identity():
    rng = np.random.RandomState(0)
    q, a = _fixture_rows()[0]
    for _ in range(20):
        shuffle = sudoku.draw_shuffle(rng)
        for grid in (q, a):
            assert np.array_equal(shuffle.invert(shuffle.apply(grid)), grid)
    transposed = sudoku.SudokuShuffle(np.arange(10), True, np.arange(9), np.arange(9))
    assert np.array_equal(transposed.apply(a), a.T) and np.array_equal(transposed.invert(a.T), a)


def test_conflicts_mark_the_cells_that_break_a_rule():
    q, a = _fixture_rows()[0]
    assert not sudoku.conflicts(q, a).any()
    blank = tuple(np.argwhere(q == 0)[0])
    wrong = a.copy()
    wrong[blank] = a[blank] % 9 + 1  # now repeated in its row, column and box
    bad = sudoku.conflicts(q, wrong)
    assert bad[blank] and bad.sum() >= 2 and not sudoku.is_valid_solution(q, wrong)
    given = tuple(np.argwhere(q > 0)[0])
    changed = a.copy()
    changed[given] = 0
    assert sudoku.conflicts(q, changed)[given]


def test_generator_returns_the_closest_draw_when_the_target_is_out_of_reach():
    puzzle, solution, _ = sudoku.generate(np.random.default_rng(0), givens=17, max_tries=2)
    assert 17 < (puzzle > 0).sum() < 30 and sudoku.count_solutions(puzzle) == 1
