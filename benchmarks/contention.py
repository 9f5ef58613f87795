"""Step time with one busy competing process vs quiet: `chess grpo` beside HF `generate`, one run.

The demo's GRPO run (configs/demo_grpo.yaml: `embedded:rookworld-tiny`, its GRPO prompts, bf16,
6 prompts x G=8, up to 110 new tokens at T 0.7) at torch's default thread count, for `--steps`
steps after one warm-up step; "busy" runs one `yes > /dev/null` beside it, started before the
side's process and killed after it, so a competitor that was there from the start (the
watchdog's harder case: no quiet steps to compare with). Each side and condition runs in its
own fresh process, quiet then busy. Sides:

- `grpo`: `cpu_watchdog=false`, the trainer without the watchdog;
- `grpo-watchdog`: the default (`tinyreason.contention.StepWatchdog`);
- `grpo-passive`: `cpu_watchdog=false` under `OMP_WAIT_POLICY=PASSIVE` (libgomp's idle threads
  sleep at once instead of spinning; it reads the variable when it loads, so only a fresh process
  can have it);
- `generate`: HF `model.generate` on the same model with bf16 weights (what the sampler decodes
  with), the demo's sampling (T 0.7, no top-k/top-p), 3 policy + 3 environment prompts x 8 return
  sequences, 110 new tokens (no stop: fixed work), `--calls` calls after one warm-up call.

Prints each side's median (and mean) time per step or call, quiet and busy, and busy/quiet; the
target is grpo-watchdog's median <= 2.5x. The mean shows the steps a side spends before it adapts.

    .venv/bin/python benchmarks/contention.py [--steps 10] [--calls 3] [--sides grpo,grpo-watchdog,grpo-passive,generate]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIDES = ("grpo", "grpo-watchdog", "grpo-passive", "generate")
MODEL = "embedded:rookworld-tiny"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def grpo_times(side: str, steps: int, out: Path) -> dict:
    """`chess grpo` as the demo runs it, `steps` + 1 steps; the step times after the first."""
    from tinyreason import cli
    from tinyreason.hub import EMBEDDED_DIR
    from tinyreason.runlog import read_metrics

    data = EMBEDDED_DIR / "rookworld-tiny" / "data" / "grpo_prompts.txt"
    run = out / "run"
    rc = cli.main(["chess", "grpo", "--config", str(ROOT / "configs" / "demo_grpo.yaml"), f"model={MODEL}",
                   f"train_data=[{data}]", "train_split=null", "eval_split=null", f"run_dir={run}",
                   f"max_steps={steps + 1}", "save_every=0", "log_samples_every=0", "time_budget_min=null",
                   f"cpu_watchdog={'true' if side == 'grpo-watchdog' else 'false'}"])
    recs = read_metrics(run)
    threads = [r["contention/threads"] for r in recs if "contention/threads" in r]
    return {"rc": rc, "times": [r["time_step"] for r in recs if "time_step" in r and r["step"] > 1],
            "threads": threads}


def generate_times(calls: int) -> dict:
    """HF `generate` on the demo's model, prompts and sampling: 6 prompts x 8 sequences x 110 tokens."""
    import torch

    from tinyreason.chess.data import load_samples
    from tinyreason.hub import EMBEDDED_DIR
    from tinyreason.lm.model import load_model

    model, tok = load_model(MODEL, "cpu", "bfloat16")
    model.eval()
    samples = load_samples(EMBEDDED_DIR / "rookworld-tiny" / "data" / "grpo_prompts.txt")
    prompts = [s.prompt for s in samples if s.task == "policy"][:3] + [s.prompt for s in samples if s.task == "env"][:3]
    ids = [tok(p).input_ids for p in prompts]
    width = max(map(len, ids))
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids])  # (6, P) left-padded
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])  # (6, P)

    def call(new_tokens: int) -> float:
        t0 = time.perf_counter()
        with torch.inference_mode():
            model.generate(input_ids=input_ids, attention_mask=mask, do_sample=True, num_return_sequences=8,
                           max_new_tokens=new_tokens, min_new_tokens=new_tokens, temperature=0.7, top_k=0,
                           top_p=1.0, pad_token_id=pad, eos_token_id=None)
        return time.perf_counter() - t0

    call(8)  # warm-up
    return {"rc": 0, "times": [call(110) for _ in range(calls)], "threads": []}


def run_side(side: str, busy: bool, args) -> dict:
    """One side in a fresh process (`--worker`), beside one `yes` when `busy`."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if side == "grpo-passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        cmd = [sys.executable, __file__, "--worker", side, "--steps", str(args.steps), "--calls", str(args.calls),
               "--out", str(out)]
        competitor = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) if busy else None
        try:
            proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        finally:
            if competitor is not None:
                competitor.kill()
                competitor.wait()
        said = [ln for ln in proc.stderr.splitlines() if ln.startswith("CPU contention")]  # the watchdog's line
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
        result = out / "result.json"
        if proc.returncode != 0 or not result.is_file():
            return {"rc": proc.returncode, "times": [], "threads": [], "said": said}
        return {**json.loads(result.read_text()), "said": said}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=10, help="timed GRPO steps per run (after one warm-up step)")
    ap.add_argument("--calls", type=int, default=3, help="timed generate calls per run (after one warm-up call)")
    ap.add_argument("--sides", default=",".join(SIDES))
    ap.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        res = generate_times(args.calls) if args.worker == "generate" else grpo_times(args.worker, args.steps, args.out)
        (args.out / "result.json").write_text(json.dumps(res))
        return
    sides = args.sides.split(",")
    unknown = sorted(set(sides) - set(SIDES))
    if unknown:
        sys.exit(f"error: unknown side(s) {', '.join(unknown)} (have: {', '.join(SIDES)})")
    import torch

    print(f"{cpu_name()}, {len(os.sched_getaffinity(0))} usable CPUs, load {os.getloadavg()[0]:.2f}; torch "
          f"{torch.__version__}, default threads {torch.get_num_threads()}; busy = one `yes > /dev/null` beside the "
          f"side; GRPO {args.steps} steps, generate {args.calls} calls (after a warm-up each)", flush=True)
    for side in sides:
        res = {cond: run_side(side, cond == "busy", args) for cond in ("quiet", "busy")}
        if not all(r["times"] for r in res.values()):
            print(f"{side:>14}: failed (exit codes {res['quiet']['rc']}, {res['busy']['rc']})", flush=True)
            continue
        med = {c: statistics.median(r["times"]) for c, r in res.items()}
        mean = {c: statistics.fmean(r["times"]) for c, r in res.items()}
        unit = "call" if side == "generate" else "step"
        note = "  (target <= 2.5x)" if side == "grpo-watchdog" else ""
        note += f"  busy thread changes {res['busy']['threads']}" if res["busy"]["threads"] else ""
        note += f"  quiet thread changes {res['quiet']['threads']}" if res["quiet"]["threads"] else ""
        note += "".join(f"\n{'':>16}{c}: {line}" for c, r in res.items() for line in r["said"])
        print(f"{side:>14}: median s/{unit} quiet {med['quiet']:7.2f}  busy {med['busy']:7.2f}  "
              f"busy/quiet {med['busy'] / med['quiet']:5.2f}x   (mean {mean['quiet']:.2f} / {mean['busy']:.2f}, "
              f"{mean['busy'] / mean['quiet']:.2f}x; worst busy {max(res['busy']['times']):.2f}){note}", flush=True)


if __name__ == "__main__":
    main()
