"""HRM ACT v1 (Hierarchical Reasoning Model with adaptive computation time).

Mirrors the official `HierarchicalReasoningModel_ACTV1` (sapientinc/HRM) so that its
state dicts load with identical parameter names (`inner.…` after stripping the trainer's
`_orig_mod.` and `model.` prefixes) and give the same outputs:

- input: token embedding (x sqrt(hidden)), optional per-puzzle embedding prepended as
  ceil(puzzle_emb_ndim / hidden) positions (zero-padded), RoPE or learned positions
  (learned: 1/sqrt(2) * (emb + pos) before the scale);
- two recurrent modules, H (slow) and L (fast), made of post-norm transformer blocks; each
  ACT step runs H_cycles x L_cycles updates with input injection (L gets z_H + input,
  H gets z_L) and gradient only through the last L and H update (1-step gradient);
- outputs: lm_head on z_H after the puzzle prefix, Q head (halt, continue) on position 0;
- ACT wrapper: rows whose carry is halted restart from H_init/L_init with new data. In eval
  mode every row runs exactly halt_max_steps steps (official evaluation); in training mode
  rows halt when q_halt > q_continue, with random minimum-step exploration, and a
  bootstrapped `target_q_continue` is returned for the Q loss.

Departure: with RoPE, `seq_len` may be unset; the rotary tables are then built for the
input length (identical values, since the official table is a prefix-indexed cache).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tinyreason.hrm.config import HRMArchConfig
from tinyreason.hrm.layers import Attention, CastedEmbedding, CastedLinear, CastedSparseEmbedding, SwiGLU, rms_norm, rope_cos_sin, trunc_normal_init_

Batch = dict[str, torch.Tensor]


@dataclass
class InnerCarry:
    z_H: torch.Tensor  # (B, P+L, hidden)
    z_L: torch.Tensor  # (B, P+L, hidden)


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


class ReasoningModule(nn.Module):
    """A stack of blocks applied to (state + injection)."""

    def __init__(self, cfg: HRMArchConfig, num_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(HRMBlock(cfg) for _ in range(num_layers))

    def forward(self, z: torch.Tensor, injection: torch.Tensor, cos_sin=None) -> torch.Tensor:
        z = z + injection
        for layer in self.layers:
            z = layer(z, cos_sin)
        return z


class HRMInner(nn.Module):
    """One ACT step of HRM: embeddings, H/L recurrence, LM and Q heads."""

    def __init__(self, cfg: HRMArchConfig):
        super().__init__()
        self.config = cfg
        self.forward_dtype = getattr(torch, cfg.forward_dtype)
        self.embed_scale = math.sqrt(cfg.hidden_size)
        embed_std = 1.0 / self.embed_scale
        self.puzzle_emb_len = cfg.puzzle_emb_len

        self.embed_tokens = CastedEmbedding(cfg.vocab_size, cfg.hidden_size, embed_std, self.forward_dtype)
        self.lm_head = CastedLinear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.q_head = CastedLinear(cfg.hidden_size, 2, bias=True)
        if cfg.puzzle_emb_ndim > 0:  # zero-initialised, as officially
            self.puzzle_emb = CastedSparseEmbedding(cfg.num_puzzle_identifiers, cfg.puzzle_emb_ndim, cfg.batch_size, 0.0, self.forward_dtype)
        if cfg.pos_encodings == "learned":
            self.embed_pos = CastedEmbedding(cfg.seq_len + self.puzzle_emb_len, cfg.hidden_size, embed_std, self.forward_dtype)
        self._rope_cache: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}

        self.H_level = ReasoningModule(cfg, cfg.H_layers)
        self.L_level = ReasoningModule(cfg, cfg.L_layers)
        self.H_init = nn.Buffer(trunc_normal_init_(torch.empty(cfg.hidden_size, dtype=self.forward_dtype), std=1.0), persistent=True)
        self.L_init = nn.Buffer(trunc_normal_init_(torch.empty(cfg.hidden_size, dtype=self.forward_dtype), std=1.0), persistent=True)
        with torch.no_grad():  # Q starts near "never halt" so early training is not cut short
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(-5.0)

    def _cos_sin(self, length: int, device: torch.device):
        if self.config.pos_encodings != "rope":
            return None
        key = (length, str(device))
        if key not in self._rope_cache:
            self._rope_cache[key] = rope_cos_sin(self.config.hidden_size // self.config.num_heads, length, self.config.rope_theta, device)
        return self._rope_cache[key]

    def input_embeddings(self, inputs: torch.Tensor, puzzle_identifiers: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens, (B,) puzzle ids -> (B, P+L, hidden) in the forward dtype."""
        cfg = self.config
        emb = self.embed_tokens(inputs.to(torch.int32))  # (B, L, hidden)
        if cfg.puzzle_emb_ndim > 0:
            pz = self.puzzle_emb(puzzle_identifiers)  # (B, puzzle_emb_ndim)
            pad = self.puzzle_emb_len * cfg.hidden_size - pz.shape[-1]
            if pad > 0:
                pz = F.pad(pz, (0, pad))
            emb = torch.cat((pz.view(-1, self.puzzle_emb_len, cfg.hidden_size), emb), dim=-2)  # (B, P+L, hidden)
        if cfg.pos_encodings == "learned":
            emb = 0.707106781 * (emb + self.embed_pos.embedding_weight.to(self.forward_dtype))
        return self.embed_scale * emb

    def empty_carry(self, batch_size: int, seq_len: int, device: torch.device) -> InnerCarry:
        shape = (batch_size, seq_len + self.puzzle_emb_len, self.config.hidden_size)
        return InnerCarry(
            z_H=torch.empty(shape, dtype=self.forward_dtype, device=device),
            z_L=torch.empty(shape, dtype=self.forward_dtype, device=device),
        )

    def reset_carry(self, reset: torch.Tensor, carry: InnerCarry) -> InnerCarry:
        """Rows with reset=True restart from H_init / L_init."""
        flag = reset.view(-1, 1, 1)  # (B, 1, 1) against z (B, P+L, hidden) and init (hidden,)
        return InnerCarry(
            z_H=torch.where(flag, self.H_init.to(carry.z_H.dtype), carry.z_H),
            z_L=torch.where(flag, self.L_init.to(carry.z_L.dtype), carry.z_L),
        )

    def forward(self, carry: InnerCarry, batch: Batch) -> tuple[InnerCarry, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        cfg = self.config
        x = self.input_embeddings(batch["inputs"], batch["puzzle_identifiers"])  # (B, P+L, hidden)
        cos_sin = self._cos_sin(x.shape[1], x.device)
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
        logits = self.lm_head(z_H)[:, self.puzzle_emb_len :]  # (B, P+L, V) -> (B, L, V)
        q = self.q_head(z_H[:, 0]).to(torch.float32)  # (B, 2)
        return InnerCarry(z_H.detach(), z_L.detach()), logits, (q[..., 0], q[..., 1])


class HRMACT(nn.Module):
    """ACT wrapper around HRMInner (official `HierarchicalReasoningModel_ACTV1`)."""

    def __init__(self, cfg: HRMArchConfig):
        super().__init__()
        cfg.check()
        self.config = cfg
        self.inner = HRMInner(cfg)

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
                halted = halted | (q_halt > q_continue)
                # Exploration: with prob halt_exploration_prob a row must run >= U{2..max} steps.
                explore = torch.rand_like(q_halt) < cfg.halt_exploration_prob
                min_steps = explore * torch.randint_like(steps, low=2, high=cfg.halt_max_steps + 1)
                halted = halted & (steps >= min_steps)
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
