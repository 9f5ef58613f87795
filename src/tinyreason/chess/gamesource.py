"""Which games a `chess datagen` output holds: a shard's share of the game indices, and a PGN's games by index.

Shard K of N (K counts from 0) is the contiguous index range [K*G//N, (K+1)*G//N) of the G
games, so the N outputs concatenated in K order are the games of one run, in order.
Skipping and counting PGN games parse each game as fully as reading it does, so every
reader splits a file into the same games.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import chess.pgn

from tinyreason.errors import UserError


def parse_shard(text: str) -> tuple[int, int]:
    """`K/N` -> (K, N) with 0 <= K < N: K counts from 0, as a Slurm `--array=0-(N-1)` does."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None:
        raise ValueError("shard must be K/N, e.g. 0/8 for the first of 8 shares")
    k, n = int(match[1]), int(match[2])
    if n < 1 or k >= n:
        raise ValueError("shard K/N needs N >= 1 and K in 0..N-1 (K counts from 0)")
    return k, n


def shard_span(k: int, n: int, total: int) -> tuple[int, int]:
    """Game indices [start, stop) of shard k of n over `total` games: contiguous, in order,
    sizes differing by at most one (a shard may be empty when n > total)."""
    return k * total // n, (k + 1) * total // n


def _open_pgn(path: str):
    logging.getLogger("chess.pgn").setLevel(logging.CRITICAL)  # its errors come back as warnings below
    try:
        return open(path, encoding="utf-8", errors="replace")
    except OSError as e:
        raise UserError(f"cannot read PGN '{path}': {e.strerror}") from None


class _Skim(chess.pgn.BaseVisitor[bool]):
    """Reads a game without building it, to skip or count games. Not the parser's own skip
    mode (`chess.pgn.skip_game`), which can end a malformed game elsewhere than a full read."""

    def handle_error(self, error: Exception) -> None:
        pass  # as a full read: note nothing, go on to the game's end

    def result(self) -> bool:
        return True


def count_pgn_games(path: str, limit: int | None) -> int:
    """Games in a PGN file (at most `limit`), split exactly as `pgn_games` reads them."""
    with _open_pgn(path) as handle:
        count = 0
        while (limit is None or count < limit) and chess.pgn.read_game(handle, Visitor=_Skim):
            count += 1
    if count == 0:
        raise UserError(f"no games found in PGN '{path}'")
    return count


def pgn_games(path: str, start: int, stop: int | None) -> Iterator[tuple[int, tuple[str, list[str]] | None, str | None]]:
    """(index, (start FEN, UCI moves), warning) for games start..stop-1 of a PGN file (stop None: to the end)."""
    with _open_pgn(path) as handle:
        index = 0
        while stop is None or index < stop:
            game = chess.pgn.read_game(handle) if index >= start else None
            if game is None and (index >= start or not chess.pgn.read_game(handle, Visitor=_Skim)):
                if index == 0:
                    raise UserError(f"no games found in PGN '{path}'")
                return
            if game is not None:
                try:
                    start_fen = game.board().fen()
                except ValueError as e:
                    raise UserError(f"{path}: game {index + 1}: malformed FEN header: {e}") from None
                moves = [m.uci() for m in game.mainline_moves()]
                warning = f"game {index + 1}: {game.errors[0]} (kept the {len(moves)} moves before it)" if game.errors else None
                yield index, (start_fen, moves), warning
            index += 1
