"""What the inner (one ACT step) models of HRM and TRM share: carry, reasoning module, puzzle I/O.

Both official inner models hold the same input/output layers under the same names
(`embed_tokens`, `lm_head`, `q_head`, `puzzle_emb`, `embed_pos`, `H_init`, `L_init`), so
these are plain functions that add them to, and use them from, the inner module itself
(its state-dict keys stay the official ones). `HRMInner` and `TRMInner` take the methods
below as class attributes; only their reasoning networks and cycles differ.

- input: token embedding (x sqrt(hidden)), the per-puzzle embedding zero-padded into
  `puzzle_positions` prefix positions, RoPE or learned positions (learned:
  1/sqrt(2) * (emb + pos) before the scale);
- outputs: lm_head on z_H after the prefix, Q head (halt, continue) on position 0;
- carry: rows with reset=True restart from H_init / L_init.

Departure: with RoPE the rotary tables are built for the input length (the official table
is a prefix-indexed cache of seq_len + prefix rows: identical values), so `seq_len` may be unset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tinyreason.hrm.layers import CastedEmbedding, CastedLinear, CastedSparseEmbedding, rope_cos_sin, trunc_normal_init_

Batch = dict[str, torch.Tensor]


@dataclass
class InnerCarry:
    z_H: torch.Tensor  # (B, P+L, hidden)
    z_L: torch.Tensor  # (B, P+L, hidden)


class ReasoningModule(nn.Module):
    """A stack of blocks applied to (state + injection); each block maps (x, cos_sin) -> x."""

    def __init__(self, blocks: list[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(blocks)

    def forward(self, z: torch.Tensor, injection: torch.Tensor, cos_sin=None) -> torch.Tensor:
        z = z + injection
        for layer in self.layers:
            z = layer(z, cos_sin)
        return z


def add_io_layers(inner: nn.Module, cfg) -> None:
    """Give `inner` the embeddings and heads (official names and init; call before the reasoning network)."""
    inner.config = cfg
    inner.forward_dtype = getattr(torch, cfg.forward_dtype)
    inner.embed_scale = math.sqrt(cfg.hidden_size)
    embed_std = 1.0 / inner.embed_scale
    inner.puzzle_emb_len = cfg.puzzle_positions
    inner.embed_tokens = CastedEmbedding(cfg.vocab_size, cfg.hidden_size, embed_std, inner.forward_dtype)
    inner.lm_head = CastedLinear(cfg.hidden_size, cfg.vocab_size, bias=False)
    inner.q_head = CastedLinear(cfg.hidden_size, 2, bias=True)
    if cfg.puzzle_emb_ndim > 0:  # zero-initialised, as officially
        inner.puzzle_emb = CastedSparseEmbedding(cfg.num_puzzle_identifiers, cfg.puzzle_emb_ndim, cfg.batch_size, 0.0, inner.forward_dtype)
    if cfg.pos_encodings == "learned":
        inner.embed_pos = CastedEmbedding(cfg.seq_len + inner.puzzle_emb_len, cfg.hidden_size, embed_std, inner.forward_dtype)
    inner._rope_cache = {}


def add_initial_states(inner: nn.Module, cfg) -> None:
    """H_init / L_init (persistent buffers, forward dtype) and the Q head's start near "never halt"."""
    inner.H_init = nn.Buffer(trunc_normal_init_(torch.empty(cfg.hidden_size, dtype=inner.forward_dtype), std=1.0), persistent=True)
    inner.L_init = nn.Buffer(trunc_normal_init_(torch.empty(cfg.hidden_size, dtype=inner.forward_dtype), std=1.0), persistent=True)
    with torch.no_grad():  # so early training is not cut short
        inner.q_head.weight.zero_()
        inner.q_head.bias.fill_(-5.0)


def cos_sin(inner: nn.Module, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
    """RoPE tables (length, head_dim) for `length` positions, cached per device; None without RoPE."""
    cfg = inner.config
    if cfg.pos_encodings != "rope":
        return None
    key = (length, str(device))
    if key not in inner._rope_cache:
        inner._rope_cache[key] = rope_cos_sin(cfg.hidden_size // cfg.num_heads, length, cfg.rope_theta, device)
    return inner._rope_cache[key]


def input_embeddings(inner: nn.Module, inputs: torch.Tensor, puzzle_identifiers: torch.Tensor) -> torch.Tensor:
    """(B, L) tokens, (B,) puzzle ids -> (B, P+L, hidden) in the forward dtype."""
    cfg = inner.config
    emb = inner.embed_tokens(inputs.to(torch.int32))  # (B, L, hidden)
    if cfg.puzzle_emb_ndim > 0:
        pz = inner.puzzle_emb(puzzle_identifiers)  # (B, puzzle_emb_ndim)
        pad = inner.puzzle_emb_len * cfg.hidden_size - pz.shape[-1]
        if pad > 0:
            pz = F.pad(pz, (0, pad))
        emb = torch.cat((pz.view(-1, inner.puzzle_emb_len, cfg.hidden_size), emb), dim=-2)  # (B, P+L, hidden)
    if cfg.pos_encodings == "learned":
        emb = 0.707106781 * (emb + inner.embed_pos.embedding_weight.to(inner.forward_dtype))
    return inner.embed_scale * emb


def empty_carry(inner: nn.Module, batch_size: int, seq_len: int, device: torch.device) -> InnerCarry:
    shape = (batch_size, seq_len + inner.puzzle_emb_len, inner.config.hidden_size)
    return InnerCarry(
        z_H=torch.empty(shape, dtype=inner.forward_dtype, device=device),
        z_L=torch.empty(shape, dtype=inner.forward_dtype, device=device),
    )


def reset_carry(inner: nn.Module, reset: torch.Tensor, carry: InnerCarry) -> InnerCarry:
    """Rows with reset=True restart from H_init / L_init."""
    flag = reset.view(-1, 1, 1)  # (B, 1, 1) against z (B, P+L, hidden) and init (hidden,)
    return InnerCarry(
        z_H=torch.where(flag, inner.H_init.to(carry.z_H.dtype), carry.z_H),
        z_L=torch.where(flag, inner.L_init.to(carry.z_L.dtype), carry.z_L),
    )


def output_heads(inner: nn.Module, z_H: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """z_H (B, P+L, hidden) -> logits (B, L, V) and float32 (q_halt, q_continue) (B,) from position 0."""
    logits = inner.lm_head(z_H)[:, inner.puzzle_emb_len :]  # (B, P+L, V) -> (B, L, V)
    q = inner.q_head(z_H[:, 0]).to(torch.float32)  # (B, 2)
    return logits, (q[..., 0], q[..., 1])
