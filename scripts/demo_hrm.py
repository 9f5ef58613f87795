"""HRM part of `make demo`: the embedded sudoku checkpoints, evaluated, analysed and ensembled,
then the embedded TRM beside the HRM.

    python scripts/demo_hrm.py [OUT_DIR]        (default runs/demo; writes OUT_DIR/hrm/)

1. `hrm eval` of the latest embedded checkpoint on its held-out puzzles (verifier solve rate);
2. `hrm compare` of all checkpoints of the run (table + bar chart);
3. `hrm analyze` of the run (norms, weight change, convergence), recommending the checkpoint
   with the best solve rate in the compare results of step 2;
4. `hrm ensemble` (stacked: logistic regression fitted on the held-out `train` split) of the
   last three checkpoints beside its members;
5. `hrm compare` of the last HRM and the last TRM checkpoint (`embedded:trm-sudoku-tiny`,
   trained on the same puzzles) on the easy held-out puzzles and on the hard ones (35 givens);
then a summary with the paths of the reports and PNGs. About a minute and a half on 2 CPU
cores; everything offline.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

NAME = "hrm-sudoku-tiny"
CKPT = f"embedded:{NAME}"
DATA = f"embedded:{NAME}/data"
TRM = "embedded:trm-sudoku-tiny"
HARD = f"{TRM}/data-hard"


def run(args: list[str]) -> None:
    from tinyreason.cli import main as cli

    print(f"\n$ tinyreason {' '.join(args)}", flush=True)
    rc = cli(args)
    if rc != 0:
        raise SystemExit(f"demo step failed (exit {rc}): tinyreason {' '.join(args)}")


def summary(out: Path, card: Path) -> None:
    """One table: every checkpoint and the ensemble, then the analysis verdict and the files."""
    from rich.table import Table

    from tinyreason.runlog import console

    comp = json.loads((out / "compare.json").read_text())["comparison"]
    ens = json.loads((out / "ensemble.json").read_text())
    analysis = json.loads((out / "analysis" / "analysis.json").read_text())
    members = {m["name"] for m in ens["members"]}
    rows = {name.split("/")[-1] + (" (member)" if name in members else ""): agg for name, agg in comp.items()}
    rows[f"ensemble: {ens['checkpoint']['strategy']} of {len(members)}"] = ens["aggregate_metrics"]
    table = Table(title=f"HRM demo summary: {NAME} on its {comp[next(iter(comp))]['total_puzzles']} held-out puzzles")
    for col in ("model", "solve rate", "token acc", "q-halt acc", "ACT steps"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, agg in rows.items():
        table.add_row(name, f"{agg['solve_rate']:.3f}", f"{agg['accuracy']:.4f}", f"{agg['q_halt_accuracy']:.3f}", f"{agg['average_steps']:.2f}")
    console.print(table)
    best_member = max(m["aggregate_metrics"]["solve_rate"] for m in ens["members"])
    gain = ens["aggregate_metrics"]["solve_rate"] - best_member
    console.print(f"ensemble vs its best member: solve rate {ens['aggregate_metrics']['solve_rate']:.3f} vs {best_member:.3f} ({gain:+.3f})")
    console.print(f"analysis: {analysis['verdict']}; recommended checkpoint step {analysis['recommended']} ({analysis['recommended_reason']})")
    families = Table(title="HRM vs TRM (last checkpoints, same training puzzles; model cards give training time and noise)")
    for col in ("held-out puzzles", "model", "solve rate", "token acc", "ACT steps"):
        families.add_column(col, justify="left" if col in ("held-out puzzles", "model") else "right")
    for title, file in (("easy (77 givens)", "hrm_vs_trm_easy.json"), ("hard (35 givens)", "hrm_vs_trm_hard.json")):
        for name, agg in json.loads((out / file).read_text())["comparison"].items():
            model, step = name.split("/")[-2:]  # e.g. embedded:trm-sudoku-tiny/step_4500 -> TRM step_4500
            families.add_row(title, f"{model.split(':')[-1].split('-')[0].upper()} {step}", f"{agg['solve_rate']:.3f}",
                             f"{agg['accuracy']:.4f}", f"{agg['average_steps']:.2f}")
    console.print(families)
    console.print("\nreports and plots:")
    for rel in ("eval.json", "compare.json", "compare.png", "ensemble.json", "ensemble.json.stacker.json",
                "analysis/analysis.md", "analysis/norms.png", "analysis/change.png", "hrm_vs_trm_easy.json", "hrm_vs_trm_hard.json"):
        path = out / rel
        console.print(f"  {path}{'' if path.exists() else '  (missing)'}")
    console.print(f"  model card: {card / 'README.md'}\n  training curves: {card / 'training_curves.png'}")
    console.print(f"  TRM model card: {card.parent / TRM.split(':')[1] / 'README.md'}")


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
    run(["hrm", "analyze", str(run_dir), "--out", str(out / "analysis"), "--eval-results", str(out / "compare.json"),
         "--metric", "solve_rate"])
    members = [f"{CKPT}/{p.name}" for p in steps[-3:]]
    run(["hrm", "ensemble", "--checkpoints", *members, "--strategy", "stack", "--data", DATA,
         "--out", str(out / "ensemble.json"), "--per-puzzle", "false"])
    last_trm = f"{TRM}/{find_checkpoints(resolve(TRM))[-1][1].name}"
    for data, file in ((DATA, "hrm_vs_trm_easy.json"), (HARD, "hrm_vs_trm_hard.json")):
        run(["hrm", "compare", "--checkpoints", f"{CKPT}/{steps[-1].name}", last_trm, "--data", data,
             "--out", str(out / file), "--per-puzzle", "false"])
    print(f"\nHRM demo done in {time.time() - t0:.0f} s.\n")
    summary(out, run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "runs/demo"))
