"""fp32 linear layers on oneDNN's GEMM for CPU, without weight conversion.

On the development CPUs (AMD EPYC, AVX-512) oneDNN runs GPT-2's fp32 GEMMs 1.3-2.2x (full-width
AVX-512) or 1.0-1.6x (Zen 4) faster than the MKL sgemm behind `torch.addmm`/`F.linear` (decode
at 8 rows, training at ~760 rows, LM head, forward and both backward products;
`benchmarks/linear_kernels.py`).
`torch.ops.mkldnn._linear_pointwise` (the op PyTorch's own CPU compiler emits) reads
ordinary dense tensors, transposed views included, so weights need no `to_mkldnn` copy:
the sampler reads the live parameters and sees every optimizer step at no cost.
For decoding, where the same weights serve many small GEMMs, `pack` puts a weight in
oneDNN's blocked layout once (fp32 or bf16): at 8 rows and GPT-2 124M shapes that runs a
token's linears, LM head included, 1.3-1.6x (fp32) and 1.8x (bf16) faster than dense weights,
which oneDNN re-packs per call.
Falls back to `F.linear` where the op is missing (builds without oneDNN) or off CPU, and
leaves bf16 weights dense on CPUs whose oneDNN has no bf16 GEMM (AVX2-only x86: it needs
AVX-512 BW/VL/DQ or AVX-NE-CONVERT).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _find_op():
    try:
        return torch.ops.mkldnn._linear_pointwise if torch.backends.mkldnn.is_available() else None
    except (AttributeError, RuntimeError):
        return None


_OP = _find_op()
_REORDER = getattr(torch.ops.mkldnn, "_reorder_linear_weight", None) if _OP is not None else None
_BF16: bool | None = None  # whether oneDNN packs bf16 weights on this CPU; probed once


def bf16_packable() -> bool:
    """True when oneDNN can pack bf16 weights here (then it also runs bf16 GEMMs on them).
    Probed by packing a tiny weight once: it asks the very op `pack` calls, so it follows this
    build's own CPU checks (and caps such as ONEDNN_MAX_CPU_ISA)."""
    global _BF16
    if _BF16 is None:
        try:
            _BF16 = _REORDER is not None and _REORDER(torch.zeros(16, 16, dtype=torch.bfloat16), 1).is_mkldnn
        except RuntimeError:  # "bf16 path needs the cpu support avx_ne_convert or avx512bw, ..."
            _BF16 = False
    return _BF16


def usable(t: torch.Tensor) -> bool:
    """True when `t`'s linears can run on oneDNN here (fp32 on CPU, op present, no autocast)."""
    return (_OP is not None and t.device.type == "cpu" and t.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu"))


def pack(w: torch.Tensor, rows: int) -> torch.Tensor:
    """w (out, in), any strides, fp32 or bf16, as a oneDNN tensor in the blocked layout for
    GEMMs of about `rows` input rows (any row count works); w itself where that is not
    available (bf16 on a CPU without oneDNN bf16 GEMMs). A copy: re-pack after the weight
    changes. Only `linear` takes the result."""
    if _REORDER is None or w.device.type != "cpu" or w.dtype not in (torch.float32, torch.bfloat16):
        return w
    if w.dtype == torch.bfloat16 and not bf16_packable():
        return w
    return _REORDER(w.detach(), rows)


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None, gelu: str | None = None) -> torch.Tensor:
    """x (..., in) @ w.T + b -> (..., out) for w (out, in), any strides, or packed by `pack`
    (then x and b in its dtype); no autograd. `gelu` "tanh" or "none" (erf) applies GELU
    to the result, on oneDNN fused into the GEMM (on its float accumulator)."""
    if not (w.is_mkldnn or usable(w)):
        y = F.linear(x, w, b)
        return y if gelu is None else F.gelu(y, approximate=gelu)
    y = _OP(x.reshape(-1, x.shape[-1]).contiguous(), w, b, "none" if gelu is None else "gelu", [], gelu or "")  # (M, out)
    return y.view(*x.shape[:-1], -1)


class Linear(torch.autograd.Function):
    """y = x @ w.T + b with forward and both backward GEMMs on oneDNN; w (out, in) may be a
    transposed view (a GPT-2 Conv1D weight `.t()`): autograd maps its gradient back."""

    @staticmethod
    def forward(ctx, x, w, b):  # x (M, in), w (out, in), b (out,) or None
        x = x.contiguous()
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        return _OP(x, w, b, "none", [], "")  # (M, out)

    @staticmethod
    def backward(ctx, gy):  # gy (M, out)
        x, w = ctx.saved_tensors
        gy = gy.contiguous()
        gx = _OP(gy, w.t(), None, "none", [], "") if ctx.needs_input_grad[0] else None  # (M, in)
        gw = _OP(gy.t().contiguous(), x.t(), None, "none", [], "") if ctx.needs_input_grad[1] else None  # (out, in)
        gb = gy.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None  # (out,)
        return gx, gw, gb


def linear_grad(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """Differentiable `linear`: x (M, in), w (out, in) -> (M, out)."""
    if not usable(w):
        return F.linear(x, w, b)
    return Linear.apply(x, w, b)
