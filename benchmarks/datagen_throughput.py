"""Datagen throughput: positions/s with 1 vs 2 worker processes (one Stockfish each), same run.

    python benchmarks/datagen_throughput.py [--games 8] [--nodes 5000] [--workers 1 2]

Also checks that every worker count writes byte-identical files (seeded games, node limit).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tinyreason.chess.datagen import DatagenConfig, run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--games", type=int, default=8)
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--max-plies", type=int, default=80)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    rates: dict[int, float] = {}
    outputs: dict[int, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in args.workers:
            out = Path(tmp) / f"w{workers}.txt"
            cfg = DatagenConfig(out=str(out), games=args.games, nodes=args.nodes, workers=workers,
                                max_plies=args.max_plies, overwrite=True)
            state = run(cfg)
            rates[workers] = state["positions"] / state["seconds"]
            outputs[workers] = out.read_bytes()
            print(f"workers={workers}: {state['positions']} positions in {state['seconds']:.1f} s "
                  f"= {rates[workers]:.1f} positions/s")
    base = args.workers[0]
    for workers in args.workers[1:]:
        print(f"speed-up {workers} vs {base} workers: {rates[workers] / rates[base]:.2f}x")
    same = len(set(outputs.values())) == 1
    print(f"identical output for all worker counts: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
