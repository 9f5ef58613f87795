"""The environment ("arbiter") ground truth: what follows a move, computed with python-chess.

Matches the original RookWorld `ChessEnvironment.step` (dev/data/arbiter/generate_rollouts.py):
reward 0.001 for a legal move, 1.0 when the mover wins (checkmate), 0.5 for a draw,
-1.0 for an illegal move; terminated = game over, truncated = illegal move; the new FEN
is `board.fen()` (en-passant square only when a legal capture exists).

Game end is `board.outcome()` with python-chess's default `claim_draw=False`, as in the
original: checkmate, stalemate, insufficient material, the 75-move rule and fivefold
repetition end the game; claimable draws (50-move rule, threefold) do not. Since the
position is rebuilt from the prompt's FEN, repetitions cannot be seen (a <= 10-move
history cannot hold five repetitions of one position), so fivefold never fires here.

Departure from the original: it pushed well-formed but illegal moves (python-chess's
`push` does not check legality), producing impossible positions. Here any move not in
`board.legal_moves` is illegal: FEN unchanged, reward -1.0, terminated 0, truncated 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import chess

from tinyreason.chess.formats import env_completion, env_prompt, parse_env_prompt, to_move
from tinyreason.errors import UserError

LEGAL_REWARD = 0.001
WIN_REWARD = 1.0
DRAW_REWARD = 0.5
ILLEGAL_REWARD = -1.0
HISTORY_LEN = 10


@dataclass(frozen=True)
class ArbiterResult:
    fen: str
    reward: float
    terminated: bool
    truncated: bool

    def completion(self) -> str:
        return env_completion(self.fen, self.reward, self.terminated, self.truncated)


def parse_board(fen: str) -> chess.Board:
    """A board for `fen`; UserError (one line) for a malformed FEN or an impossible position."""
    try:
        board = chess.Board(fen)
    except ValueError as e:
        raise UserError(f"malformed FEN '{fen}': {e}") from None
    if not board.is_valid():
        raise UserError(f"invalid position in FEN '{fen}': {board.status()!r}")
    return board


def parse_move(board: chess.Board, uci: str) -> chess.Move:
    """The legal move `uci` in `board`, or UserError naming the move and position."""
    move = to_move(uci)
    if move is None:
        raise UserError(f"malformed UCI move '{uci}' (expected e.g. e2e4 or e7e8q)")
    if move not in board.legal_moves:
        raise UserError(f"illegal move '{uci}' in position {board.fen()}")
    return move


def step(board: chess.Board, uci: str) -> ArbiterResult:
    """Apply `uci` to a copy of `board` (anything not legal, malformed included, is illegal)."""
    move = to_move(uci)
    if move is None or move not in board.legal_moves:
        return ArbiterResult(board.fen(), ILLEGAL_REWARD, False, True)
    after = board.copy(stack=False)
    after.push(move)
    outcome = after.outcome()
    if outcome is None:
        reward = LEGAL_REWARD
    elif outcome.winner is None:
        reward = DRAW_REWARD
    else:
        reward = WIN_REWARD if outcome.winner != after.turn else -WIN_REWARD
    return ArbiterResult(after.fen(), reward, outcome is not None, False)


def arbiter_step(fen: str, uci: str) -> ArbiterResult:
    return step(parse_board(fen), uci)


def arbiter_completion(prompt: str) -> str:
    """The exact ground-truth completion `new_fen+reward+terminated+truncated` for an `A:` prompt."""
    parsed = parse_env_prompt(prompt)
    if not parsed.complete:
        raise UserError(f"not an environment prompt (expected 'A: fen+move+history+'): {prompt[:120]!r}")
    return step(parse_board(parsed.fen), parsed.move).completion()


def make_env_sample(board: chess.Board, uci: str, history: list[str]) -> tuple[str, str]:
    """(prompt, completion) for playing `uci` in `board` after `history` (moves before it)."""
    recent = (list(history) + [uci])[-HISTORY_LEN:]
    return env_prompt(board.fen(), uci, recent), step(board, uci).completion()
