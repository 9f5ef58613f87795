"""What a uniformly random legal move scores on policy data, by `chess eval`'s own scorer.

    python scripts/random_legal_baseline.py DATA.txt [--mate-in-one MATES.txt] [--cp-loss]
        [--engine-nodes 2000] [--engine-workers 1] [--stockfish PATH] [--out OUT.json]

A floor for `chess eval`'s policy figures: the policy that answers every position with one of
its legal moves, drawn uniformly. Its best-move accuracy, top-5 rate and mate-in-one accuracy
are exact expectations (every legal move is scored with `eval_metrics.score_policy` /
`score_mate_in_one` and weighted 1/n), not a sample. With `--cp-loss` every legal move also gets
live Stockfish's centipawn loss as `chess eval` scores a chosen move (`EnginePool.cp_loss`, the
same clip), averaged per position, then over positions. Positions with few legal moves lift the
rates: with five or fewer, every legal move is among the reference's candidates. The figures
are also given per number of legal moves, where a model's answers can be set beside them.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor

from tinyreason.chess.data import load_samples
from tinyreason.chess.eval_metrics import score_mate_in_one, score_policy
from tinyreason.chess.formats import parse_policy
from tinyreason.chess.rewards import CP_CLIP
from tinyreason.errors import UserError
from tinyreason.fileio import atomic_write_json

# (name, fewest, most legal moves); a position without one (mate, stalemate) has its own bucket
BUCKETS = (("no legal move", 0, 0), ("1-5 legal moves", 1, 5), ("6-20", 6, 20), ("21 or more", 21, 10**6))


def position(prompt: str) -> tuple[str, list[str]]:
    """(FEN, its legal moves in UCI) of a policy prompt; ValueError if it holds no valid position."""
    parsed = parse_policy("", fen=prompt)  # parses the FEN into .board (None if not a valid position)
    if parsed.board is None:
        raise ValueError(f"not a valid position: {prompt.strip()[:90]!r}")
    return parsed.fen, [m.uci() for m in parsed.board.legal_moves]


def _answer(move: str) -> str:
    """A well-formed policy answer naming `move` (its eval is not scored by these figures)."""
    return f"M: {move} E: 0.0 B: {move}"


def policy_expectation(prompt: str, reference: str) -> dict:
    """Expected best-move and top-5 credit of a uniformly random legal move in one position.

    A position without a legal move scores 0 on both (no answer of any policy is legal there)."""
    _, moves = position(prompt)
    if not moves:
        return {"n_legal": 0, "best": 0.0, "top5": 0.0}
    recs = [score_policy(prompt, reference, _answer(m)) for m in moves]
    n = len(moves)
    return {"n_legal": n, "best": sum(r.best_correct for r in recs) / n, "top5": sum(r.in_top5 for r in recs) / n}


def mate_expectation(prompt: str) -> float:
    """Chance that a uniformly random legal move mates at once (0 without a legal move)."""
    _, moves = position(prompt)
    return sum(score_mate_in_one(prompt, _answer(m)).mates for m in moves) / len(moves) if moves else 0.0


def summarize(rows: list[dict]) -> dict:
    """Means of `policy_expectation` rows (and their `cp_loss`, where present): all, then per bucket
    of legal moves (empty buckets left out); the buckets add up to "all"."""
    out = {}
    for name, lo, hi in (("all", 0, 10**6), *BUCKETS):
        sel = [r for r in rows if lo <= r["n_legal"] <= hi]
        if not sel:
            continue
        s = {"n": len(sel), "best_move_accuracy": sum(r["best"] for r in sel) / len(sel),
             "top5_rate": sum(r["top5"] for r in sel) / len(sel)}
        cp = [r["cp_loss"] for r in sel if r.get("cp_loss") is not None]
        if cp:
            s["mean_cp_loss"] = sum(cp) / len(cp)
        out[name] = s
    return out


def add_cp_loss(prompts: list[str], rows: list[dict], stockfish: str | None, nodes: int, workers: int) -> None:
    """Set each row's `cp_loss`: the mean over its position's legal moves of `EnginePool.cp_loss`
    (clipped as `chess eval` clips a chosen move's), or None without a legal move."""
    from tinyreason.chess.engine import EnginePool

    with EnginePool(stockfish, size=workers, nodes=nodes) as pool:
        def one(i: int) -> None:
            fen, moves = position(prompts[i])
            losses = [pool.cp_loss(fen, m, clip=CP_CLIP) for m in moves]
            rows[i]["cp_loss"] = sum(losses) / len(losses) if losses else None

        with ThreadPoolExecutor(workers) as ex:
            list(ex.map(one, range(len(prompts))))


def run(args: argparse.Namespace) -> dict:
    """The figures for the parsed command line; UserError / ValueError on bad input."""
    samples = [s for s in load_samples(args.data) if s.task == "policy"]
    if not samples:
        raise UserError(f"{args.data} has no policy (P:) samples")
    rows = [policy_expectation(s.prompt, s.completion) for s in samples]
    if args.cp_loss:
        add_cp_loss([s.prompt for s in samples], rows, args.stockfish, args.engine_nodes, args.engine_workers)
    result = {"data": args.data, "policy": summarize(rows)}
    if args.mate_in_one:
        mates = load_samples(args.mate_in_one)
        if not mates or any(s.task != "policy" for s in mates):  # as `chess eval --mate-in-one`
            raise UserError(f"{args.mate_in_one}: a mate-in-one set holds policy (P:) samples only")
        chances = [mate_expectation(s.prompt) for s in mates]
        result["mate_in_one"] = {"n": len(chances), "mate_in_one_accuracy": sum(chances) / len(chances)}
    return result


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="RookWorld samples; the policy ones are scored")
    ap.add_argument("--mate-in-one", default=None, help="mate-in-one samples (as `chess eval --mate-in-one`)")
    ap.add_argument("--cp-loss", action="store_true", help="live Stockfish centipawn loss of every legal move")
    ap.add_argument("--engine-nodes", type=int, default=2000)
    ap.add_argument("--engine-workers", type=int, default=1, help="Stockfish processes (and threads) for --cp-loss")
    ap.add_argument("--stockfish", default=None, help="engine path (else $STOCKFISH, PATH, /usr/games)")
    ap.add_argument("--out", default=None, help="write the figures as JSON")
    args = ap.parse_args(argv)
    try:
        result = run(args)
    except (UserError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, s in result["policy"].items():
        cp = f", mean centipawn loss {s['mean_cp_loss']:.0f}" if "mean_cp_loss" in s else ""
        print(f"{name} ({s['n']} positions): best-move {100 * s['best_move_accuracy']:.1f}%, "
              f"top-5 {100 * s['top5_rate']:.1f}%{cp}")
    if "mate_in_one" in result:
        m = result["mate_in_one"]
        print(f"mate-in-one ({m['n']} positions): {100 * m['mate_in_one_accuracy']:.1f}%")
    if args.out:
        atomic_write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
