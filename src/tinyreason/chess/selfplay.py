"""One game's worth of RookWorld samples: positions from self-play or a PGN game, annotated by Stockfish.

`game_samples` is a pure function of (settings, game index, moves) given a fresh-hash engine,
which is what makes `tinyreason chess datagen` reproducible for any number of workers.
Self-play: a randomised opening (0..`opening_plies` random plies), then Stockfish's best
move, or with probability `random_move_share` a random legal move, until the game ends
(claimable draws included, so games do not shuffle to the ply cap) or `max_plies`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import chess

from tinyreason.chess.arbiter import make_env_sample
from tinyreason.chess.engine import Candidate, Engine, make_limit
from tinyreason.chess.formats import eval_str, format_policy, is_uci


@dataclass
class Ply:
    board: chess.Board
    history: list[str]  # moves played before this position (whole game)
    move: str  # the move played from here
    lines: list[Candidate] | None = None  # MultiPV analysis, when made


@dataclass
class GameResult:
    index: int
    lines: list[str] = field(default_factory=list)
    positions: int = 0
    policy: int = 0
    env: int = 0
    warning: str | None = None


def game_rng(seed: int, index: int) -> random.Random:
    """Seed per game (string seeding hashes with SHA-512: stable across runs and platforms)."""
    return random.Random(f"tinyreason-datagen:{seed}:{index}")


def play_selfplay(s: Any, rng: random.Random, analyse) -> list[Ply]:
    """One self-play game from the start position (see the module docstring); `analyse(board)`
    gives the engine's MultiPV lines, kept on the ply so its policy sample needs no second search."""
    board, history, plies = chess.Board(), [], []
    opening = rng.randint(0, s.opening_plies)
    while len(plies) < s.max_plies and not board.is_game_over(claim_draw=True):
        legal = sorted(m.uci() for m in board.legal_moves)
        lines = None
        if len(plies) < opening or rng.random() < s.random_move_share:
            move = rng.choice(legal)
        else:
            lines = analyse(board)
            move = lines[0].move if lines else rng.choice(legal)
        plies.append(Ply(board.copy(stack=False), list(history), move, lines))
        board.push_uci(move)
        history.append(move)
    return plies


def replay_game(start_fen: str, moves: list[str]) -> list[Ply]:
    """The plies of a given game (a PGN's main line), to be analysed afterwards."""
    board, history, plies = chess.Board(start_fen), [], []
    for move in moves:
        plies.append(Ply(board.copy(stack=False), list(history), move))
        board.push_uci(move)
        history.append(move)
    return plies


def _moves_after_which(board: chess.Board, test: Callable[[chess.Board], bool]) -> list[str]:
    """Legal moves (UCI, sorted) whose resulting position passes `test`."""
    out = []
    for move in board.legal_moves:
        board.push(move)
        if test(board):
            out.append(move.uci())
        board.pop()
    return sorted(out)


def mating_moves(board: chess.Board) -> list[str]:
    return _moves_after_which(board, chess.Board.is_checkmate)


def ending_moves(board: chess.Board) -> list[str]:
    """Legal moves after which the game is over (mate, stalemate, insufficient material, 75 moves)."""
    return _moves_after_which(board, lambda b: b.outcome() is not None)


def illegal_move(board: chess.Board, rng: random.Random) -> str:
    """A well-formed UCI move that is not legal: half the time one that leaves the king in
    check (the hard case), otherwise an own piece moved to a random square."""
    pinned = sorted(m.uci() for m in board.pseudo_legal_moves if not board.is_legal(m))
    if pinned and rng.random() < 0.5:
        return rng.choice(pinned)
    own = sorted(chess.SquareSet(board.occupied_co[board.turn]))
    while True:
        frm, to = rng.choice(own), rng.randrange(64)
        uci = chess.square_name(frm) + chess.square_name(to)
        if frm != to and is_uci(uci) and chess.Move.from_uci(uci) not in board.legal_moves:
            return uci


def policy_line(ply: Ply, rng: random.Random, compact: bool, best: str | None = None) -> str | None:
    """`P: … M: … E: … B: …` with candidates shuffled; B: is Stockfish's best (both colours).

    Stockfish's best is its top-eval line: line 1, except at small node limits where a lower
    MultiPV line can finish with a higher score (~7% of positions at 1,500 nodes). Taking the
    top eval keeps `B:` consistent with `E:`, which is how evaluation and rewards read "best"
    (ties keep Stockfish's order).
    """
    if not ply.lines:
        return None
    pairs = [(c.move, eval_str(c.pawns)) for c in ply.lines]
    rng.shuffle(pairs)
    best = best or max(ply.lines, key=lambda c: c.pawns).move  # max() keeps the first of ties
    return format_policy(ply.board.fen(), [m for m, _ in pairs], [e for _, e in pairs], best, compact)


def env_line(ply: Ply, rng: random.Random, s: Any) -> str:
    """The played move, or (by the configured shares) an illegal or a game-ending move."""
    move = ply.move
    if rng.random() < s.illegal_share:
        move = illegal_move(ply.board, rng)
    elif s.ending_share > 0:
        ending = ending_moves(ply.board)
        if ending and rng.random() < s.ending_share:
            move = rng.choice(ending)
    prompt, completion = make_env_sample(ply.board, move, ply.history)
    return prompt + completion


def game_samples(s: Any, index: int, engine: Engine, game: tuple[str, list[str]] | None = None) -> GameResult:
    """All sample lines of game `index` (self-play when `game` is None, else (start FEN, UCI moves))."""
    rng = game_rng(s.seed, index)
    limit = make_limit(nodes=s.nodes, time=s.time)
    engine.new_game()

    def analyse(board: chess.Board) -> list[Candidate]:
        return engine.analyse(board, limit, multipv=s.multipv)

    plies = play_selfplay(s, rng, analyse) if game is None else replay_game(*game)
    if s.mate_in_one:
        chosen = [(p, m) for p in plies if (m := mating_moves(p.board))]
    else:
        chosen = [(p, None) for p in plies]
        if s.positions_per_game is not None and len(chosen) > s.positions_per_game:
            keep = sorted(rng.sample(range(len(chosen)), s.positions_per_game))
            chosen = [chosen[i] for i in keep]
    result = GameResult(index)
    compact = s.format == "compact"
    for ply, mates in chosen:
        result.positions += 1
        if s.policy or s.mate_in_one:
            if ply.lines is None:
                ply.lines = analyse(ply.board)
            best = None
            if mates:
                best = ply.lines[0].move if ply.lines and ply.lines[0].move in mates else mates[0]
            line = policy_line(ply, rng, compact, best)
            if line is not None:
                result.lines.append(line)
                result.policy += 1
        if s.env and not s.mate_in_one:
            result.lines.append(env_line(ply, rng, s))
            result.env += 1
    return result
