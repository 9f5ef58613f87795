"""Sudoku: bitmask solver, unique-solution generator, verifier and the official augmentation.

Grids are (9, 9) int arrays with 0 for a blank and 1–9 for digits (the official builder's
representation before it adds 1 to make tokens). The solver keeps one 9-bit mask of used
digits per row, column and box and always branches on the empty cell with the fewest
candidates (MRV); `benchmarks/puzzle_generation.py` measures it against plain backtracking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALL = 0x3FE  # bits 1..9
_BOX = [(r // 3) * 3 + c // 3 for r in range(9) for c in range(9)]
_BITS = {1 << d: d for d in range(1, 10)}


@dataclass
class SolveResult:
    """`solutions` found (at most `limit`), and `nodes` = search effort (cells assigned)."""

    solutions: list[np.ndarray]
    nodes: int


def _masks(cells: list[int]) -> tuple[list[int], list[int], list[int]] | None:
    rows, cols, boxes = [0] * 9, [0] * 9, [0] * 9
    for i, v in enumerate(cells):
        if v:
            bit = 1 << v
            r, c, b = i // 9, i % 9, _BOX[i]
            if (rows[r] | cols[c] | boxes[b]) & bit:
                return None  # givens already clash
            rows[r] |= bit
            cols[c] |= bit
            boxes[b] |= bit
    return rows, cols, boxes


def solve(grid: np.ndarray, limit: int = 1, rng: np.random.Generator | None = None, mrv: bool = True) -> SolveResult:
    """Backtracking search for up to `limit` solutions of a (9, 9) grid (0 = blank).

    `rng` shuffles the order digits are tried in (used to draw random full grids);
    `mrv=False` branches on the first empty cell instead (the baseline in the benchmark).
    """
    cells = [int(v) for v in np.asarray(grid).reshape(81)]
    masks = _masks(cells)
    if masks is None:
        return SolveResult([], 0)
    rows, cols, boxes = masks
    empty = [i for i in range(81) if cells[i] == 0]
    out: list[np.ndarray] = []
    nodes = 0

    def search(todo: list[int]) -> bool:
        nonlocal nodes
        if not todo:
            out.append(np.array(cells, dtype=np.int64).reshape(9, 9))
            return len(out) >= limit
        if mrv:
            best_k, best_free, best_n = -1, 0, 10
            for k, i in enumerate(todo):
                free = ALL & ~(rows[i // 9] | cols[i % 9] | boxes[_BOX[i]])
                n = free.bit_count()
                if n < best_n:
                    best_k, best_free, best_n = k, free, n
                    if n <= 1:
                        break
            if best_n == 0:
                return False
        else:
            best_k = 0
            i = todo[0]
            best_free = ALL & ~(rows[i // 9] | cols[i % 9] | boxes[_BOX[i]])
        i = todo[best_k]
        rest = todo[:best_k] + todo[best_k + 1 :]
        r, c, b = i // 9, i % 9, _BOX[i]
        digits = [d for d in range(1, 10) if best_free >> d & 1]
        if rng is not None:
            rng.shuffle(digits)
        for d in digits:
            bit = 1 << d
            nodes += 1
            cells[i] = d
            rows[r] |= bit
            cols[c] |= bit
            boxes[b] |= bit
            done = search(rest)
            rows[r] ^= bit
            cols[c] ^= bit
            boxes[b] ^= bit
            cells[i] = 0
            if done:
                return True
        return False

    search(empty)
    return SolveResult(out, nodes)


def count_solutions(grid: np.ndarray, limit: int = 2) -> int:
    """Number of solutions, counting no further than `limit` (2 decides uniqueness)."""
    return len(solve(grid, limit=limit).solutions)


def rating(grid: np.ndarray) -> int:
    """Solver-effort rating: cells the MRV solver assigns to find the solution and prove it unique.

    A puzzle solved by singles alone rates its number of blanks; harder puzzles need guesses
    and rate higher. (The official sources' `rating` column comes from a different solver,
    so the two scales are not the same.)
    """
    return solve(grid, limit=2).nodes


def valid_solutions(puzzles: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """(N,) bool: candidate n is a complete valid grid keeping every given of puzzle n."""
    cand = np.asarray(candidates).reshape(-1, 9, 9)
    puz = np.asarray(puzzles).reshape(-1, 9, 9)
    ok = np.all((cand >= 1) & (cand <= 9), axis=(1, 2)) & np.all((puz == 0) | (puz == cand), axis=(1, 2))
    boxes = cand.reshape(-1, 3, 3, 3, 3).transpose(0, 1, 3, 2, 4).reshape(-1, 9, 9)
    full = np.arange(1, 10)
    for units in (cand, cand.transpose(0, 2, 1), boxes):
        ok &= np.all(np.sort(units, axis=2) == full, axis=(1, 2))
    return ok


def is_valid_solution(puzzle: np.ndarray, candidate: np.ndarray) -> bool:
    """True when `candidate` is a complete valid grid agreeing with every given of `puzzle`."""
    return bool(valid_solutions(puzzle, candidate)[0])


def conflicts(puzzle: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """(9, 9) bool: cells of `grid` that break a rule of `puzzle` (not a digit 1-9, a changed
    given, or a digit repeated in its row, column or box); all False for a valid solution."""
    g, p = np.asarray(grid).reshape(9, 9), np.asarray(puzzle).reshape(9, 9)
    bad = (g < 1) | (g > 9) | ((p > 0) & (p != g))
    for d in range(1, 10):
        m = g == d  # (9, 9)
        box_dup = (m.reshape(3, 3, 3, 3).sum(axis=(1, 3)) > 1).repeat(3, 0).repeat(3, 1)  # (9, 9)
        bad |= m & ((m.sum(1, keepdims=True) > 1) | (m.sum(0, keepdims=True) > 1) | box_dup)
    return bad


def random_solution(rng: np.random.Generator) -> np.ndarray:
    """A uniformly shuffled search from the empty grid: a random complete Sudoku."""
    return solve(np.zeros((9, 9), dtype=np.int64), limit=1, rng=rng).solutions[0]


def generate(
    rng: np.random.Generator, givens: int = 30, min_rating: int = 0, max_tries: int = 50
) -> tuple[np.ndarray, np.ndarray, int]:
    """A puzzle with a unique solution: (puzzle, solution, rating).

    Blanks are removed in random order while the solution stays unique, stopping at
    `givens` clues. A draw that keeps more clues (greedy removal stops at the first locally
    minimal puzzle: below ~24 clues this is common, below ~22 nearly certain) or rates below
    `min_rating` is redrawn, up to `max_tries` times; then the closest draw is returned, so
    callers check the clue count and rating they got (`tinyreason hrm build` reports misses).
    """
    best: tuple[np.ndarray, np.ndarray, int] | None = None
    best_key: tuple[int, int, int] | None = None
    for _ in range(max_tries):
        solution = random_solution(rng)
        puzzle = solution.copy().reshape(81)
        n_givens = 81
        for i in rng.permutation(81):
            if n_givens <= givens:
                break
            keep = puzzle[i]
            puzzle[i] = 0
            if count_solutions(puzzle, 2) != 1:
                puzzle[i] = keep
            else:
                n_givens -= 1
        grid = puzzle.reshape(9, 9)
        score = rating(grid)
        key = (-max(n_givens - givens, 0), min(score - min_rating, 0), score)  # higher is better
        if best_key is None or key > best_key:
            best, best_key = (grid, solution, score), key
        if key[0] == 0 and key[1] == 0:
            break
    assert best is not None
    return best


@dataclass(frozen=True)
class SudokuShuffle:
    """One validity-preserving Sudoku transform: digit relabelling (blank 0 fixed), optional
    transpose, then rows and columns permuted within and across bands/stacks."""

    digit_map: np.ndarray  # (10,) old digit -> new digit, digit_map[0] == 0
    transpose: bool
    rows: np.ndarray  # (9,) output row i comes from row rows[i]
    cols: np.ndarray  # (9,)

    def apply(self, grid: np.ndarray) -> np.ndarray:
        x = grid.T if self.transpose else grid  # (9, 9)
        return self.digit_map[x[self.rows][:, self.cols]]

    def invert(self, grid: np.ndarray) -> np.ndarray:
        """The grid `apply` was given: apply(g) -> invert -> g (maps predictions back)."""
        x = np.empty_like(grid)
        x[np.ix_(self.rows, self.cols)] = np.argsort(self.digit_map)[grid]
        return x.T if self.transpose else x


def draw_shuffle(rng: np.random.RandomState) -> SudokuShuffle:
    """A random shuffle drawn in the official builder's order (a `RandomState(seed)`
    reproduces its augmentations for the same seed)."""
    digit_map = np.pad(rng.permutation(np.arange(1, 10)), (1, 0))
    transpose = bool(rng.rand() < 0.5)
    rows = np.concatenate([b * 3 + rng.permutation(3) for b in rng.permutation(3)])
    cols = np.concatenate([s * 3 + rng.permutation(3) for s in rng.permutation(3)])
    return SudokuShuffle(digit_map, transpose, rows, cols)


def shuffle_sudoku(board: np.ndarray, solution: np.ndarray, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """The official augmentation: one `draw_shuffle` applied to puzzle and solution."""
    shuffle = draw_shuffle(rng)
    return shuffle.apply(board), shuffle.apply(solution)


def parse_rows(rows: list[tuple[str, str, str]]) -> tuple[np.ndarray, np.ndarray]:
    """Official CSV cells (where, question, answer) to (N, 9, 9) puzzles and solutions.

    Checked in one vectorised pass; the first bad row raises UserError naming `where`
    (e.g. 'train.csv row 7').
    """
    from tinyreason.errors import UserError

    for where, q, a in rows:
        if len(q) != 81 or len(a) != 81:
            raise UserError(f"{where}: sudoku question and answer must have 81 cells (got {len(q)} and {len(a)})")
    if not rows:
        return np.zeros((0, 9, 9), np.uint8), np.zeros((0, 9, 9), np.uint8)
    q_all = np.frombuffer("".join(q for _, q, _ in rows).replace(".", "0").encode("utf-8", "replace"), dtype=np.uint8)
    a_all = np.frombuffer("".join(a for _, _, a in rows).encode("utf-8", "replace"), dtype=np.uint8)
    if q_all.size != 81 * len(rows) or a_all.size != 81 * len(rows):  # non-ASCII characters
        bad = next(w for w, q, a in rows if not (q.isascii() and a.isascii()))
        raise UserError(f"{bad}: sudoku cells must be digits 1-9 or '.' for a blank")
    puzzles = (q_all - ord("0")).reshape(-1, 9, 9)
    solutions = (a_all - ord("0")).reshape(-1, 9, 9)
    digits = np.all(puzzles <= 9, axis=(1, 2)) & np.all(solutions <= 9, axis=(1, 2))  # uint8: below '0' wraps past 9
    if not digits.all():
        raise UserError(f"{rows[int(np.argmin(digits))][0]}: sudoku cells must be digits 1-9 or '.' for a blank")
    ok = valid_solutions(puzzles, solutions)
    if not ok.all():
        where = rows[int(np.argmin(ok))][0]
        raise UserError(f"{where}: the answer is not a valid solution of the question (unsolvable or malformed row)")
    return puzzles, solutions


def parse_row(question: str, answer: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One CSV row (see `parse_rows`) as (9, 9) puzzle and solution."""
    puzzles, solutions = parse_rows([(where, question, answer)])
    return puzzles[0], solutions[0]
