"""HRM ACT v1 (Hierarchical Reasoning Model with adaptive computation time), and the ACT
wrapper of the HRM family (HRM and TRM).

Mirrors the official `HierarchicalReasoningModel_ACTV1` (sapientinc/HRM) so that its
state dicts load with identical parameter names (`inner.…` after stripping the trainer's
`_orig_mod.` and `model.` prefixes) and give the same outputs:

- input and output layers as `inner_parts` (shared with TRM);
- two recurrent modules, H (slow) and L (fast), made of post-norm transformer blocks; each
  ACT step runs H_cycles x L_cycles updates with input injection (L gets z_H + input,
  H gets z_L) and gradient only through the last L and H update (1-step gradient);
- ACT wrapper (`HRMACT`, an HRMInner or, given a TRMArchConfig, a `trm_model.TRMInner`,
  which makes it the official `TinyRecursiveReasoningModel_ACTV1`): rows whose carry is
  halted restart from H_init/L_init with new data. In eval mode every row runs exactly
  halt_max_steps steps (official evaluation); in training mode rows halt when
  q_halt > q_continue (TRM with no_ACT_continue: when q_halt > 0), with random
  minimum-step exploration, and a bootstrapped `target_q_continue` is returned for the
  Q loss when the config uses Q-continue.

Departure (TRM with no_ACT_continue=false): the official code unpacks five values from
the inner model's three to get the next step's Q and fails; we compute the target as HRM does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tinyreason.hrm import inner_parts
from tinyreason.hrm.config import ArchConfig, HRMArchConfig, TRMArchConfig
from tinyreason.hrm.inner_parts import Batch, InnerCarry, ReasoningModule
from tinyreason.hrm.layers import Attention, CastedSparseEmbedding, SwiGLU, rms_norm
from tinyreason.hrm.trm_model import TRMInner

__all__ = ["ACTCarry", "Batch", "HRMACT", "HRMBlock", "HRMInner", "InnerCarry", "ReasoningModule", "count_parameters"]


@dataclass
class ACTCarry:
    inner_carry: InnerCarry
    steps: torch.Tensor  # (B,) int32, ACT steps taken on the current data
    halted: torch.Tensor  # (B,) bool; halted rows take new data on the next call
    current_data: Batch


class HRMBlock(nn.Module):
    """Post-norm transformer block: x = norm(x + attn(x)); x = norm(x + mlp(x))."""

    def __init__(self, cfg: HRMArchConfig):
        super().__init__()
        self.self_attn = Attention(cfg.hidden_size, cfg.num_heads)
        self.mlp = SwiGLU(cfg.hidden_size, cfg.swiglu_width)
        self.norm_eps = cfg.rms_norm_eps

    def forward(self, x: torch.Tensor, cos_sin: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        x = rms_norm(x + self.self_attn(x, cos_sin), self.norm_eps)
        return rms_norm(x + self.mlp(x), self.norm_eps)


class HRMInner(nn.Module):
    """One ACT step of HRM: embeddings, H/L recurrence, LM and Q heads."""

    input_embeddings = inner_parts.input_embeddings
    empty_carry = inner_parts.empty_carry
    reset_carry = inner_parts.reset_carry

    def __init__(self, cfg: HRMArchConfig):
        super().__init__()
        inner_parts.add_io_layers(self, cfg)
        self.H_level = ReasoningModule([HRMBlock(cfg) for _ in range(cfg.H_layers)])
        self.L_level = ReasoningModule([HRMBlock(cfg) for _ in range(cfg.L_layers)])
        inner_parts.add_initial_states(self, cfg)

    def forward(self, carry: InnerCarry, batch: Batch) -> tuple[InnerCarry, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        cfg = self.config
        x = self.input_embeddings(batch["inputs"], batch["puzzle_identifiers"])  # (B, P+L, hidden)
        cos_sin = inner_parts.cos_sin(self, x.shape[1], x.device)
        z_H, z_L = carry.z_H, carry.z_L
        with torch.no_grad():  # all but the last L and H update carry no gradient
            for h in range(cfg.H_cycles):
                for l_step in range(cfg.L_cycles):
                    if not (h == cfg.H_cycles - 1 and l_step == cfg.L_cycles - 1):
                        z_L = self.L_level(z_L, z_H + x, cos_sin)
                if h != cfg.H_cycles - 1:
                    z_H = self.H_level(z_H, z_L, cos_sin)
        z_L = self.L_level(z_L, z_H + x, cos_sin)  # 1-step gradient
        z_H = self.H_level(z_H, z_L, cos_sin)
        logits, q = inner_parts.output_heads(self, z_H)
        return InnerCarry(z_H.detach(), z_L.detach()), logits, q


class HRMACT(nn.Module):
    """ACT wrapper (official `HierarchicalReasoningModel_ACTV1`, or `TinyRecursiveReasoningModel_ACTV1`
    given a TRMArchConfig) around the family's inner model."""

    def __init__(self, cfg: ArchConfig):
        super().__init__()
        cfg.check()
        self.config = cfg
        self.inner = TRMInner(cfg) if isinstance(cfg, TRMArchConfig) else HRMInner(cfg)

    @property
    def puzzle_emb(self) -> CastedSparseEmbedding:
        return self.inner.puzzle_emb

    def initial_carry(self, batch: Batch) -> ACTCarry:
        """All rows start halted, so the first forward loads the batch and resets to H_init/L_init."""
        inputs = batch["inputs"]
        B, device = inputs.shape[0], inputs.device
        return ACTCarry(
            inner_carry=self.inner.empty_carry(B, inputs.shape[1], device),
            steps=torch.zeros(B, dtype=torch.int32, device=device),
            halted=torch.ones(B, dtype=torch.bool, device=device),
            current_data={k: torch.empty_like(v) for k, v in batch.items()},
        )

    def forward(self, carry: ACTCarry, batch: Batch) -> tuple[ACTCarry, dict[str, torch.Tensor]]:
        cfg = self.config
        inner_carry = self.inner.reset_carry(carry.halted, carry.inner_carry)
        steps = torch.where(carry.halted, 0, carry.steps)  # (B,)
        # halted rows take the new batch's row, the others keep theirs: (B, ...) per key
        data = {
            k: torch.where(carry.halted.view((-1,) + (1,) * (batch[k].ndim - 1)), batch[k], v)
            for k, v in carry.current_data.items()
        }
        inner_carry, logits, (q_halt, q_continue) = self.inner(inner_carry, data)
        outputs = {"logits": logits, "q_halt_logits": q_halt, "q_continue_logits": q_continue}

        with torch.no_grad():
            steps = steps + 1
            is_last = steps >= cfg.halt_max_steps
            halted = is_last
            if self.training and cfg.halt_max_steps > 1:
                halted = halted | ((q_halt > q_continue) if cfg.uses_q_continue else (q_halt > 0))
                # Exploration: with prob halt_exploration_prob a row must run >= U{2..max} steps.
                explore = torch.rand_like(q_halt) < cfg.halt_exploration_prob
                min_steps = explore * torch.randint_like(steps, low=2, high=cfg.halt_max_steps + 1)
                halted = halted & (steps >= min_steps)
                if cfg.uses_q_continue:  # (TRM with no_ACT_continue has no Q-continue target or loss)
                    # Bootstrapped Q target from the next step (no replay buffer / target net, as officially).
                    next_halt, next_continue = self.inner(inner_carry, data)[-1]
                    target = torch.where(is_last, next_halt, torch.maximum(next_halt, next_continue))
                    outputs["target_q_continue"] = torch.sigmoid(target)
        return ACTCarry(inner_carry, steps, halted, data), outputs


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Stored numbers, split into the puzzle-embedding table (a buffer trained by sign-SGD,
    often most of the model) and everything else (parameters plus H_init/L_init)."""
    state = model.state_dict()
    puzzle = sum(v.numel() for k, v in state.items() if k.endswith("puzzle_emb.weights"))
    total = sum(v.numel() for v in state.values())
    return {"puzzle_embedding": puzzle, "other": total - puzzle, "total": total}
