"""Puzzle generation rates, and the MRV bitmask Sudoku solver against plain backtracking.

    .venv/bin/python benchmarks/puzzle_generation.py [--n 20] [--seed 0] [--csv tests/fixtures/hrm_datasets/sources/sudoku_test.csv]

Prints puzzles/s for Sudoku generation (unique solution; each candidate removal is a
2-solution count) and 30×30 maze generation, then solves the same puzzles with both solvers
(counting up to 2 solutions, as the generator does) and prints the speed ratio.
"""

from __future__ import annotations

import argparse
import csv
import time

import numpy as np

from tinyreason.puzzles import maze, sudoku


def rate(fn, n: int) -> tuple[float, list]:
    t = time.perf_counter()
    out = [fn() for _ in range(n)]
    return n / (time.perf_counter() - t), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--csv", default=None, help="also compare the solvers on the puzzles of an official CSV source")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    print(f"{'generator':<38} {'puzzles/s':>10}")
    puzzles = []
    for givens in (36, 28):
        r, out = rate(lambda: sudoku.generate(rng, givens=givens), args.n)
        puzzles += [p for p, _, _ in out]
        print(f"{f'sudoku, {givens} givens (unique)':<38} {r:>10.1f}")
    for size, min_len in ((30, 0), (30, 80), (15, 0)):
        r, _ = rate(lambda: maze.generate(rng, size=size, min_path_len=min_len), args.n)
        print(f"{f'maze {size}x{size}, path >= {min_len}':<38} {r:>10.1f}")

    sets = {"generated": puzzles}
    if args.csv:
        with open(args.csv, newline="") as f:
            sets["csv"] = [sudoku.parse_row(q, a, args.csv)[0] for _, q, a, _ in list(csv.reader(f))[1:]]
    print(f"\n{'solver (count up to 2 solutions)':<38} {'MRV s':>8} {'plain s':>8} {'plain/MRV':>10}")
    for name, ps in sets.items():
        t = time.perf_counter()
        mrv = [sudoku.solve(p, limit=2).solutions for p in ps]
        t_mrv = time.perf_counter() - t
        t = time.perf_counter()
        plain = [sudoku.solve(p, limit=2, mrv=False).solutions for p in ps]
        t_plain = time.perf_counter() - t
        assert all(len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b)) for a, b in zip(mrv, plain))
        print(f"{f'{name} ({len(ps)} puzzles)':<38} {t_mrv:>8.3f} {t_plain:>8.3f} {t_plain / t_mrv:>9.1f}x")


if __name__ == "__main__":
    main()
