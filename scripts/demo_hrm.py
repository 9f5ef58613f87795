"""HRM part of `make demo`: the embedded sudoku checkpoints, evaluated, analysed and ensembled.

    python scripts/demo_hrm.py [OUT_DIR]        (default runs/demo; writes OUT_DIR/hrm/)

1. `hrm eval` of the latest embedded checkpoint on its held-out puzzles (verifier solve rate);
2. `hrm compare` of all checkpoints of the run (table + bar chart);
3. `hrm analyze` of the run (norms, weight change, convergence, recommended checkpoint,
   using the run's own evaluations in metrics.jsonl);
4. `hrm ensemble` (probability average of the last three checkpoints) beside its members.
About a minute on 2 CPU cores; everything offline.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

NAME = "hrm-sudoku-tiny"
CKPT = f"embedded:{NAME}"
DATA = f"embedded:{NAME}/data"


def run(args: list[str]) -> None:
    from tinyreason.cli import main as cli

    print(f"\n$ tinyreason {' '.join(args)}", flush=True)
    rc = cli(args)
    if rc != 0:
        raise SystemExit(f"demo step failed (exit {rc}): tinyreason {' '.join(args)}")


def main(out_base: str = "runs/demo") -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from tinyreason.hrm.checkpoint import find_checkpoints
    from tinyreason.hub import resolve

    out = Path(out_base) / "hrm"
    out.mkdir(parents=True, exist_ok=True)
    run_dir = resolve(CKPT)
    steps = [p for _, p in find_checkpoints(run_dir)]
    t0 = time.time()
    run(["hrm", "eval", "--checkpoint", CKPT, "--data", DATA, "--out", str(out / "eval.json"), "--per-puzzle", "false"])
    run(["hrm", "compare", "--checkpoints", CKPT, "--data", DATA, "--out", str(out / "compare.json")])
    run(["hrm", "analyze", str(run_dir), "--out", str(out / "analysis"), "--eval-results", str(run_dir / "metrics.jsonl"),
         "--metric", "solve_rate"])
    members = [str(p) for p in steps[-3:]]
    run(["hrm", "ensemble", "--checkpoints", *members, "--strategy", "average", "--data", DATA,
         "--out", str(out / "ensemble.json"), "--per-puzzle", "false"])
    print(f"\nHRM demo done in {time.time() - t0:.0f} s. Reports:")
    for rel in ("eval.json", "compare.json", "compare.png", "ensemble.json", "analysis/analysis.md",
                "analysis/norms.png", "analysis/change.png"):
        path = out / rel
        print(f"  {path}{'' if path.exists() else '  (missing)'}")
    print(f"  model card: {run_dir / 'README.md'}; training curves: {run_dir / 'training_curves.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "runs/demo"))
