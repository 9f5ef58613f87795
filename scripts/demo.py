"""`make demo`: the main jobs of both halves on the embedded models, offline, on CPU.

0. Chess data: Stockfish self-play on a handful of positions, written as RookWorld policy
   and environment samples and printed (needs Stockfish; `tinyreason chess datagen`).
1. Chess: evaluate the embedded RookWorld model, GRPO from it for a short budget,
   evaluate again and print a before/after table (scripts/demo_chess.py).
2. Puzzles: evaluate the embedded HRM checkpoints, analyse the run, and compare an
   ensemble with its members (scripts/demo_hrm.py).
Outputs go under runs/demo/.
"""

from __future__ import annotations

import os
import runpy
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = ("demo_chess.py", "demo_hrm.py")


def datagen_demo(out: Path) -> None:
    """Two short self-play games, three positions each: prints every sample line."""
    from tinyreason.chess.datagen import DatagenConfig, run

    path = out / "datagen" / "samples.txt"
    run(DatagenConfig(out=str(path), games=2, positions_per_game=3, max_plies=40, nodes=5000,
                      illegal_share=0.2, overwrite=True))
    print(path.read_text(encoding="utf-8"), end="")


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = Path(os.environ.get("DEMO_OUT", "runs/demo"))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    from tinyreason.errors import UserError

    print("=== chess data generation ===", flush=True)
    try:
        datagen_demo(out)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for part in PARTS:
        print(f"\n=== {part} ===", flush=True)
        sys.argv = [part, str(out)]
        runpy.run_path(str(HERE / part), run_name="__main__")
    print(f"\ndemo finished in {time.time() - t0:.0f} s; outputs under {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
