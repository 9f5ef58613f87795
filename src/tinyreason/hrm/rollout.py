"""ACT rollout for evaluation: every step's answer, each row's halting step and final outputs.

Same loop as the official evaluation (eval mode, `initial_carry` then `forward` until
`halt_max_steps`), but it also keeps the argmax answer after every step so evaluation can
measure how many steps the answer really needed (`metrics.stable_step`), and it can halt
adaptively. Adaptive halting: a row stops at the first step where q_halt > q_continue
(`q_compare`, the training-time rule of the official model) or q_halt > 0 (`q_positive`);
its outputs are those of that step; the loop ends when every row has stopped. Rows are
independent in HRM, so a row's adaptive answer equals its answer at that step of a fixed run.
"""

from __future__ import annotations

import torch

from tinyreason.errors import UserError
from tinyreason.hrm.inference import AdaptiveRule, HaltMode
from tinyreason.hrm.model import HRMACT, InnerCarry


@torch.inference_mode()
def rollout(
    model: HRMACT,
    batch: dict[str, torch.Tensor],
    halt: HaltMode = "fixed",
    adaptive_rule: AdaptiveRule = "q_compare",
) -> dict[str, torch.Tensor]:
    """Run ACT on a batch (int tensors on the model's device).

    Returns CPU tensors: logits (B, L, V) float32 at each row's final step, q_halt_logits /
    q_continue_logits (B,), steps (B,) int64, predictions (B, L) and step_predictions
    (S, B, L) with S = steps run (a stopped row repeats its answer).
    Fixed: the official loop through the ACT wrapper. Adaptive: like `inference.run_act`,
    only rows still running are computed after each step (that is where the speed comes from).
    """
    if halt not in ("fixed", "adaptive"):
        raise UserError(f"halt must be 'fixed' or 'adaptive', got {halt!r}")
    if adaptive_rule not in ("q_compare", "q_positive"):
        raise UserError(f"adaptive_rule must be 'q_compare' or 'q_positive', got {adaptive_rule!r}")
    model.eval()
    inner, max_steps = model.inner, int(model.config.halt_max_steps)
    B, L = batch["inputs"].shape
    device = batch["inputs"].device
    logits = torch.zeros(B, L, model.config.vocab_size, dtype=torch.float32)
    q_halt, q_cont = torch.zeros(B), torch.zeros(B)
    steps = torch.zeros(B, dtype=torch.long)
    step_preds: list[torch.Tensor] = []
    active = torch.arange(B, device=device)  # rows still running (adaptive drops the others)
    carry = model.initial_carry(batch)
    inner_carry = inner.reset_carry(torch.ones(B, dtype=torch.bool, device=device), inner.empty_carry(B, L, device))
    data = batch
    for step in range(1, max_steps + 1):
        if halt == "fixed":
            carry, out = model(carry, batch)
            step_logits, qh, qc = out["logits"], out["q_halt_logits"], out["q_continue_logits"]
        else:
            inner_carry, step_logits, (qh, qc) = inner(inner_carry, data)
        idx = active.cpu()
        logits[idx], q_halt[idx], q_cont[idx] = step_logits.float().cpu(), qh.float().cpu(), qc.float().cpu()
        steps[idx] = step
        step_preds.append(logits.argmax(-1))
        if halt == "fixed":
            continue
        keep = ~((qh > qc) if adaptive_rule == "q_compare" else (qh > 0))  # (n_active,)
        if step == max_steps or not bool(keep.any()):
            break
        if not bool(keep.all()):
            active = active[keep]
            inner_carry = InnerCarry(inner_carry.z_H[keep], inner_carry.z_L[keep])
            data = {k: v[active] for k, v in batch.items()}
    return {
        "logits": logits,
        "q_halt_logits": q_halt,
        "q_continue_logits": q_cont,
        "steps": steps,
        "predictions": step_preds[-1],
        "step_predictions": torch.stack(step_preds),  # (S, B, L)
    }
