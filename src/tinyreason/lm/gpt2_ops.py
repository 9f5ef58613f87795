"""Pieces of a GPT-2 block shared by the trainers' own forward passes (`grouped`, `causal`).

Both run a `GPT2LMHeadModel`'s modules and weights with their linears on oneDNN
(`tinyreason.lm.onednn`, fp32 on CPU; bf16 emulated by fp32 GEMMs on CPUs without a bf16
GEMM) and SDPA attention; the math is Hugging Face's GPT-2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tinyreason.lm import decode_kernel, onednn

_TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")


def conv_linear(conv, x: torch.Tensor) -> torch.Tensor:
    """A GPT-2 Conv1D layer (weight (in, out)) applied to x (M, in); on oneDNN where usable."""
    return onednn.linear_grad(x, conv.weight.t(), conv.bias)


def mlp_act(cfg, blk):
    """The MLP's activation: tanh-GELU for GPT-2's "gelu_new" family (the same function as
    HF's several-op version, one kernel: `tanh_gelu`), else the block's own module."""
    if cfg.activation_function in _TANH_GELUS:
        return tanh_gelu
    return blk.mlp.act


def tanh_gelu(h: torch.Tensor) -> torch.Tensor:
    """`F.gelu(h, approximate="tanh")`; for fp32 CPU tensors forward and backward in C
    (`decode_kernel.gelu_tanh`, 2.3-5x faster than PyTorch's kernels on an AVX2 core)."""
    if decode_kernel.use_gelu(h):
        return _TanhGelu.apply(h)
    return F.gelu(h, approximate="tanh")


class _TanhGelu(torch.autograd.Function):
    """tanh-GELU with the C forward and backward (`decode_kernel`); x saved for the backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return decode_kernel.gelu_tanh(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return decode_kernel.gelu_tanh_backward(g, x)


def attn_scale(cfg, layer: int) -> float:
    """GPT-2's attention score scale for block `layer` (0-based)."""
    scale = (cfg.n_embd // cfg.n_head) ** -0.5 if cfg.scale_attn_weights else 1.0
    return scale / float(layer + 1) if cfg.scale_attn_by_inverse_layer_idx else scale


def heads(t: torch.Tensor, n_head: int) -> torch.Tensor:
    b, s, c = t.shape
    return t.view(b, s, n_head, c // n_head).transpose(1, 2)  # (B, H, S, D)


def attention(q, k, v, mask: torch.Tensor | None, scale: float, dropout_p: float = 0.0) -> torch.Tensor:
    """softmax(q k^T * scale, masked) v for q (.., Sq, D), k/v (.., Sk, D), mask (.., Sq, Sk)
    bool or None for causal attention (Sq == Sk); dropout on the attention weights (as HF).

    SDPA, as HF's default GPT-2 attention: on CPU its flash kernel keeps the scores and the
    softmax in fp32 for bf16 inputs too. Eager attention under bf16 autocast rounds the scores
    to bf16, an error that grows with their size: on the trained demo model a GRPO batch's
    log-probs then strayed up to 1.5 nats from fp32 (0.6 with SDPA), up to 6.5 after some
    steps, and the KL penalty's exp turned that into spikes (KL 7.6, gradient norm 250). Where
    bf16 is emulated (no oneDNN bf16 GEMM, where PyTorch's bf16 kernels are slow) it runs in
    fp32 on the bf16 values and rounds the result to bf16."""
    if q.dtype == torch.bfloat16 and q.device.type == "cpu" and onednn.emulate_bf16():
        with torch.autocast("cpu", enabled=False):
            return attention(q.float(), k.float(), v.float(), mask, scale, dropout_p).to(torch.bfloat16)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=mask is None,
                                          scale=scale)
