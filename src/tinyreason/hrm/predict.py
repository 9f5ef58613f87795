"""`tinyreason hrm predict`: run an HRM or TRM checkpoint on an .npz of inputs and save its outputs.

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
from tinyreason.runguard import refuse_same
from tinyreason.runlog import console

IGNORE_LABEL = -100  # official ignore_label_id
MAX_FREE_LEN = 4096  # tokens per example when the checkpoint does not fix seq_len (see check_length)


class PredictConfig(StrictModel):
    """Run an HRM or TRM checkpoint (official format) on inputs from an .npz file."""

    checkpoint: str = Field(..., description="weights file, run folder (latest step_N) or Hub repo id")
    inputs: str = Field(..., description=".npz with inputs, puzzle_identifiers (labels optional)")
    out: str = Field(..., description="output .npz")
    arch_config: str | None = Field(None, description="architecture YAML (default: all_config.yaml next to the checkpoint)")
    halt: Literal["fixed", "adaptive"] = Field("fixed", description="fixed = exactly halt_max_steps (official eval)")
    adaptive_rule: Literal["auto", "q_compare", "q_positive"] = Field("auto", description="adaptive halting rule; auto = the one the model trained with (HRM q_compare, TRM no_ACT_continue q_positive)")
    dtype: Literal["auto", "float32", "bfloat16"] = Field("auto", description="forward dtype; auto = the checkpoint's forward_dtype")
    device: str = "auto"
    batch_size: int = Field(256, ge=1)


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of an inputs .npz (must hold `inputs`), with one-line errors."""
    if not Path(path).is_file():
        raise UserError(f"inputs file not found: {path}")
    arrays = fileio.read_npz(path, required=("inputs",))
    for name in ("inputs", "labels", "puzzle_identifiers"):
        if name in arrays and not np.issubdtype(arrays[name].dtype, np.integer):
            raise UserError(f"{path}: '{name}' must hold integer token ids, got {arrays[name].dtype} values")
    return arrays


def check_length(arrays: dict[str, np.ndarray], seq_len: int | None, source: str) -> None:
    """Refuse inputs far longer than any puzzle when the checkpoint does not fix seq_len (RoPE
    tables are built for whatever length comes, so a wrong file would run for minutes)."""
    length = arrays["inputs"].shape[-1] if arrays["inputs"].ndim else 0
    if seq_len is None and length > MAX_FREE_LEN:
        raise UserError(f"{source}: inputs have {length} tokens per example; this checkpoint does not fix seq_len, and "
                        f"predict takes at most {MAX_FREE_LEN} (official puzzles have up to 900): set seq_len in "
                        f"--arch-config to run longer ones")


write_npz = fileio.atomic_write_npz


def main(argv: list[str]) -> int:
    cfg = parse_command(PredictConfig, argv, prog="tinyreason hrm predict")
    refuse_same(cfg.out, "--out", {"--inputs": cfg.inputs, "--checkpoint": cfg.checkpoint, "--arch-config": cfg.arch_config})
    arrays = read_npz(cfg.inputs)
    loaded = load_checkpoint(cfg.checkpoint, cfg.arch_config, device=cfg.device, dtype=None if cfg.dtype == "auto" else cfg.dtype)
    refuse_same(cfg.out, "--out", {"the checkpoint file": loaded.path})
    check_length(arrays, loaded.config.seq_len, cfg.inputs)
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
