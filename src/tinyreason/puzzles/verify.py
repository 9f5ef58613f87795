"""Token encodings of the official builders and verification of predicted token sequences.

    sudoku  PAD 0, blank 1, digits 1–9 -> 2–10        vocab 11, seq 81
    maze    PAD 0, '#'=1 ' '=2 'S'=3 'G'=4 'o'=5      vocab 6,  seq N*N
    arc     PAD 0, EOS 1, colours 0–9 -> 2–11          vocab 12, seq 900

`verify_tokens` judges a prediction by the puzzle's rules, not by equality with the label
where several answers are right (sudoku: any valid completion; maze: any shortest path).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from tinyreason.errors import UserError
from tinyreason.puzzles import arc, maze, sudoku

Kind = Literal["sudoku", "maze", "arc"]
KINDS: tuple[str, ...] = ("sudoku", "maze", "arc")
VOCAB = {"sudoku": 11, "maze": 6, "arc": 12}

_MAZE_TOKENS = np.zeros(256, dtype=np.uint8)
_MAZE_TOKENS[[ord(c) for c in maze.CHARSET]] = np.arange(1, len(maze.CHARSET) + 1)
_MAZE_CHARS = np.array(["?", *maze.CHARSET])  # '?' marks PAD or out-of-vocabulary tokens


def encode_sudoku(grid: np.ndarray) -> np.ndarray:
    """(9, 9) digits with 0 blank -> (81,) uint8 tokens."""
    return (np.asarray(grid).reshape(81) + 1).astype(np.uint8)


def decode_sudoku(tokens: np.ndarray) -> np.ndarray:
    """(81,) tokens -> (9, 9) digits; PAD and blank become 0, out-of-range tokens -1."""
    t = np.asarray(tokens, dtype=np.int64).reshape(9, 9)
    return np.where(t == 0, 0, np.where((t >= 1) & (t <= 10), t - 1, -1))


def encode_maze(grid: np.ndarray) -> np.ndarray:
    """(N, N) characters -> (N*N,) uint8 tokens."""
    codes = np.array([ord(c) for c in np.asarray(grid).reshape(-1)], dtype=np.int64)
    return _MAZE_TOKENS[codes]


def decode_maze(tokens: np.ndarray) -> np.ndarray:
    """(N*N,) tokens -> (N, N) characters ('?' for PAD / unknown tokens)."""
    t = np.asarray(tokens, dtype=np.int64).reshape(-1)
    n = int(round(len(t) ** 0.5))
    if n * n != len(t):
        raise UserError(f"maze sequence of {len(t)} tokens is not square")
    t = np.where((t >= 1) & (t <= len(maze.CHARSET)), t, 0)
    return _MAZE_CHARS[t].reshape(n, n)


def encode(kind: Kind, grid: np.ndarray) -> np.ndarray:
    if kind == "sudoku":
        return encode_sudoku(grid)
    if kind == "maze":
        return encode_maze(grid)
    if kind == "arc":
        return arc.encode_grid(np.asarray(grid, dtype=np.uint8))
    raise UserError(f"unknown puzzle kind '{kind}' (one of {', '.join(KINDS)})")


def decode(kind: Kind, tokens: np.ndarray) -> np.ndarray:
    if kind == "sudoku":
        return decode_sudoku(tokens)
    if kind == "maze":
        return decode_maze(tokens)
    if kind == "arc":
        return arc.decode_grid(tokens)
    raise UserError(f"unknown puzzle kind '{kind}' (one of {', '.join(KINDS)})")


def verify_tokens(kind: Kind, input_tokens: np.ndarray, predicted_tokens: np.ndarray, label_tokens: np.ndarray) -> bool:
    """Is the prediction a correct answer to the puzzle in `input_tokens`?

    sudoku: a complete valid grid keeping every given (any solution counts);
    maze: the input plus a shortest S→G path of 'o' cells (any shortest path counts);
    arc: the decoded (EOS-cropped) grid equals the decoded label grid exactly.
    """
    pred = np.asarray(predicted_tokens)
    if kind == "sudoku":
        return sudoku.is_valid_solution(decode_sudoku(input_tokens), decode_sudoku(pred))
    if kind == "maze":
        question, answer = decode_maze(input_tokens), decode_maze(pred)
        if (answer == "?").any():
            return False
        return maze.is_shortest_path(question, answer)
    if kind == "arc":
        want, got = arc.decode_grid(label_tokens), arc.decode_grid(pred)
        return want.shape == got.shape and bool(np.array_equal(want, got))
    raise UserError(f"unknown puzzle kind '{kind}' (one of {', '.join(KINDS)})")


def guess_kind(vocab_size: int, seq_len: int) -> Kind:
    """The puzzle kind from dataset metadata (sudoku 11/81, maze 6/N*N, arc 12/900)."""
    if vocab_size == 11 and seq_len == 81:
        return "sudoku"
    if vocab_size == 6 and int(round(seq_len**0.5)) ** 2 == seq_len:
        return "maze"
    if vocab_size == 12 and seq_len == 900:
        return "arc"
    raise UserError(f"cannot tell the puzzle kind from vocab_size={vocab_size}, seq_len={seq_len}; pass --kind")


def check_kind(kind: Kind, seq_len: int) -> Kind:
    """`kind` if its grids fit `seq_len` tokens (sudoku 81, arc 900, maze N*N), else UserError."""
    fits = {"sudoku": seq_len == 81, "arc": seq_len == 900, "maze": seq_len > 0 and int(round(seq_len**0.5)) ** 2 == seq_len}
    if kind not in fits:
        raise UserError(f"unknown puzzle kind '{kind}' (one of {', '.join(KINDS)})")
    if not fits[kind]:
        raise UserError(f"kind '{kind}' does not fit sequences of {seq_len} tokens (sudoku 81, maze N*N, arc 900)")
    return kind
