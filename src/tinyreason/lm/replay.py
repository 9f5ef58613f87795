"""The rollout's forward pass, kept for the update: the completion tokens' linear outputs.

GRPO's first update iteration runs the policy over the tokens the sampler has just generated,
with the weights the sampler used. Its forward pass recomputes, up to float rounding, every
linear output the decode steps already computed, token by token: a third of the update's
GEMM FLOPs (forward 2N, backward 4N per token). With `sample(..., keep_activations=True)` the
one-call fp32 decode step (`kernels.Step`, CPU) writes each token's linear outputs -
c_attn, attention c_proj, c_fc before its activation, MLP c_proj, and the LM head's logits -
into an `Activations`, and `grouped.grouped_logprobs(..., kept=...)` takes them in place of
the completion rows' forward GEMMs (`KeptLinear`). Everything else of the forward runs as
before on those outputs (layer norms, attention, GELU, residual adds: cheap next to the GEMMs),
so autograd has the inputs its backward needs, and the backward is the plain linear's.
Prompt rows are computed as usual (the sampler's prefill is not kept).

Departure from TRL, whose update always recomputes: the log-probs and gradients are those
of the rollout's own forward, equal to a recomputation up to float rounding (tested, values
and gradients). Later iterations (`num_iterations` > 1), bf16 autocast and runs whose sampler
does not use the one-call step recompute as before.
"""

from __future__ import annotations

import torch

from tinyreason import kernels
from tinyreason.kernels import STEP_STORES


class Activations:
    """Per-token linear outputs and attention results of one rollout's decode steps, batch rows
    in sample order: per layer c_attn (N, Tk, 3C), the attention output (N, Tk, C) and its
    log-sum-exp per head (N, Tk, H), attn c_proj (N, Tk, C), c_fc before its activation
    (N, Tk, F), mlp c_proj (N, Tk, C) (`QKV`, `ATT`, `LSE`, `PROJ`, `FC`, `OUT` index them); then
    (N, Tk, V) logits. Position j holds what completion token j produced (Tk = max_new_tokens - 1:
    the last token is never fed). fp32."""

    INDEX = {name: j for j, name in enumerate(STEP_STORES)}  # a layer's stores in `decode_step.c`'s order
    QKV, ATT, LSE, PROJ, FC, OUT = map(INDEX.__getitem__, ("qkv", "att", "lse", "proj", "fc", "out"))

    def __init__(self, layers: list[tuple[torch.Tensor, ...]], logits: torch.Tensor):
        self.layers, self.logits = layers, logits

    @staticmethod
    def empty(n: int, tk: int, c: int, h: int, f: int, v: int, n_layer: int) -> "Activations":
        with torch.inference_mode(False):  # ordinary tensors even inside the sampler: autograd saves some
            width = {"qkv": 3 * c, "att": c, "lse": h, "proj": c, "fc": f, "out": c}
            layers = [tuple(torch.empty(n, tk, width[k]) for k in STEP_STORES) for _ in range(n_layer)]
            return Activations(layers, torch.empty(n, tk, v))

    @property
    def capacity(self) -> int:
        return self.logits.shape[1]

    def stores(self) -> list[torch.Tensor]:
        """The stores in `decode_step.c`'s order (`kernels.STEP_STORES` per layer), then the logits."""
        return [z for layer in self.layers for z in layer] + [self.logits]

    def clear_unwritten(self, lengths: torch.Tensor) -> None:
        """Zero what no decode step wrote: row r's positions from lengths[r] - 1 on (a stopped
        row is dropped or fed padding-like tokens after its stop token; those positions only
        predict padding, but their values enter the backward multiplied by zero, so they must
        be finite). Positions before that were fed while the row was live."""
        for r, n in enumerate(lengths.tolist()):
            if n - 1 < self.capacity:
                for z in self.stores():
                    z[r, max(n - 1, 0):].zero_()

    def rows(self, sl: slice) -> "Activations":
        """The same stores for batch rows `sl` (views)."""
        return Activations([tuple(z[sl] for z in layer) for layer in self.layers], self.logits[sl])


def kept_linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, kept: torch.Tensor | None,
                m0: int = 0) -> torch.Tensor:
    """x (M, in) @ w.T + b for w (out, in) (any strides). With `kept` (n, >= T, out): rows m0 and
    after, n x T of them, are taken from kept[:, :T] and only rows [0, m0) are computed; without
    it, `kernels.linear_grad` of all rows."""
    if kept is None:
        return kernels.linear_grad(x, w, b)
    return KeptLinear.apply(x, w, b, kept, m0)


class KeptLinear(torch.autograd.Function):
    """y = x @ w.T + b whose rows from m0 on are given (the rollout's outputs for those tokens) and
    rows before it computed; backward as `kernels.linear_grad`'s fp32 route (`kernels.linear_backward`). fp32."""

    @staticmethod
    def forward(ctx, x, w, b, kept, m0: int):  # x (M, in), w (out, in), b (out,) or None, kept (n, >= T, out)
        m, (n, _, out) = x.shape[0], kept.shape
        t = (m - m0) // n if n else 0
        if n * t != m - m0 or out != w.shape[0] or t > kept.shape[1]:
            raise ValueError(f"kept outputs {tuple(kept.shape)} do not fit rows {m0}..{m} of a linear to {w.shape[0]}")
        x = x.contiguous()
        y = x.new_empty(m, out)  # (M, out)
        if m0:
            y[:m0] = kernels.gemm(x[:m0], w, b)  # (m0, out)
        y[m0:].view(n, t, out).copy_(kept[:, :t])  # (n, T, out)
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        return y

    @staticmethod
    def backward(ctx, gy):  # gy (M, out)
        x, w = ctx.saved_tensors
        gx, gw, gb = kernels.linear_backward(gy, x, w, ctx.needs_input_grad[:3], ctx.has_bias)
        return gx, gw, gb, None, None


def kept_attention(q, k, v, bias: torch.Tensor, scale: float, out: torch.Tensor, lse: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T * scale + bias) v for q (N, H, T, D), k/v (N, H, S, D), bias (N, 1, T, S)
    additive (0 or -inf, q's dtype), given its result: out (N, T, H*D) and the softmaxes'
    log-sum-exps lse (N, T, H), as the rollout's decode steps computed them -> (N, H, T, D).
    Backward: the CPU flash-attention backward of `F.scaled_dot_product_attention` (PyTorch's own
    kernel) on these, where its probe passes, else autograd through the plain math
    (`kernels.flash_attention_backward`). fp32 CPU."""
    n, h, t, d = q.shape
    return KeptAttention.apply(q, k, v, bias, scale, out.view(n, t, h, d).transpose(1, 2), lse.transpose(1, 2))


class KeptAttention(torch.autograd.Function):
    """Attention whose forward result is given (`kept_attention`); the gradients are those of
    SDPA's CPU flash kernel, which recomputes the softmax from q, k and the log-sum-exps."""

    @staticmethod
    def forward(ctx, q, k, v, bias, scale: float, out, lse):  # bias (N, 1, T, S), out (N, H, T, D), lse (N, H, T)
        ctx.save_for_backward(q, k, v, bias, out, lse)
        ctx.scale = scale
        return out.clone()

    @staticmethod
    def backward(ctx, g):
        q, k, v, bias, out, lse = ctx.saved_tensors
        gq, gk, gv = kernels.flash_attention_backward(g, q, k, v, out, lse, bias, ctx.scale)
        return gq, gk, gv, None, None, None, None
