"""`tinyreason hrm predict`: run an HRM checkpoint on an .npz of inputs and save its outputs.

Reads `inputs` (N, seq_len), `puzzle_identifiers` (N,) and optionally `labels` from the
.npz; writes `logits` (final ACT step, float32), `q_halt_logits`, `q_continue_logits`,
`predictions` (argmax) and `steps` (plus `labels` when given) atomically, and the resolved
config next to it as `<out>.config.yaml`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from tinyreason import fileio
from tinyreason.config import StrictModel, dump_config, parse_command
from tinyreason.errors import UserError
from tinyreason.fileio import atomic_write_text
from tinyreason.hrm.checkpoint import load_checkpoint
from tinyreason.hrm.inference import predict_arrays
from tinyreason.runlog import console

IGNORE_LABEL = -100  # official ignore_label_id


class PredictConfig(StrictModel):
    """Run an HRM checkpoint (official format) on inputs from an .npz file."""

    checkpoint: str = Field(..., description="weights file, run folder (latest step_N) or Hub repo id")
    inputs: str = Field(..., description=".npz with inputs, puzzle_identifiers (labels optional)")
    out: str = Field(..., description="output .npz")
    arch_config: str | None = Field(None, description="architecture YAML (default: all_config.yaml next to the checkpoint)")
    halt: Literal["fixed", "adaptive"] = Field("fixed", description="fixed = exactly halt_max_steps (official eval)")
    adaptive_rule: Literal["q_compare", "q_positive"] = "q_compare"
    dtype: Literal["auto", "float32", "bfloat16"] = Field("auto", description="forward dtype; auto = the checkpoint's forward_dtype")
    device: str = "auto"
    batch_size: int = Field(256, ge=1)


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of an inputs .npz (must hold `inputs`), with one-line errors."""
    if not Path(path).is_file():
        raise UserError(f"inputs file not found: {path}")
    return fileio.read_npz(path, required=("inputs",))


write_npz = fileio.atomic_write_npz


def main(argv: list[str]) -> int:
    cfg = parse_command(PredictConfig, argv, prog="tinyreason hrm predict")
    arrays = read_npz(cfg.inputs)
    loaded = load_checkpoint(cfg.checkpoint, cfg.arch_config, device=cfg.device, dtype=None if cfg.dtype == "auto" else cfg.dtype)
    console.print(f"[bold]{loaded.path}[/] step {loaded.step}: {loaded.report.summary() if loaded.report else ''}")
    outputs = predict_arrays(loaded.model, arrays, cfg.batch_size, cfg.halt, cfg.adaptive_rule, show_progress=True)
    if "labels" in arrays:
        outputs["labels"] = arrays["labels"]
        _print_accuracy(outputs["predictions"], arrays["labels"])
    out = Path(cfg.out)
    write_npz(out, outputs)
    atomic_write_text(out.with_name(out.name + ".config.yaml"), dump_config(cfg) + "arch:\n" + _indent(dump_config(loaded.config)))
    steps = outputs["steps"]
    console.print(f"wrote {out}: {len(steps)} examples, ACT steps mean {steps.mean():.2f} (max {loaded.config.halt_max_steps})")
    return 0


def _indent(text: str) -> str:
    return "".join("  " + line + "\n" for line in text.splitlines())


def _print_accuracy(pred: np.ndarray, labels: np.ndarray) -> None:
    """Official metric definitions: token accuracy over non-ignored labels, exact = all tokens right."""
    mask = labels != IGNORE_LABEL
    correct = (pred == labels) & mask
    counted = mask.any(-1)
    token_acc = correct.sum(-1) / np.maximum(mask.sum(-1), 1)
    exact = correct.sum(-1) == mask.sum(-1)
    n = max(int(counted.sum()), 1)
    console.print(f"accuracy {float(token_acc[counted].sum()) / n:.4f}, exact accuracy {float(exact[counted].sum()) / n:.4f} over {int(counted.sum())} labelled examples")
