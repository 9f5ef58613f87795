"""TRM, Tiny Recursive Models (SamsungSAILMontreal/TinyRecursiveModels): the inner model of
`TinyRecursiveReasoningModel_ACTV1`; the ACT wrapper is `model.HRMACT` given a TRMArchConfig.

Mirrors the official `models/recursive_reasoning/trm.py` so that its state dicts load with
the official names (`inner.…` after stripping `_orig_mod.model.`) and give the same outputs:

- input/output layers as HRM (`inner_parts`), but the puzzle embedding takes
  `puzzle_emb_len` prefix positions (0 = ceil(puzzle_emb_ndim / hidden)); Q reads position 0;
- one network, `L_level` (L_layers post-norm blocks), updates both states: each cycle runs
  L_cycles updates z_L <- net(z_L, z_H + x) and then z_H <- net(z_H, z_L). H_cycles - 1
  cycles run without gradient, the last one with it (no H_level; H_layers is ignored);
- `mlp_t`: the block's attention is replaced by a SwiGLU across the sequence axis (width
  seq_len + puzzle positions), normalised over that axis, as officially; it needs no
  positions (pos_encodings none; with rope the official code builds tables it never uses).
"""

from __future__ import annotations

import torch
from torch import nn

from tinyreason.hrm import inner_parts
from tinyreason.hrm.config import TRMArchConfig
from tinyreason.hrm.inner_parts import Batch, InnerCarry, ReasoningModule
from tinyreason.hrm.layers import Attention, SwiGLU, rms_norm


class TRMBlock(nn.Module):
    """Post-norm block: x = norm(x + mix(x)); x = norm(x + mlp(x)), where mix is attention or,
    with mlp_t, a SwiGLU over positions (x transposed to (B, hidden, P+L), normed over P+L)."""

    def __init__(self, cfg: TRMArchConfig):
        super().__init__()
        if cfg.mlp_t:
            self.mlp_t = SwiGLU(cfg.seq_len + cfg.puzzle_positions, cfg.mlp_t_width)
        else:
            self.self_attn = Attention(cfg.hidden_size, cfg.num_heads)
        self.mlp = SwiGLU(cfg.hidden_size, cfg.swiglu_width)
        self.norm_eps = cfg.rms_norm_eps

    def forward(self, x: torch.Tensor, cos_sin: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        if hasattr(self, "mlp_t"):
            xt = x.transpose(1, 2)  # (B, hidden, P+L)
            x = rms_norm(xt + self.mlp_t(xt), self.norm_eps).transpose(1, 2)  # (B, P+L, hidden)
        else:
            x = rms_norm(x + self.self_attn(x, cos_sin), self.norm_eps)
        return rms_norm(x + self.mlp(x), self.norm_eps)


class TRMInner(nn.Module):
    """One ACT step of TRM: embeddings, the recursion of one network over z_L and z_H, LM and Q heads."""

    input_embeddings = inner_parts.input_embeddings
    empty_carry = inner_parts.empty_carry
    reset_carry = inner_parts.reset_carry

    def __init__(self, cfg: TRMArchConfig):
        super().__init__()
        inner_parts.add_io_layers(self, cfg)
        self.L_level = ReasoningModule([TRMBlock(cfg) for _ in range(cfg.L_layers)])
        inner_parts.add_initial_states(self, cfg)

    def forward(self, carry: InnerCarry, batch: Batch) -> tuple[InnerCarry, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        cfg = self.config
        x = self.input_embeddings(batch["inputs"], batch["puzzle_identifiers"])  # (B, P+L, hidden)
        cos_sin = inner_parts.cos_sin(self, x.shape[1], x.device)
        z_H, z_L = carry.z_H, carry.z_L
        with torch.no_grad():  # H_cycles - 1 cycles without gradient
            for _ in range(cfg.H_cycles - 1):
                z_H, z_L = self._cycle(z_H, z_L, x, cos_sin)
        z_H, z_L = self._cycle(z_H, z_L, x, cos_sin)  # the last one with gradient
        logits, q = inner_parts.output_heads(self, z_H)
        return InnerCarry(z_H.detach(), z_L.detach()), logits, q

    def _cycle(self, z_H: torch.Tensor, z_L: torch.Tensor, x: torch.Tensor, cos_sin) -> tuple[torch.Tensor, torch.Tensor]:
        """L_cycles updates of z_L from (z_H + input), then one update of z_H from z_L; all (B, P+L, hidden)."""
        for _ in range(self.config.L_cycles):
            z_L = self.L_level(z_L, z_H + x, cos_sin)
        return self.L_level(z_H, z_L, cos_sin), z_L
