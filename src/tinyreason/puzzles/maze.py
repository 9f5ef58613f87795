"""Mazes: generator, BFS shortest path, verifier, and the official text format.

A maze is an (N, N) array of characters from `# SGo` (wall, free, start, goal, path), the
Maze-Hard sources' format. The label is the question with one shortest S→G path drawn as
'o' on the free cells between S and G. Moves are 4-connected.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from tinyreason.errors import UserError

CHARSET = "# SGo"
WALL, FREE, START, GOAL, PATH = CHARSET
_STEPS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def to_grid(text: str, where: str) -> np.ndarray:
    """A CSV cell (N*N characters, row-major) as an (N, N) array of 1-char strings."""
    n = int(round(len(text) ** 0.5))
    if n == 0 or n * n != len(text):
        raise UserError(f"{where}: maze of {len(text)} cells is not square")
    unknown = sorted(set(text) - set(CHARSET))
    if unknown:
        raise UserError(f"{where}: unknown maze characters {''.join(unknown)!r} (allowed: '{CHARSET}')")
    return np.array(list(text), dtype="<U1").reshape(n, n)


def parse_row(question: str, answer: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert one source row (question and answer mazes of the same size)."""
    q, a = to_grid(question, where), to_grid(answer, where)
    if q.shape != a.shape:
        raise UserError(f"{where}: question is {q.shape[0]}x{q.shape[0]} but answer is {a.shape[0]}x{a.shape[0]}")
    for name, grid in (("question", q), ("answer", a)):
        if (grid == START).sum() != 1 or (grid == GOAL).sum() != 1:
            raise UserError(f"{where}: the {name} needs exactly one S and one G")
    if not is_shortest_path(q, a):
        raise UserError(f"{where}: the answer is not the question with a shortest S-G path drawn as 'o' (unsolvable or malformed row)")
    return q, a


def _find(grid: np.ndarray, ch: str) -> tuple[int, int]:
    r, c = np.argwhere(grid == ch)[0]
    return int(r), int(c)


def bfs_distances(grid: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    """Steps from `start` to every non-wall cell (-1 where unreachable or a wall)."""
    n_r, n_c = grid.shape
    dist = np.full(grid.shape, -1, dtype=np.int64)
    dist[start] = 0
    queue = deque([start])
    open_ = grid != WALL
    while queue:
        r, c = queue.popleft()
        for dr, dc in _STEPS:
            rr, cc = r + dr, c + dc
            if 0 <= rr < n_r and 0 <= cc < n_c and open_[rr, cc] and dist[rr, cc] < 0:
                dist[rr, cc] = dist[r, c] + 1
                queue.append((rr, cc))
    return dist


def shortest_path(grid: np.ndarray) -> np.ndarray | None:
    """The maze with one BFS shortest S→G path drawn as 'o', or None if G is unreachable."""
    goal = _find(grid, GOAL)
    dist = bfs_distances(grid, _find(grid, START))
    if dist[goal] < 0:
        return None
    out = grid.copy()
    r, c = goal
    while dist[r, c] > 1:  # walk back downhill from G to S
        for dr, dc in _STEPS:
            rr, cc = r + dr, c + dc
            if 0 <= rr < grid.shape[0] and 0 <= cc < grid.shape[1] and dist[rr, cc] == dist[r, c] - 1:
                r, c = rr, cc
                break
        out[r, c] = PATH
    return out


def is_shortest_path(question: np.ndarray, answer: np.ndarray) -> bool:
    """True when `answer` is `question` plus 'o' cells forming a shortest S→G path.

    The 'o' cells must lie on free cells and everything else must be unchanged. If the
    cells S, G and the 'o's connect S to G and there are exactly (shortest distance − 1)
    of them, they are exactly one shortest path (any connecting set has at least that many).
    """
    q, a = np.asarray(question), np.asarray(answer)
    if q.shape != a.shape:
        return False
    path = a == PATH
    if not np.all(q[path] == FREE) or not np.array_equal(np.where(path, FREE, a), q):
        return False
    if (q == START).sum() != 1 or (q == GOAL).sum() != 1:
        return False
    start, goal = _find(q, START), _find(q, GOAL)
    best = bfs_distances(q, start)[goal]
    if best < 0 or int(path.sum()) != best - 1:
        return False
    on_path = np.where(path | (q == START) | (q == GOAL), FREE, WALL)
    return bfs_distances(on_path, start)[goal] == best


def generate(
    rng: np.random.Generator, size: int = 30, min_path_len: int = 0, loop_fraction: float = 0.1, max_tries: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """An N×N maze (question, label) whose shortest S→G path has ≥ `min_path_len` steps.

    A depth-first (recursive-backtracker) maze is carved on the odd lattice inside a wall
    border, then `loop_fraction` of the remaining inner walls between two corridors are
    knocked out so several routes exist and "shortest" matters. S is drawn among the free
    cells and G among those at least `min_path_len` steps from S (one BFS; a few starts per
    layout, up to `max_tries` layouts). Maze-Hard itself was made differently (see
    docs/puzzles.md).
    """
    if size < 3:
        raise UserError(f"maze size must be at least 3, got {size}")
    need = max(min_path_len, 2)
    for _ in range(max_tries):
        grid = _carve(rng, size, loop_fraction)
        free = np.argwhere(grid == FREE)
        for _ in range(4):
            start = tuple(free[rng.integers(len(free))])
            far = np.argwhere(bfs_distances(grid, start) >= need)  # one BFS gives every candidate goal
            if len(far):
                goal = tuple(far[rng.integers(len(far))])
                q = grid.copy()
                q[start], q[goal] = START, GOAL
                label = shortest_path(q)
                assert label is not None
                return q, label
    raise UserError(f"could not generate a {size}x{size} maze with a path of {min_path_len}+ steps; lower --min-path-len")


def _carve(rng: np.random.Generator, size: int, loop_fraction: float) -> np.ndarray:
    grid = np.full((size, size), WALL, dtype="<U1")
    cells = [(r, c) for r in range(1, size - 1, 2) for c in range(1, size - 1, 2)]
    start = cells[rng.integers(len(cells))]
    grid[start] = FREE
    stack = [start]
    while stack:
        r, c = stack[-1]
        nbrs = [(r + 2 * dr, c + 2 * dc, dr, dc) for dr, dc in _STEPS]
        nbrs = [n for n in nbrs if 0 < n[0] < size - 1 and 0 < n[1] < size - 1 and grid[n[0], n[1]] == WALL]
        if not nbrs:
            stack.pop()
            continue
        rr, cc, dr, dc = nbrs[rng.integers(len(nbrs))]
        grid[r + dr, c + dc] = FREE
        grid[rr, cc] = FREE
        stack.append((rr, cc))
    if size % 2 == 0:  # the odd lattice leaves row/column N-2 solid: open half its cells next to a corridor
        edge = size - 2
        for k in range(1, size - 1):
            for cell, inward in (((edge, k), (edge - 1, k)), ((k, edge), (k, edge - 1))):
                if grid[inward] == FREE and rng.random() < 0.5:
                    grid[cell] = FREE
    inner = grid[1:-1, 1:-1]  # a view: knock out walls between two corridors
    walls = np.argwhere(inner == WALL)
    between = [
        (r, c) for r, c in walls
        if (0 < r < inner.shape[0] - 1 and inner[r - 1, c] == FREE and inner[r + 1, c] == FREE)
        or (0 < c < inner.shape[1] - 1 and inner[r, c - 1] == FREE and inner[r, c + 1] == FREE)
    ]
    if between and loop_fraction > 0:
        pick = rng.choice(len(between), size=int(round(loop_fraction * len(between))), replace=False)
        for k in pick:
            inner[tuple(between[k])] = FREE
    return grid


def render(grid: np.ndarray) -> str:
    """The maze as text, one row per line."""
    return "\n".join("".join(row) for row in np.asarray(grid))
