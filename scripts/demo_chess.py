"""Chess half of `make demo`: evaluate the embedded RookWorld model, GRPO from it, evaluate again.

    python scripts/demo_chess.py [OUT] [--seed N]   (default runs/demo, seed 0; writes OUT/chess/)

Offline and on CPU: the model, the held-out positions, the GRPO prompts and the
mate-in-one set ship in src/tinyreason/embedded/rookworld-tiny/ (data/ holds the sets;
none of their positions occurs in the model's SFT data). With Stockfish installed, the GRPO
reward `policy_move_quality` scores each best move by its centipawn loss and the evaluation
adds the mean centipawn loss; without it the demo turns that reward off (the reference
candidates and python-chess decide the others) and says so. Each model is evaluated twice:
greedy, and sampled at the GRPO run's temperature (the policy GRPO actually trains). Prints a
before/after table; OUT/chess/ holds the evaluations (JSON + per-sample records), the GRPO run (config,
metrics.jsonl, samples, checkpoints, curves PNG) and summary.json.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = "embedded:rookworld-tiny"
EVAL_LIMIT = 800  # held-out samples (all 400 policy + 400 env, interleaved), and up to 800 mate positions

ROWS = [  # (label, results section, key, higher is better)
    ("policy: legal best-move rate", "policy", "legal_best_move_rate", True),
    ("policy: best-move accuracy", "policy", "best_move_accuracy", True),
    ("policy: top-5 rate", "policy", "top5_rate", True),
    ("policy: format-valid rate", "policy", "format_valid_rate", True),
    ("policy: mean centipawn loss", "policy", "mean_cp_loss", False),
    ("policy: mean reward", "policy", "mean_reward", True),
    ("env: exact next-FEN rate", "env", "fen_exact_rate", True),
    ("env: exact completion rate", "env", "exact_rate", True),
    ("env: mean reward", "env", "mean_reward", True),
    ("mate-in-one accuracy", "mate_in_one", "mate_in_one_accuracy", True),
]


GRPO_CONFIG = ROOT / "configs" / "demo_grpo.yaml"


def run_eval(model: str, data_dir: Path, out: Path, name: str, temperature: float = 0.0) -> dict:
    import json

    from tinyreason.chess import evaluate

    argv = ["--model", model, f"temperature={temperature}", "seed=0", "--data", str(data_dir / "heldout.txt"), "--mate-in-one", str(data_dir / "mate_in_one.txt"),
            "--limit", str(EVAL_LIMIT), "--batch-size", "100", "--device", "cpu", "--dtype", "bfloat16",
            "--out", str(out / f"{name}.json"), "--records", str(out / f"{name}_records.jsonl"),
            "engine_nodes=2000", "show=1"]
    evaluate.main(argv)
    return json.loads((out / f"{name}.json").read_text())


def engine_overrides(say) -> list[str]:
    """GRPO overrides for a machine without Stockfish: `policy_move_quality` off (said via `say`)."""
    from tinyreason.chess.engine import find_stockfish
    from tinyreason.errors import UserError

    try:
        find_stockfish()
    except UserError as e:
        say(f"[yellow]{e}: GRPO runs without policy_move_quality[/]")
        return ["reward_weights.policy.policy_move_quality=0"]
    return []


def fmt(key: str, value) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if key in ("mean_cp_loss", "mean_reward") else f"{value:.1%}"


def change(key: str, b, a, higher: bool) -> str:
    if a is None or b is None:
        return ""
    d = a - b
    good = (d > 0) == higher if d != 0 else None
    colour = "green" if good else "red" if good is False else "white"
    return f"[{colour}]{d:+.3f}[/]" if key in ("mean_cp_loss", "mean_reward") else f"[{colour}]{d * 100:+.1f} pts[/]"


def main(argv: list[str]) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rich.table import Table

    from tinyreason import cli
    from tinyreason.config import load_config
    from tinyreason.fileio import atomic_write_json
    from tinyreason.hub import EMBEDDED_DIR
    from tinyreason.lm.grpo_train import GRPOTrainConfig
    from tinyreason.lm.state import latest_checkpoint
    from tinyreason.runlog import console

    import argparse

    ap = argparse.ArgumentParser(description="chess part of the demo")
    ap.add_argument("out", nargs="?", default="runs/demo")
    ap.add_argument("--seed", type=int, default=None, help="GRPO seed (default: the config's); for noise runs")
    args = ap.parse_args(argv)
    out = Path(args.out) / "chess"
    out.mkdir(parents=True, exist_ok=True)
    data_dir = EMBEDDED_DIR / "rookworld-tiny" / "data"
    sample_t = load_config(GRPOTrainConfig, GRPO_CONFIG).sampling.temperature  # the policy GRPO trains
    t0 = time.time()

    console.rule("1/3 evaluate the embedded model on held-out positions")
    before = run_eval(MODEL, data_dir, out, "eval_before")
    before_s = run_eval(MODEL, data_dir, out, "eval_before_sampled", sample_t)
    t_eval = time.time() - t0

    console.rule("2/3 GRPO from it (configs/demo_grpo.yaml)")
    run_dir = out / "grpo"
    extra = ([] if args.seed is None else [f"seed={args.seed}"]) + engine_overrides(console.print)
    rc = cli.main(["chess", "grpo", "--config", str(GRPO_CONFIG), f"model={MODEL}",
                   f"train_data=[{data_dir / 'grpo_prompts.txt'}]", "train_split=null", "eval_split=null",
                   f"run_dir={run_dir}", "resume=false", "overwrite=true"] + extra)
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        console.print(f"[red]GRPO wrote no checkpoint (exit {rc}); see {run_dir}[/]")
        return 1
    t_grpo = time.time() - t0 - t_eval

    console.rule(f"3/3 evaluate the GRPO checkpoint {ckpt.name}")
    after = run_eval(str(ckpt), data_dir, out, "eval_after")
    after_s = run_eval(str(ckpt), data_dir, out, "eval_after_sampled", sample_t)

    summary = {"model": MODEL, "checkpoint": str(ckpt), "grpo_exit_code": rc, "seed": args.seed,
               "sample_temperature": sample_t, "rows": {}}
    sizes = (f"{before['policy']['n']} policy, {before['env']['n']} env, "
             f"{before['mate_in_one']['n']} mate-in-one held-out positions")
    for mode, (bef, aft) in (("greedy", (before, after)), (f"sampled at T {sample_t}", (before_s, after_s))):
        table = Table(title=f"RookWorld-tiny before/after GRPO, {mode} ({sizes})")
        for col in ("metric", "before", "after", "change"):
            table.add_column(col, justify="left" if col == "metric" else "right")
        for label, section, key, higher in ROWS:
            b, a = bef.get(section, {}).get(key), aft.get(section, {}).get(key)
            table.add_row(label, fmt(key, b), fmt(key, a), change(key, b, a, higher))
            summary["rows"][f"{mode.split()[0]}.{section}.{key}"] = {"before": b, "after": a}
        console.print(table)
    note = before.get("policy", {}).get("cp_loss_note")
    if note:
        console.print(f"centipawn loss: {note}")
    summary["seconds"] = {"eval_before": round(t_eval, 1), "grpo": round(t_grpo, 1), "total": round(time.time() - t0, 1)}
    atomic_write_json(out / "summary.json", summary)
    console.print(f"chess demo: {summary['seconds']['total']:.0f} s (eval {t_eval:.0f} s, GRPO {t_grpo:.0f} s); "
                  f"run folder {run_dir} (metrics.jsonl, samples.jsonl, checkpoints/, curves PNG)")
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    if code:  # under scripts/demo.py (runpy) a SystemExit(0) would end the whole demo early
        sys.exit(code)
