"""Write the model card (README.md) of the embedded TRM from the measurements of its build.

    python scripts/embedded_trm_card.py BUILD_DIR DEST_DIR

BUILD_DIR holds what scripts/build_embedded_trm.sh measured: compare_{easy,train_kind,hard}.json
(`tinyreason hrm compare` of the embedded HRM's last checkpoint and the shipped TRM ones),
blank_{easy,train_kind,hard}.json (scripts/sudoku_blank_eval.py: per-puzzle results of the
HRM's last checkpoint, then TRM checkpoints, the last one last), train_time.txt (wall, user,
system seconds of the training process) and machine.txt (load averages before and after
training, lscpu's model name, CPU count and flags). The HRM side of the
learning curves comes from the embedded HRM's metrics.jsonl. Every figure in the card comes
from those files; no absolute machine path is written.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

SETS = (("easy", "easy held-out (HRM's shipped `data/`)"), ("train_kind", "training kind (test split of the training data)"),
        ("hard", "hard held-out (`data-hard/`)"))
ROWS = (("solve_rate", "solve rate (verifier)"), ("accuracy", "token accuracy"), ("average_steps", "ACT steps"),
        ("q_halt_accuracy", "q-halt accuracy"), ("lm_loss", "lm loss"))


def label(name: str) -> str:
    """`embedded:trm-sudoku-tiny/step_4500` or a path -> `TRM step_4500`."""
    model, step = name.split("/")[-2:]
    return f"{model.split(':')[-1].split('-')[0].upper()} {step}"


def givens_of(blank: dict) -> int:
    counts = {81 - b for r in blank["results"].values() for b in r["blanks"]}
    if len(counts) != 1:
        raise SystemExit(f"{blank['data']}: puzzles have {sorted(counts)} givens; the card assumes one count")
    return counts.pop()


def blank_stats(r: dict) -> dict[str, float]:
    """Means and standard errors over puzzles (puzzles are the independent units)."""
    solved = np.asarray(r["solved"], dtype=float)
    frac = np.asarray(r["blanks_right"]) / np.asarray(r["blanks"])
    n = len(solved)
    return {"n": n, "solve": solved.mean(), "solve_sd": math.sqrt(solved.mean() * (1 - solved.mean()) / n),
            "blank": sum(r["blanks_right"]) / sum(r["blanks"]), "blank_sd": frac.std(ddof=1) / math.sqrt(n),
            "givens_changed": float(np.mean(r["givens_changed"]))}


def paired(a: dict, b: dict) -> dict[str, float]:
    """b - a on the same puzzles, with the standard error of the per-puzzle differences."""
    ds = np.asarray(b["solved"], dtype=float) - np.asarray(a["solved"], dtype=float)
    db = np.asarray(b["blanks_right"]) / np.asarray(b["blanks"]) - np.asarray(a["blanks_right"]) / np.asarray(a["blanks"])
    n = len(ds)
    return {"solve": ds.mean(), "solve_sd": ds.std(ddof=1) / math.sqrt(n), "blank": db.mean(), "blank_sd": db.std(ddof=1) / math.sqrt(n)}


def compare_table(comp: dict) -> list[str]:
    lines = ["| metric | " + " | ".join(label(n) for n in comp) + " |", "|---|" + "---|" * len(comp)]
    for key, name in ROWS:
        cells = [comp[n].get(key) for n in comp]
        lines.append(f"| {name} | " + " | ".join("-" if v is None or v != v else f"{v:.4g}" for v in cells) + " |")
    return lines


def eval_curve(metrics: Path) -> dict[int, tuple[float, float, float]]:
    """step -> (minutes since the first logged row, eval token accuracy, eval exact accuracy)."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    t0 = rows[0]["time"] - (rows[0]["time"] - rows[1]["time"]) / (rows[1]["step"] - rows[0]["step"]) * rows[0]["step"]
    return {r["step"]: ((r["time"] - t0) / 60, r["eval/accuracy"], r["eval/exact_accuracy"]) for r in rows if "eval/accuracy" in r}


def main(build: str, dest: str) -> None:
    build_dir, dest_dir = Path(build), Path(dest)
    name = dest_dir.name
    hrm_dir = dest_dir.parent / "hrm-sudoku-tiny"
    cfg = yaml.safe_load((dest_dir / "all_config.yaml").read_text())
    arch = cfg["arch"]
    comps = {k: json.loads((build_dir / f"compare_{k}.json").read_text())["comparison"] for k, _ in SETS}
    blanks = {k: json.loads((build_dir / f"blank_{k}.json").read_text()) for k, _ in SETS}
    wall, user, system = (float(x) for x in (build_dir / "train_time.txt").read_text().split()[-3:])
    machine = (build_dir / "machine.txt").read_text().splitlines()
    loads = [m.group(1) for line in machine if (m := re.search(r"load average: ([\d.]+)", line))]
    cpu = next((line.split(":", 1)[1].strip() for line in machine if line.startswith("Model name")), "unknown CPU")
    cores = next((line.split(":", 1)[1].strip() for line in machine if line.startswith("CPU(s)")), "?")
    flags = set(next((line.split(":", 1)[1].split() for line in machine if line.startswith("Flags")), []))
    isa = ", ".join(f for f, on in (("AVX-512", "avx512f" in flags), ("AMX", "amx_bf16" in flags), ("AVX2", "avx2" in flags)) if on)
    ckpts = sorted(dest_dir.glob("step_*"), key=lambda p: int(p.name.split("_")[1]))
    steps = int(ckpts[-1].name.split("_")[1])  # the run's last step: the last checkpoint is shipped
    sizes = sum(p.stat().st_size for p in ckpts)
    numbers = {k: sum(v.numel() for v in torch.load(path, map_location="cpu", weights_only=True).values())
               for k, path in (("TRM", ckpts[-1]), ("HRM", max(hrm_dir.glob("step_*"), key=lambda p: int(p.name.split("_")[1]))))}
    hrm_card = (hrm_dir / "README.md").read_text()
    hrm_minutes = float(m.group(1)) if (m := re.search(r"([\d.]+) minutes of training wall time", hrm_card)) else float("nan")
    trm_curve, hrm_curve = eval_curve(dest_dir / "metrics.jsonl"), eval_curve(hrm_dir / "metrics.jsonl")
    hrm_steps = max(hrm_curve)

    summary = ["| held-out set | givens | model | solve rate | blank cells right | givens changed / puzzle |", "|---|---|---|---|---|---|"]
    diffs = ["| held-out set | solve rate TRM - HRM | blank cells right TRM - HRM |", "|---|---|---|"]
    for key, title in SETS:
        res = blanks[key]["results"]
        names = list(res)
        givens = givens_of(blanks[key])
        for n in names:
            s = blank_stats(res[n])
            summary.append(f"| {title.split(' (')[0]} | {givens} | {label(n)} | {s['solve']:.3f} ± {s['solve_sd']:.3f} | "
                           f"{s['blank']:.3f} ± {s['blank_sd']:.3f} | {s['givens_changed']:.2f} |")
        d = paired(res[names[0]], res[names[-1]])
        diffs.append(f"| {title.split(' (')[0]} | {d['solve']:+.3f} ± {d['solve_sd']:.3f} | {d['blank']:+.3f} ± {d['blank_sd']:.3f} |")
    n_puzzles = blank_stats(next(iter(blanks["hard"]["results"].values())))["n"]
    stats = {k: [blank_stats(r) for r in blanks[k]["results"].values()] for k, _ in SETS}  # HRM, TRM..., TRM last
    hrm_name = next(iter(comps["easy"]))
    converted = {k: (comps[k][hrm_name]["accuracy"] - givens_of(blanks[k]) / 81) / (1 - givens_of(blanks[k]) / 81) for k in ("easy", "hard")}
    evaluated = list(blanks["hard"]["results"])  # HRM, TRM ..., TRM last
    first_trm, last_trm = label(evaluated[1]), label(evaluated[-1])
    findings = [
        f"At about equal training time (TRM {(user + system) / 60:.1f} CPU minutes, {wall / 60:.1f} wall minutes on the shared machine; "
        f"HRM {hrm_minutes} wall minutes, its CPU time not recorded) the TRM solves {stats['easy'][-1]['solve']:.0%} of the easy "
        f"puzzles (HRM {stats['easy'][0]['solve']:.0%}) and {stats['train_kind'][-1]['solve']:.0%} of those of the training kind "
        f"(HRM {stats['train_kind'][0]['solve']:.0%}). The timing noise does not matter here: the TRM's {first_trm.split()[1]}, after about "
        f"{int(first_trm.split('_')[1]) * (user + system) / steps / 60:.0f} CPU minutes, solves {stats['easy'][1]['solve']:.0%} and "
        f"{stats['train_kind'][1]['solve']:.0%}. The HRM figures are re-measured in this build; its own card's come from another CPU, "
        f"where bf16 kernels round differently, and may differ by a puzzle or two.",
        f"Neither model is a sudoku solver: on the hard puzzles the TRM solves {stats['hard'][-1]['solve']:.1%} and fills "
        f"{stats['hard'][-1]['blank']:.1%} of the blanks, the HRM {stats['hard'][0]['solve']:.1%} and {stats['hard'][0]['blank']:.1%} "
        f"(chance 11.1%). With 0 of {n_puzzles} solved the standard error says nothing; by the rule of three the solve rate is "
        f"below {3 / n_puzzles:.3f} with 95% confidence (and, for {n_puzzles} of {n_puzzles}, above {1 - 3 / n_puzzles:.3f}).",
    ]
    if len(stats["hard"]) > 2 and stats["hard"][1]["blank"] > stats["hard"][-1]["blank"]:
        findings.append(f"The TRM's {first_trm.split()[1]} fills more blanks of the hard puzzles ({stats['hard'][1]['blank']:.1%}) than "
                        f"its {last_trm.split()[1]}: longer training on 9-blank puzzles specialises it to them.")
    compare_parts = []
    for key, title in SETS:
        compare_parts += [f"### {title}: {givens_of(blanks[key])} givens", "", *compare_table(comps[key]), ""]
    curve = ["| step | HRM minutes | HRM token acc | HRM exact | TRM minutes | TRM token acc | TRM exact |", "|---|---|---|---|---|---|---|"]
    for step in sorted(set(trm_curve) | set(hrm_curve)):
        h, t = hrm_curve.get(step), trm_curve.get(step)
        hc = f"{h[0]:.1f} | {h[1]:.4f} | {h[2]:.3f}" if h else "- | - | -"
        tc = f"{t[0]:.1f} | {t[1]:.4f} | {t[2]:.3f}" if t else "- | - | -"
        curve.append(f"| {step} | {hc} | {tc} |")

    card = f"""# {name}

A tiny TRM (Tiny Recursive Models: `TinyRecursiveReasoningModel_ACTV1`, the official
architecture and checkpoint format) trained from scratch on CPU on the same sudoku as
`embedded:hrm-sudoku-tiny`, shipped so that `eval`, `compare`, `analyze` and `ensemble` have a
TRM to work on offline, beside the HRM. A demonstration model, not a general sudoku solver.

- Checkpoints: {", ".join(p.name for p in ckpts)} of one {steps}-step run ({sizes / 1e6:.1f} MB in all), plain state
  dicts with the official keys (`_orig_mod.model.inner.…`), `all_config.yaml` in TRM's layout
  (`data_paths`, `ema`, `evaluators`). They hold the EMA weights (`ema: {str(cfg["ema"]).lower()}`, rate {cfg["ema_rate"]}),
  as TRM's trainer saves them; the `eval/*` rows of `metrics.jsonl` are of the EMA model too.
- Architecture: one L_level network of {arch["L_layers"]} blocks, `mlp_t` {str(arch["mlp_t"]).lower()} (a SwiGLU across the
  {81 + (arch["puzzle_emb_len"] or 1)} positions instead of attention), pos_encodings {arch["pos_encodings"]}, hidden {arch["hidden_size"]},
  expansion {arch["expansion"]}, H/L cycles {arch["H_cycles"]}/{arch["L_cycles"]}, halt_max_steps {arch["halt_max_steps"]}, no_ACT_continue {str(arch["no_ACT_continue"]).lower()},
  puzzle_emb_ndim {arch["puzzle_emb_ndim"]} (puzzle_emb_len {arch["puzzle_emb_len"]}), forward dtype {arch["forward_dtype"]}, loss {arch["loss"]["loss_type"]};
  {numbers["TRM"]:,} stored numbers (the HRM: {numbers["HRM"]:,}).
- Training: `configs/hrm/train_sudoku_trm_tiny.yaml` with `tinyreason hrm train` (AdamW lr {cfg["lr"]}, weight
  decay {cfg["weight_decay"]}, warmup {cfg["lr_warmup_steps"]}, cosine to {cfg["lr_min_ratio"]}x, batch {cfg["global_batch_size"]}, {steps} steps) on the HRM model's
  20,000 generated puzzles (72 givens, 9 blanks, generator seed 0). The config's comments give
  the choices, the official recipe they depart from, and the pilot runs (mlp_t against attention).
- Compute: one torch thread on an {cpu} ({cores} cores{", " + isa if isa else ""}; lscpu). The machine was shared with
  other jobs (load average {" at the start, ".join(loads[:2]) + " at the end" if len(loads) >= 2 else "unknown"}), so the wall time is longer than the
  process's CPU time: {wall / 60:.1f} minutes wall, {(user + system) / 60:.1f} minutes CPU for {steps} steps
  ({wall / steps:.3f} s wall, {(user + system) / steps:.3f} s CPU per step, evaluations and start-up included).
  The HRM model trained {hrm_steps} steps in {hrm_minutes} minutes of wall time (its card; another day, load unknown).
- Data: the easy held-out puzzles are the HRM's `embedded:hrm-sudoku-tiny/data` (77 givens, not
  duplicated here); `data-hard/` holds {n_puzzles} held-out puzzles a person would call a puzzle: 35 givens,
  46 blanks, unique solutions, generator seed 2 (`test` split only). Nothing here was trained on.
- Rebuild: `scripts/build_embedded_trm.sh` (data, training, every figure of this card).

## HRM and TRM on {n_puzzles} held-out puzzles each (fixed halting)

{chr(10).join("- " + f for f in findings)}

{chr(10).join(summary)}

"Blank cells right" counts the cells that were blank in the input and hold the right digit
(`scripts/sudoku_blank_eval.py`; a model that overwrites a given gets no credit for it, and
"givens changed" counts those). The HRM card's blank-cell figure is converted from token
accuracy instead, assuming every given is copied; the HRM overwrites some, so that conversion
gives it less: {converted["easy"]:.3f} on the easy set ({stats["easy"][0]["blank"]:.3f} counted here) and {converted["hard"]:.3f} on the hard
set ({stats["hard"][0]["blank"]:.3f} counted here). Chance for a blank is 1/9 = 0.111. ± is one standard error over puzzles: binomial for solve rates
(sqrt(p(1-p)/{n_puzzles}): 0.035 at p = 0.5), the spread of per-puzzle fractions for blank cells.

Paired differences on the same puzzles ({last_trm} - {label(hrm_name)}, ± the standard error of the per-puzzle differences):

{chr(10).join(diffs)}

## Learning curves at equal steps (`eval/*` rows of both runs: the same 200 puzzles with 72 givens)

Minutes are wall time since the start of each run, on different days and loads: compare the
steps, and the CPU times above, rather than these minutes.

{chr(10).join(curve)}

## Every shipped checkpoint beside the HRM's last (`tinyreason hrm compare`, fixed halting)

{chr(10).join(compare_parts)}
Solve rate counts any valid completion (sudoku verifier). Token accuracy counts all 81 cells,
givens included. Curves: `training_curves.png`; log: `metrics.jsonl`.

## Use

```bash
tinyreason hrm eval --checkpoint embedded:{name} --data embedded:{name}/data-hard --out eval.json
tinyreason hrm compare --checkpoints embedded:hrm-sudoku-tiny/step_{hrm_steps} embedded:{name}/{ckpts[-1].name} \\
    --data embedded:hrm-sudoku-tiny/data --out cmp.json
tinyreason hrm ensemble --checkpoints embedded:hrm-sudoku-tiny/step_{hrm_steps} embedded:{name}/{ckpts[-1].name} \\
    --strategy average --data embedded:hrm-sudoku-tiny/data --out ens.json
```
"""
    (dest_dir / "README.md").write_text(card, encoding="utf-8")
    print(f"wrote {dest_dir / 'README.md'}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(*sys.argv[1:3])
