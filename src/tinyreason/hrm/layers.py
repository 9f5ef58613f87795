"""Building blocks of HRM ACT v1, numerically matching the official `models/layers.py`.

Weights are stored in fp32 and cast to the forward dtype at use ("casted" layers), norms
are weightless RMSNorm computed in fp32, attention is non-causal. Departure from the
reference: attention runs through `torch.nn.functional.scaled_dot_product_attention`
instead of flash-attn, so the same code runs on CPU and GPU; on CPUs without a bf16 GEMM
(AVX2-only) bf16 linears run as fp32 GEMMs on the bf16 values (a bf16 GEMM's values, at fp32
speed; `tinyreason.device.slow_bf16`, docs/benchmarks.md).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tinyreason.device import slow_bf16


def trunc_normal_init_(tensor: torch.Tensor, std: float = 1.0, lower: float = -2.0, upper: float = 2.0) -> torch.Tensor:
    """JAX-style truncated normal: values in [lower, upper] std-units whose *actual* std is `std`.

    torch.nn.init.trunc_normal_ returns a smaller std than asked; the official code
    compensates, and so do we (LeCun init = std 1/sqrt(fan_in)).
    """
    if tensor.is_meta:  # shape-only construction (parameter counting): nothing to draw
        return tensor
    with torch.no_grad():
        if std == 0:
            return tensor.zero_()
        sqrt2 = math.sqrt(2.0)
        lo, hi = math.erf(lower / sqrt2), math.erf(upper / sqrt2)
        z = (hi - lo) / 2
        c = (2 * math.pi) ** -0.5
        pdf_lower, pdf_upper = c * math.exp(-0.5 * lower**2), c * math.exp(-0.5 * upper**2)
        variance = 1 - (upper * pdf_upper - lower * pdf_lower) / z - ((pdf_upper - pdf_lower) / z) ** 2
        comp_std = std / math.sqrt(variance)
        tensor.uniform_(lo, hi).erfinv_().mul_(sqrt2 * comp_std).clip_(lower * comp_std, upper * comp_std)
    return tensor


def rms_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Weightless RMSNorm over the last dim (..., hidden) in fp32, returned in the input dtype."""
    dtype = x.dtype
    x = x.to(torch.float32)
    x = x * torch.rsqrt(x.square().mean(-1, keepdim=True) + eps)
    return x.to(dtype)


class CastedLinear(nn.Module):
    """Linear layer with fp32 weights cast to the input dtype; LeCun truncated-normal init."""

    def __init__(self, in_features: int, out_features: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(trunc_normal_init_(torch.empty(out_features, in_features), std=in_features**-0.5))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        w = self.weight.to(x.dtype)
        if slow_bf16(x.device, x.dtype):  # bf16 values, fp32 accumulation, bf16 out: a bf16 GEMM's result
            return F.linear(x.float(), w.float(), None if bias is None else bias.float()).to(x.dtype)
        return F.linear(x, w, bias)


class CastedEmbedding(nn.Module):
    """Embedding table with fp32 weights, looked up in `cast_to`."""

    def __init__(self, num_embeddings: int, dim: int, init_std: float, cast_to: torch.dtype):
        super().__init__()
        self.cast_to = cast_to
        self.embedding_weight = nn.Parameter(trunc_normal_init_(torch.empty(num_embeddings, dim), std=init_std))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # (B, L) -> (B, L, dim)
        return F.embedding(ids, self.embedding_weight.to(self.cast_to))


class CastedSparseEmbedding(nn.Module):
    """Per-puzzle embedding table kept as a (persistent) buffer, as in the official code.

    The table is updated by a sparse sign-SGD optimizer, not by autograd: in training mode
    the rows of the batch are copied into `local_weights` (a grad-requiring leaf buffer),
    whose gradient the optimizer scatters back using `local_ids`. Departure: when a batch
    size differs from `batch_size` the local buffers are resized in place (same tensor
    objects, so optimizer references stay valid) instead of failing.
    """

    def __init__(self, num_embeddings: int, dim: int, batch_size: int, init_std: float, cast_to: torch.dtype):
        super().__init__()
        self.cast_to = cast_to
        self.weights = nn.Buffer(trunc_normal_init_(torch.empty(num_embeddings, dim), std=init_std), persistent=True)
        self.local_weights = nn.Buffer(torch.zeros(batch_size, dim, requires_grad=True), persistent=False)
        self.local_ids = nn.Buffer(torch.zeros(batch_size, dtype=torch.int32), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # ids (B,) -> (B, dim)
        if not self.training:
            return self.weights[ids].to(self.cast_to)
        with torch.no_grad():
            if self.local_weights.shape[0] != ids.shape[0]:
                self.local_weights.data = self.weights.new_zeros(ids.shape[0], self.weights.shape[1])
                self.local_ids.data = ids.new_zeros(ids.shape[0], dtype=torch.int32)
            self.local_weights.copy_(self.weights[ids])
            self.local_ids.copy_(ids)
        return self.local_weights.to(self.cast_to)


def rope_cos_sin(head_dim: int, length: int, base: float, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """RoPE tables (length, head_dim) in fp32, half-split layout as the official code."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim))
    freqs = torch.outer(torch.arange(length, dtype=torch.float32, device=device), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate q, k (B, L, H, D) with cos/sin (L, D) in fp32; return in the input dtype."""
    dtype = q.dtype
    cos, sin = cos.unsqueeze(-2), sin.unsqueeze(-2)  # (L, 1, D)
    q32, k32 = q.to(cos.dtype), k.to(cos.dtype)
    q_out = q32 * cos + _rotate_half(q32) * sin
    k_out = k32 * cos + _rotate_half(k32) * sin
    return q_out.to(dtype), k_out.to(dtype)


class Attention(nn.Module):
    """Multi-head non-causal self-attention with a fused qkv projection (no biases)."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.qkv_proj = CastedLinear(hidden_size, 3 * num_heads * self.head_dim, bias=False)
        self.o_proj = CastedLinear(num_heads * self.head_dim, hidden_size, bias=False)

    def forward(self, x: torch.Tensor, cos_sin: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        B, L, _ = x.shape  # x (B, L, hidden); cos/sin (L, D)
        qkv = self.qkv_proj(x).view(B, L, 3 * self.num_heads, self.head_dim)  # (B, L, 3H, D)
        q, k, v = qkv.split(self.num_heads, dim=2)  # each (B, L, H, D)
        if cos_sin is not None:
            q, k = apply_rope(q, k, *cos_sin)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=False)  # (B, H, L, D)
        return self.o_proj(out.transpose(1, 2).reshape(B, L, self.num_heads * self.head_dim))


class SwiGLU(nn.Module):
    """SwiGLU MLP with a fused gate/up projection; `width` already rounded to a multiple of 256."""

    def __init__(self, hidden_size: int, width: int):
        super().__init__()
        self.gate_up_proj = CastedLinear(hidden_size, 2 * width, bias=False)
        self.down_proj = CastedLinear(width, hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, hidden) -> (B, L, hidden)
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)  # each (B, L, width)
        return self.down_proj(F.silu(gate) * up)
