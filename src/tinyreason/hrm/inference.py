"""ACT inference for the HRM family (HRM, TRM): the official fixed-step evaluation, and adaptive halting for speed.

`fixed` runs every row for exactly `halt_max_steps` ACT steps through the ACT wrapper, as
the official evaluation does (eval mode never halts early, so batches stay aligned).
`adaptive` stops each row as soon as its halting rule fires and only computes the rows
still running, so a batch whose rows halt early costs fewer steps. Rules:
`q_compare` halts when q_halt > q_continue (HRM's training-time rule), `q_positive` when
q_halt > 0 (sigmoid(q_halt) > 0.5, i.e. "the model believes its answer is correct"; TRM's
training-time rule under no_ACT_continue, where q_continue is never trained), `auto` the
rule the model was trained with. Every row halts at `halt_max_steps` at the latest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import torch

from tinyreason.errors import UserError
from tinyreason.hrm.model import HRMACT, InnerCarry

HaltMode = Literal["fixed", "adaptive"]
AdaptiveRule = Literal["auto", "q_compare", "q_positive"]


def training_rule(model: HRMACT, rule: str = "auto") -> str:
    """`rule`, with "auto" resolved to the halting rule the model's config trains with."""
    if rule != "auto":
        return rule
    return "q_compare" if model.config.uses_q_continue else "q_positive"


def prepare_batch(model: HRMACT, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Numpy/torch batch -> int32 tensors on the model's device, with range and shape checks."""
    cfg = model.config
    device = model.inner.H_init.device
    if "inputs" not in batch:
        raise UserError("batch has no 'inputs'")
    out = {k: torch.as_tensor(np.asarray(v) if not isinstance(v, torch.Tensor) else v) for k, v in batch.items() if k in ("inputs", "labels", "puzzle_identifiers")}
    inputs = out["inputs"]
    if inputs.ndim != 2:
        raise UserError(f"inputs must be 2-D (examples, seq_len), got shape {tuple(inputs.shape)}")
    B, L = inputs.shape
    if "puzzle_identifiers" not in out:
        if cfg.puzzle_emb_ndim > 0:
            raise UserError("puzzle_identifiers missing: this model has puzzle embeddings, so each example needs its puzzle id")
        out["puzzle_identifiers"] = torch.zeros(B, dtype=torch.int32)
    ids = out["puzzle_identifiers"]
    if tuple(ids.shape) != (B,):
        raise UserError(f"puzzle_identifiers must have shape ({B},), got {tuple(ids.shape)}")
    if cfg.seq_len is not None and L != cfg.seq_len:
        raise UserError(f"inputs have {L} tokens per example but the model's seq_len is {cfg.seq_len}")
    if "labels" in out and tuple(out["labels"].shape) != (B, L):
        raise UserError(f"labels must have the shape of inputs {(B, L)}, got {tuple(out['labels'].shape)}")
    for name, t in out.items():
        if t.is_floating_point() or t.dtype == torch.bool:
            raise UserError(f"{name} must be integers, got {t.dtype}")
    if B and (int(inputs.min()) < 0 or int(inputs.max()) >= cfg.vocab_size):
        raise UserError(f"input tokens must lie in [0, {cfg.vocab_size}), got [{int(inputs.min())}, {int(inputs.max())}]")
    if B and cfg.puzzle_emb_ndim > 0 and (int(ids.min()) < 0 or int(ids.max()) >= cfg.num_puzzle_identifiers):
        raise UserError(
            f"puzzle_identifiers must lie in [0, {cfg.num_puzzle_identifiers}) (the checkpoint's puzzle embeddings), "
            f"got [{int(ids.min())}, {int(ids.max())}]: was the data built with the same identifiers?"
        )
    return {k: v.to(device=device, dtype=torch.int32) for k, v in out.items()}


@torch.inference_mode()
def run_act(
    model: HRMACT,
    batch: Mapping[str, Any],
    halt: HaltMode = "fixed",
    adaptive_rule: AdaptiveRule = "auto",
    step_predictions: bool = False,
) -> dict[str, torch.Tensor]:
    """Run ACT on one batch; returns CPU tensors (outputs of each row's final step):
    logits (B, L, V) float32, q_halt_logits (B,), q_continue_logits (B,) float32,
    steps (B,) int64 ACT steps taken, predictions (B, L) int64 argmax; with
    `step_predictions`, also step_predictions (S, B, L): the argmax answer after every step
    (S = steps run; a stopped row repeats its answer), which evaluation uses to measure how
    many steps an answer really needed (`metrics.stable_step`).

    Fixed: the official loop through the ACT wrapper. Adaptive: only rows still running are
    computed after each step (that is where the speed comes from); rows are independent in
    HRM and TRM, so a row's adaptive answer equals its answer at that step of a fixed run.
    """
    if halt not in ("fixed", "adaptive"):
        raise UserError(f"halt must be 'fixed' or 'adaptive', got {halt!r}")
    if adaptive_rule not in ("auto", "q_compare", "q_positive"):
        raise UserError(f"adaptive_rule must be 'auto', 'q_compare' or 'q_positive', got {adaptive_rule!r}")
    was_training = model.training
    model.eval()
    try:
        out = _act_loop(model, prepare_batch(model, batch), halt, training_rule(model, adaptive_rule), step_predictions)
    finally:
        model.train(was_training)
    return out


def _act_loop(model: HRMACT, b: dict[str, torch.Tensor], halt: HaltMode, rule: AdaptiveRule, keep_steps: bool) -> dict[str, torch.Tensor]:
    """The one ACT loop behind `run_act` (model already in eval mode, batch prepared)."""
    inner, cfg = model.inner, model.config
    B, L = b["inputs"].shape
    device = b["inputs"].device
    logits = torch.zeros(B, L, cfg.vocab_size, dtype=torch.float32)
    q_halt, q_cont = torch.zeros(B), torch.zeros(B)
    steps = torch.zeros(B, dtype=torch.long)
    step_preds: list[torch.Tensor] = []
    act_carry = model.initial_carry(b)  # fixed: the ACT wrapper's carry
    carry = inner.reset_carry(torch.ones(B, dtype=torch.bool, device=device), inner.empty_carry(B, L, device))  # adaptive
    active = torch.arange(B, device=device)  # rows still running; `carry` holds only these
    data = b
    for step in range(1, cfg.halt_max_steps + 1):
        if halt == "fixed":  # eval mode halts every row exactly at halt_max_steps
            act_carry, outputs = model(act_carry, b)
            step_logits, qh, qc = outputs["logits"], outputs["q_halt_logits"], outputs["q_continue_logits"]
        else:
            carry, step_logits, (qh, qc) = inner(carry, data)
        idx = active.cpu()
        logits[idx], q_halt[idx], q_cont[idx] = step_logits.float().cpu(), qh.float().cpu(), qc.float().cpu()
        steps[idx] = step
        if keep_steps:
            step_preds.append(logits.argmax(-1))
        if halt == "fixed":
            continue
        keep = ~((qh > qc) if rule == "q_compare" else (qh > 0))  # (n_active,)
        if step == cfg.halt_max_steps or not bool(keep.any()):
            break
        if not bool(keep.all()):  # compute only the rows still running from now on
            active = active[keep]
            carry = InnerCarry(carry.z_H[keep], carry.z_L[keep])
            data = {k: v[active] for k, v in b.items()}
    out = {"logits": logits, "q_halt_logits": q_halt, "q_continue_logits": q_cont, "steps": steps, "predictions": logits.argmax(-1)}
    if keep_steps:
        out["step_predictions"] = torch.stack(step_preds)  # (S, B, L)
    return out


def predict_arrays(
    model: HRMACT,
    arrays: Mapping[str, np.ndarray],
    batch_size: int = 256,
    halt: HaltMode = "fixed",
    adaptive_rule: AdaptiveRule = "auto",
    show_progress: bool = False,
) -> dict[str, np.ndarray]:
    """`run_act` over a whole dataset in chunks of `batch_size`; numpy outputs."""
    if batch_size < 1:
        raise UserError(f"batch_size must be >= 1, got {batch_size}")
    n = len(arrays["inputs"])
    starts = range(0, n, batch_size)
    if show_progress:
        from tinyreason.runlog import progress

        starts = progress(starts, "hrm predict")
    parts: dict[str, list[np.ndarray]] = {}
    for s in starts:
        chunk = {k: v[s : s + batch_size] for k, v in arrays.items() if k in ("inputs", "labels", "puzzle_identifiers")}
        for k, v in run_act(model, chunk, halt=halt, adaptive_rule=adaptive_rule).items():
            parts.setdefault(k, []).append(v.numpy())
    if not parts:
        raise UserError("no examples to run")
    return {k: np.concatenate(v) for k, v in parts.items()}
