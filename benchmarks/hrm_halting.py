"""Puzzles per second with fixed vs adaptive ACT halting, on an embedded HRM checkpoint.

    .venv/bin/python benchmarks/hrm_halting.py [--checkpoint embedded:hrm-sudoku-tiny]
        [--data embedded:hrm-sudoku-tiny/data] [--batch-size 64] [--repeats 3] [--rule q_compare]

Fixed halting runs every puzzle for halt_max_steps ACT steps (the official evaluation);
adaptive halting stops each puzzle when its Q head says halt and computes only the rows
still running. Both are timed on the same puzzles in the same process (best of --repeats),
with the solve rate of each so the speed-up is read next to what it costs in answers.
"""

from __future__ import annotations

import argparse
import time

import torch

from tinyreason.hrm.checkpoint import load_checkpoint
from tinyreason.hrm.evaluate import resolve_dataset
from tinyreason.hrm.eval_loop import run_eval
from tinyreason.hrm.metrics import aggregate
from tinyreason.puzzles.dataset import open_split


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="embedded:hrm-sudoku-tiny")
    ap.add_argument("--data", default="embedded:hrm-sudoku-tiny/data")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rule", choices=("q_compare", "q_positive"), default="q_compare")
    args = ap.parse_args()
    loaded = load_checkpoint(args.checkpoint)
    data = open_split(resolve_dataset(args.data), "test")
    results = {}
    for halt in ("fixed", "adaptive"):
        best, agg = float("inf"), None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            per = run_eval(loaded.model, data, loss_type=loaded.config.loss.loss_type, batch_size=args.batch_size,
                           halt=halt, adaptive_rule=args.rule, show_progress=False)
            best = min(best, time.perf_counter() - t0)
            agg = aggregate(per, loaded.config.halt_max_steps)
        results[halt] = (len(data) / best, agg)
    print(f"checkpoint {args.checkpoint} ({loaded.path.name}) | {len(data)} puzzles | batch {args.batch_size} | torch threads {torch.get_num_threads()}")
    print(f"{'halting':<10} {'puzzles/s':>10} {'avg steps':>10} {'solve rate':>11} {'exact':>7}")
    for halt, (rate, agg) in results.items():
        print(f"{halt:<10} {rate:>10.1f} {agg['average_steps']:>10.2f} {agg['solve_rate']:>11.3f} {agg['exact_accuracy']:>7.3f}")
    print(f"adaptive / fixed throughput ratio: {results['adaptive'][0] / results['fixed'][0]:.2f}x (rule {args.rule})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
