"""`make demo`: the main jobs of both halves on the embedded models, offline, on CPU.

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


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = Path(os.environ.get("DEMO_OUT", "runs/demo"))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for part in ("demo_chess.py", "demo_hrm.py"):
        print(f"\n=== {part} ===", flush=True)
        sys.argv = [part, str(out)]
        runpy.run_path(str(HERE / part), run_name="__main__")
    print(f"\ndemo finished in {time.time() - t0:.0f} s; outputs under {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
