"""Per-puzzle blank-cell results of sudoku checkpoints, for model cards (noise, paired differences).

    python scripts/sudoku_blank_eval.py OUT.json DATA CHECKPOINT [CHECKPOINT ...]

DATA: a sudoku dataset folder (or embedded:<name>/<folder>), test split. For each checkpoint
(HRM or TRM; fixed halting, as `tinyreason hrm eval`) writes per puzzle: blank cells
(input token 1), blanks filled right, givens changed, and the verifier's verdict. Unlike the
token-accuracy conversion of the HRM card, blanks are counted from the predictions
themselves, so a model that overwrites givens is not credited with blanks.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from tinyreason.hrm.checkpoint import load_checkpoint
from tinyreason.hrm.eval_loop import run_eval
from tinyreason.hub import resolve
from tinyreason.puzzles.dataset import open_split

BLANK = 1  # sudoku tokens: 0 pad, 1 blank cell, 2..10 the digits 1..9


def blank_results(checkpoint: str, data) -> dict[str, list]:
    loaded = load_checkpoint(checkpoint)
    per = run_eval(loaded.model, data, loss_type=loaded.config.loss.loss_type, keep=("predictions",), show_progress=False)
    rows = per["example_index"]
    inputs, labels = np.asarray(data.inputs[rows]), np.asarray(data.labels[rows])  # (N, 81)
    blank = inputs == BLANK
    right = per["predictions"] == labels
    return {
        "blanks": blank.sum(1).tolist(),
        "blanks_right": (blank & right).sum(1).tolist(),
        "givens_changed": (~blank & ~right).sum(1).tolist(),
        "solved": per["solved"].astype(bool).tolist(),
        "step": loaded.step,
    }


def main(out: str, data_ref: str, *checkpoints: str) -> None:
    data = open_split(resolve(data_ref), "test")
    results = {ckpt: blank_results(ckpt, data) for ckpt in checkpoints}
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"data": data_ref, "results": results}, f)
    for ckpt, r in results.items():
        print(f"{ckpt}: blank-cell accuracy {sum(r['blanks_right']) / sum(r['blanks']):.4f}, solved {np.mean(r['solved']):.3f}")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
