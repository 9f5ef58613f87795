"""Write the model card (README.md) of the embedded HRM from the measurements of its build.

    python scripts/embedded_hrm_card.py BUILD_DIR DEST_DIR

BUILD_DIR holds what scripts/build_embedded_hrm.sh measured: compare.json (`tinyreason hrm
compare`), ensemble_average.json / ensemble_stack.json (`tinyreason hrm ensemble`),
halting.txt (benchmarks/hrm_halting.py) and train_seconds.txt. Every figure in the card
comes from those files; no absolute machine path is written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import yaml

ROWS = (("solve_rate", "solve rate (verifier)"), ("exact_accuracy", "exact accuracy"), ("accuracy", "token accuracy"),
        ("blank_accuracy", "blank-cell accuracy"), ("average_steps", "ACT steps"), ("step_efficiency", "step efficiency"),
        ("q_halt_accuracy", "q-halt accuracy"), ("q_halt_precision", "P(exact \\| q_halt > 0)"), ("lm_loss", "lm loss"),
        ("puzzles_per_second", "puzzles / s (2 CPU cores, shared)"))


def short(name: str) -> str:
    return name.split("/")[-1]


def table(results: dict[str, dict], givens: int, rows=ROWS) -> list[str]:
    """Markdown table, metrics as rows, one column per model."""
    for agg in results.values():  # token accuracy on the 81 - givens blanks (givens are copied)
        if "accuracy" in agg:
            agg["blank_accuracy"] = (agg["accuracy"] - givens / 81) / (1 - givens / 81)
    lines = ["| metric | " + " | ".join(short(n) for n in results) + " |", "|---|" + "---|" * len(results)]
    for key, label in rows:
        cells = [results[n].get(key) for n in results]
        lines.append(f"| {label} | " + " | ".join("-" if v is None or v != v else f"{v:.4g}" for v in cells) + " |")
    return lines


def count_givens(split_dir: Path) -> int:
    """Givens per puzzle of a generated sudoku split (token 1 = blank cell); one count expected."""
    counts = (np.load(split_dir / "all__inputs.npy") > 1).sum(1)
    if counts.min() != counts.max():
        raise SystemExit(f"{split_dir}: puzzles have {counts.min()}..{counts.max()} givens; the card assumes one count")
    return int(counts[0])


def main(build: str, dest: str) -> None:
    build_dir, dest_dir = Path(build), Path(dest)
    name = dest_dir.name
    comp = json.loads((build_dir / "compare.json").read_text())["comparison"]
    ensembles = {s: json.loads((build_dir / f"ensemble_{s}.json").read_text()) for s in ("average", "stack")
                 if (build_dir / f"ensemble_{s}.json").is_file()}
    cfg = yaml.safe_load((dest_dir / "all_config.yaml").read_text())
    arch = cfg["arch"]
    names = list(comp)
    test = json.loads((dest_dir / "data/test/dataset.json").read_text())
    givens = count_givens(dest_dir / "data/test")
    train_givens = count_givens(build_dir / "data-train/test")
    n_test = comp[names[-1]]["total_puzzles"]
    sizes = sum(p.stat().st_size for p in dest_dir.glob("step_*"))
    halting = (build_dir / "halting.txt").read_text().strip() if (build_dir / "halting.txt").is_file() else "(not measured)"
    train_s = int((build_dir / "train_seconds.txt").read_text()) if (build_dir / "train_seconds.txt").is_file() else None
    ens_lines: list[str] = []
    for strategy, rep in ensembles.items():
        members = {m["name"]: m["aggregate_metrics"] for m in rep["members"]}
        members[f"ensemble ({strategy})"] = rep["aggregate_metrics"]
        weights = rep["checkpoint"].get("weights")
        note = f" Fitted weights: {[round(w, 3) for w in weights]}." if weights else ""
        ens_lines += [f"### `{strategy}` of {', '.join(short(n) for n in list(members)[:-1])}", "",
                      f"Fitted on the held-out `train` split of `data/` (puzzles never trained on).{note}", ""]
        ens_lines += table(members, givens, ROWS[:4] + ROWS[6:7]) + [""]
    best = max(names, key=lambda n: (comp[n]["solve_rate"], comp[n].get("step") or 0))
    card = f"""# {name}

A tiny HRM (Hierarchical Reasoning Model, official ACT v1 architecture and checkpoint format)
trained from scratch on 9x9 sudoku, shipped so that `eval`, `compare`, `analyze` and
`ensemble` have real checkpoints to work on offline. A demonstration model for easy puzzles
({givens} givens), not a general sudoku solver.

- Checkpoints: {", ".join(short(n) for n in names)} of one run ({sizes / 1e6:.1f} MB in all), plain state
  dicts with the official keys (`_orig_mod.model.inner.…`), `all_config.yaml` in the official layout.
- Architecture: hidden {arch["hidden_size"]}, {arch["num_heads"]} heads, H/L layers {arch["H_layers"]}/{arch["L_layers"]},
  H/L cycles {arch["H_cycles"]}/{arch["L_cycles"]}, halt_max_steps {arch["halt_max_steps"]}, {arch["pos_encodings"]} positions,
  puzzle_emb_ndim {arch["puzzle_emb_ndim"]}, forward dtype {arch["forward_dtype"]}, loss {arch["loss"]["loss_type"]}.
- Training: `configs/hrm/train_sudoku_tiny.yaml` with `tinyreason hrm train` (AdamW lr {cfg["lr"]}, weight decay
  {cfg["weight_decay"]}, warmup {cfg["lr_warmup_steps"]}, cosine to {cfg["lr_min_ratio"]}x, batch {cfg["global_batch_size"]}, {short(names[-1]).removeprefix("step_")} steps) on 20,000
  generated puzzles with unique solutions and {train_givens} givens ({81 - train_givens} blanks), one torch thread on 2 shared
  CPU cores: {"not measured" if train_s is None else f"{train_s / 60:.1f} minutes of training wall time"}. Curves: `training_curves.png`; log: `metrics.jsonl`
  (its `eval/*` rows: 200 held-out puzzles of the training kind).
- Departures from the official sudoku recipe (lr 1e-4, batch 768, weight decay 1.0, a far larger
  model and far longer training) are listed, with the short runs that chose them, in the config's comments.
- Data (`data/`), all easy puzzles ({givens} givens, {81 - givens} blanks) from another generator seed, never trained
  on: `test` = {n_test} puzzles for the figures below (seq_len {test["seq_len"]}, vocab {test["vocab_size"]}); `train` = 256
  puzzles kept as the held-out split for fitting ensemble weights and stackers. Trained on harder
  puzzles because {train_givens} givens teach faster than {givens} (more blanks, more signal per puzzle).
- Rebuild: `scripts/build_embedded_hrm.sh` (data, training, every figure of this card).

## Figures on `data/test` (`tinyreason hrm compare`, fixed halting)

{chr(10).join(table(comp, givens))}

Solve rate counts any valid completion (sudoku verifier); exact accuracy needs the stored
solution (the same here, since the puzzles have unique solutions). Token accuracy counts all
81 cells, {100 * givens / 81:.1f}% of which are givens to copy; blank-cell accuracy is the share of the
{81 - givens} blanks filled right. "-": no puzzle got q_halt > 0 (the Q head is never sure of a whole
answer; adaptive halting uses q_halt > q_continue, see below). Best solve rate: `{short(best)}` ({comp[best]["solve_rate"]:.3f}).

## Ensembles beside their members (`tinyreason hrm ensemble`, on `data/test`)

{chr(10).join(ens_lines) if ens_lines else "(not measured)"}
## Halting (`benchmarks/hrm_halting.py`)

```
{halting}
```

## Use

```bash
tinyreason hrm eval --checkpoint embedded:{name} --data embedded:{name}/data --out eval.json
tinyreason hrm compare --checkpoints embedded:{name} --data embedded:{name}/data --out cmp.json
tinyreason hrm ensemble --checkpoints embedded:{name}/{short(names[-2])} embedded:{name}/{short(names[-1])} \\
    --strategy stack --data embedded:{name}/data --out ens.json
```
"""
    (dest_dir / "README.md").write_text(card, encoding="utf-8")
    print(f"wrote {dest_dir / 'README.md'}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(*sys.argv[1:3])
