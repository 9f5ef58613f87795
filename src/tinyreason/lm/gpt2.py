"""GPT-2's forward, once, for the sampler, the GRPO update and SFT.

`blocks` runs the transformer blocks of a `GPT2LMHeadModel` - layer norm, c_attn, attention,
c_proj, residual, layer norm, c_fc, activation, c_proj, residual - over a small set of ops:
linear, attention, GELU and layer norm. Each caller supplies the weights in the form its
linears take and the attention of its mode; nothing else of the block differs:

| mode | caller | attention | linears |
|---|---|---|---|
| SFT, causal rows | `causal.hidden_states` | causal SDPA, dropout as the config | `linear_grad`, autograd |
| GRPO update / reference pass, shared prompt | `grouped.grouped_logprobs` | prompt rows causal; completion rows on their group's prompt K/V (C kernel or SDPA) | `linear_grad`, or kept rollout outputs |
| prefill | `sampler` (`Decoder`) | SDPA with a padding mask, K/V written to the cache | packed weights, no autograd |
| KV-cache decode | `sampler` (`Decoder`) | cache + shared-prefix attention | packed weights; or the whole token in one C call (`kernels.Step`, the "decode step" op, whose reference is this per-op path) |

Every op has a plain PyTorch implementation - the reference, and the path on GPU - and fast
CPU kernels (`tinyreason.kernels`); which one runs is decided in one place,
`tinyreason.kernels.choose` (the switch `kernels: auto | off`, device, dtype, threads, what
the machine offers, shapes). Keeping the rollout's activations for the update is an option of
the decode step and the grouped pass (`replay.Activations`).

The math is Hugging Face's GPT-2. Departure: under bf16 autocast attention keeps its scores
and softmax in fp32 (SDPA's CPU flash kernel, HF's default; see `attention`), where HF's eager
attention rounds the scores to bf16.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tinyreason import kernels

TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")  # the same function, one kernel here
linear_grad = kernels.linear_grad  # differentiable linear: x (M, in), w (out, in) -> (M, out)


@dataclass
class Layer:
    """One block's weights in the form a forward's linears take: ln1/ln2 (weight, bias); qkv,
    proj, fc, out (weight, bias) with weight (out, in) (a view, a copy or packed); the
    attention score scale."""

    ln1: tuple
    qkv: tuple
    proj: tuple
    ln2: tuple
    fc: tuple
    out: tuple
    scale: float


def attn_scale(cfg, layer: int) -> float:
    """GPT-2's attention score scale for block `layer` (0-based)."""
    scale = (cfg.n_embd // cfg.n_head) ** -0.5 if cfg.scale_attn_weights else 1.0
    return scale / float(layer + 1) if cfg.scale_attn_by_inverse_layer_idx else scale


def model_layers(model) -> list[Layer]:
    """The blocks of a GPT2LMHeadModel as `Layer`s of its live parameters (Conv1D weights as
    (out, in) transposed views): what the trainers' forward differentiates."""
    def lin(conv):
        return conv.weight.t(), conv.bias

    return [Layer((b.ln_1.weight, b.ln_1.bias), lin(b.attn.c_attn), lin(b.attn.c_proj), (b.ln_2.weight, b.ln_2.bias),
                  lin(b.mlp.c_fc), lin(b.mlp.c_proj), attn_scale(model.config, i))
            for i, b in enumerate(model.transformer.h)]


def blocks(x: torch.Tensor, layers: list[Layer], eps: float, attend: Callable, linear: Callable,
           mlp_in: Callable, drop: Callable | None = None) -> torch.Tensor:
    """The residual stream x (..., C) after every block.

    attend(i, qkv, scale) -> the attention output (..., C) of block i for its c_attn output;
    linear(x, (w, b), i, j) -> x @ w.T + b, j the `kernels.STEP_STORES` name of the output
    ("qkv", "proj", "out"; a forward that keeps rollout activations takes them by it);
    mlp_in(h, (w, b), i) -> the activation of c_fc's output (fused or not); drop: dropout on
    the two residual branches (SFT in training mode), else none."""
    c = x.shape[-1]
    for i, ly in enumerate(layers):
        qkv = linear(F.layer_norm(x, (c,), *ly.ln1, eps), ly.qkv, i, "qkv")
        y = linear(attend(i, qkv, ly.scale), ly.proj, i, "proj")
        x = x + (y if drop is None else drop(y))
        y = linear(mlp_in(F.layer_norm(x, (c,), *ly.ln2, eps), ly.fc, i), ly.out, i, "out")
        x = x + (y if drop is None else drop(y))
    return x


def mlp_act(cfg, blk) -> Callable:
    """The MLP's activation: tanh-GELU for GPT-2's "gelu_new" family (the same function as
    HF's several-op version, one kernel: `tanh_gelu`), else the block's own module."""
    if cfg.activation_function in TANH_GELUS:
        return tanh_gelu
    return blk.mlp.act


def tanh_gelu(h: torch.Tensor) -> torch.Tensor:
    """`F.gelu(h, approximate="tanh")`; forward and backward in C where `kernels.choose.gelu`."""
    if kernels.choose.gelu(h):
        return _TanhGelu.apply(h)
    return F.gelu(h, approximate="tanh")


class _TanhGelu(torch.autograd.Function):
    """tanh-GELU with the C forward and backward (`kernels.gelu_tanh`); x saved for the backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return kernels.gelu_tanh(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return kernels.gelu_tanh_backward(g, x)


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
    bf16 is emulated (`kernels.emulate_bf16`: no bf16 GEMM here) it runs in fp32 on the bf16
    values and rounds the result to bf16."""
    if q.dtype == torch.bfloat16 and q.device.type == "cpu" and kernels.emulate_bf16():
        with torch.autocast("cpu", enabled=False):
            return attention(q.float(), k.float(), v.float(), mask, scale, dropout_p).to(torch.bfloat16)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=mask is None,
                                          scale=scale)
