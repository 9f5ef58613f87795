"""Write the model card (README.md) of an embedded HRM from `tinyreason hrm compare` results.

    python scripts/embedded_hrm_card.py COMPARE_JSON HALTING_TXT DEST_DIR

Called by scripts/build_embedded_hrm.sh; every figure in the card comes from our evaluator.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

ROWS = (("solve_rate", "solve rate (verifier)"), ("exact_accuracy", "exact accuracy"), ("accuracy", "token accuracy"),
        ("average_steps", "ACT steps"), ("step_efficiency", "step efficiency"), ("q_halt_accuracy", "q-halt accuracy"),
        ("lm_loss", "lm loss"), ("puzzles_per_second", "puzzles / s (2 CPU cores, shared)"))


def main(compare_json: str, halting_txt: str, dest: str) -> None:
    dest_dir = Path(dest)
    comp = json.loads(Path(compare_json).read_text())["comparison"]
    cfg = yaml.safe_load((dest_dir / "all_config.yaml").read_text())
    arch = cfg["arch"]
    names = list(comp)
    header = "| metric | " + " | ".join(n.split("/")[-1] for n in names) + " |"
    lines = [header, "|---|" + "---|" * len(names)]
    for key, label in ROWS:
        lines.append(f"| {label} | " + " | ".join(f"{comp[n].get(key, float('nan')):.4g}" for n in names) + " |")
    test = json.loads((dest_dir / "data/test/dataset.json").read_text())
    n_test = comp[names[-1]]["total_puzzles"]
    sizes = sum(p.stat().st_size for p in dest_dir.glob("step_*"))
    halting = Path(halting_txt).read_text().strip() if Path(halting_txt).is_file() else "(not measured)"
    card = f"""# hrm-sudoku-tiny

A tiny HRM (Hierarchical Reasoning Model, official ACT v1 architecture and checkpoint format)
trained from scratch on easy 9x9 sudoku, shipped so that `eval`, `compare`, `analyze` and
`ensemble` have real checkpoints to work on offline. It is a demonstration model, not a
strong solver: see the figures.

- Checkpoints: {", ".join(n.split("/")[-1] for n in names)} of one run ({sizes / 1e6:.1f} MB in all), plain state
  dicts with the official keys (`_orig_mod.model.inner.…`), `all_config.yaml` in the official layout.
- Architecture: hidden {arch["hidden_size"]}, {arch["num_heads"]} heads, H/L layers {arch["H_layers"]}/{arch["L_layers"]},
  H/L cycles {arch["H_cycles"]}/{arch["L_cycles"]}, halt_max_steps {arch["halt_max_steps"]}, {arch["pos_encodings"]} positions,
  puzzle_emb_ndim {arch["puzzle_emb_ndim"]}, forward dtype {arch["forward_dtype"]}, loss {arch["loss"]["loss_type"]}.
- Training: `configs/hrm/train_sudoku_tiny.yaml` with `tinyreason hrm train` (AdamW lr {cfg["lr"]}, warmup
  {cfg["lr_warmup_steps"]}, cosine to {cfg["lr_min_ratio"]}x, batch {cfg["global_batch_size"]}) on 20,000 generated puzzles with
  unique solutions and 72 givens (9 blanks), on 2 shared CPU cores in about a quarter of an hour.
  Curves: `training_curves.png`; log: `metrics.jsonl`.
- Data (`data/`): `test` = {n_test} held-out puzzles from the training generator run (seq_len {test["seq_len"]},
  vocab {test["vocab_size"]}); `train` = 256 puzzles from another seed, never trained on, kept as the held-out
  split for fitting ensemble weights and stackers.
- Rebuild: `scripts/build_embedded_hrm.sh` (data, training, this card).

## Figures on `data/test` (`tinyreason hrm compare`, fixed halting)

{chr(10).join(lines)}

Solve rate counts any valid completion (sudoku verifier); exact accuracy needs the stored
solution (the same here, since the puzzles have unique solutions). 88.9% token accuracy is
what copying the givens alone scores (72 of 81 cells), so the blank cells are right about
{100 * (comp[names[-1]]["accuracy"] - 72 / 81) / (9 / 81):.0f}% of the time at the last step. The high q-halt accuracy is the easy case of
a head that learnt "not solved" (q_halt < 0) for almost every puzzle, which is also why
adaptive halting saves little here.

## Halting (`benchmarks/hrm_halting.py`)

```
{halting}
```

## Use

```bash
tinyreason hrm eval --checkpoint embedded:hrm-sudoku-tiny --data embedded:hrm-sudoku-tiny/data --out eval.json
tinyreason hrm compare --checkpoints embedded:hrm-sudoku-tiny --data embedded:hrm-sudoku-tiny/data --out cmp.json
```
"""
    (dest_dir / "README.md").write_text(card, encoding="utf-8")
    print(f"wrote {dest_dir / 'README.md'}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
