"""What a uniformly random legal move scores on policy data, by `chess eval`'s own scorer.

    python scripts/random_legal_baseline.py DATA.txt [--mate-in-one MATES.txt] [--cp-loss]
        [--engine-nodes 2000] [--stockfish PATH] [--out OUT.json]

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
import json
import sys

from tinyreason.chess.data import load_samples
from tinyreason.chess.eval_metrics import score_mate_in_one, score_policy
from tinyreason.chess.formats import board_or_none, parse_policy
from tinyreason.chess.rewards import CP_CLIP
from tinyreason.fileio import atomic_write_text

BUCKETS = (("1-5 legal moves", 1, 5), ("6-20", 6, 20), ("21 or more", 21, 10**6))


def legal_moves(prompt: str) -> list[str]:
    board = board_or_none(parse_policy("", fen=prompt).fen)
    if board is None:
        raise ValueError(f"not a position: {prompt[:80]!r}")
    return [m.uci() for m in board.legal_moves]


def _answer(move: str) -> str:
    return f"M: {move} E: 0.0 B: {move}"


def policy_expectation(prompt: str, reference: str) -> dict:
    """Expected best-move and top-5 credit of a uniformly random legal move in one position."""
    moves = legal_moves(prompt)
    if not moves:  # mate or stalemate: every answer is scored as the eval scores it, none legal
        return {"n_legal": 0, "best": 0.0, "top5": 0.0}
    recs = [score_policy(prompt, reference, _answer(m)) for m in moves]
    n = len(moves)
    return {"n_legal": n, "best": sum(r.best_correct for r in recs) / n, "top5": sum(r.in_top5 for r in recs) / n}


def mate_expectation(prompt: str) -> float:
    """Chance that a uniformly random legal move mates at once."""
    moves = legal_moves(prompt)
    return sum(score_mate_in_one(prompt, _answer(m)).mates for m in moves) / len(moves) if moves else 0.0


def summarize(rows: list[dict]) -> dict:
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


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="RookWorld samples; the policy ones are scored")
    ap.add_argument("--mate-in-one", default=None, help="mate-in-one samples (as `chess eval --mate-in-one`)")
    ap.add_argument("--cp-loss", action="store_true", help="live Stockfish centipawn loss of every legal move")
    ap.add_argument("--engine-nodes", type=int, default=2000)
    ap.add_argument("--engine-workers", type=int, default=1)
    ap.add_argument("--stockfish", default=None, help="engine path (else $STOCKFISH, PATH, /usr/games)")
    ap.add_argument("--out", default=None, help="write the figures as JSON")
    args = ap.parse_args(argv)
    samples = [s for s in load_samples(args.data) if s.task == "policy"]
    if not samples:
        print(f"error: {args.data} has no policy samples", file=sys.stderr)
        return 2
    rows = [policy_expectation(s.prompt, s.completion) for s in samples]
    if args.cp_loss:
        from tinyreason.chess.engine import EnginePool

        with EnginePool(args.stockfish, size=args.engine_workers, nodes=args.engine_nodes) as pool:
            for s, r in zip(samples, rows):
                fen = parse_policy("", fen=s.prompt).fen
                losses = [pool.cp_loss(fen, m, clip=CP_CLIP) for m in legal_moves(s.prompt)]
                r["cp_loss"] = sum(losses) / len(losses) if losses else None
    result = {"data": args.data, "policy": summarize(rows)}
    if args.mate_in_one:
        mates = [mate_expectation(s.prompt) for s in load_samples(args.mate_in_one) if s.task == "policy"]
        result["mate_in_one"] = {"n": len(mates), "mate_in_one_accuracy": sum(mates) / len(mates) if mates else None}
    for name, s in result["policy"].items():
        cp = f", mean centipawn loss {s['mean_cp_loss']:.0f}" if "mean_cp_loss" in s else ""
        print(f"{name} ({s['n']} positions): best-move {100 * s['best_move_accuracy']:.1f}%, "
              f"top-5 {100 * s['top5_rate']:.1f}%{cp}")
    if "mate_in_one" in result:
        m = result["mate_in_one"]
        print(f"mate-in-one ({m['n']} positions): {100 * m['mate_in_one_accuracy']:.1f}%")
    if args.out:
        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
