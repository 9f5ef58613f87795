"""fp32 linear layers on oneDNN's GEMM for CPU, without weight conversion.

On the development CPUs with AVX-512 (AMD EPYC) oneDNN runs GPT-2's fp32 GEMMs 1.3-2.2x
(full-width AVX-512) or 1.0-1.6x (Zen 4) faster than the MKL sgemm behind
`torch.addmm`/`F.linear` (decode at 8 rows, training at ~760 rows, LM head, forward and both
backward products; `benchmarks/linear_kernels.py`). On an AVX2-only CPU (Zen 1) MKL wins
against oneDNN from dense tensors (124M shapes: forward 1.5x, weight gradient 1.65x, input
gradient on par; the small model's GRPO update 7%), so there `linear`/`linear_grad` keep fp32
dense weights on `F.linear` (`USE_ONEDNN_FP32`); packed weights (below) still beat MKL there
at decode (124M, 8 rows: 1.44x).
`torch.ops.mkldnn._linear_pointwise` (the op PyTorch's own CPU compiler emits) reads
ordinary dense tensors, transposed views included, so weights need no `to_mkldnn` copy:
the sampler reads the live parameters and sees every optimizer step at no cost.
For decoding, where the same weights serve many small GEMMs, `pack` puts a weight in
oneDNN's blocked layout once (fp32 or bf16): at 8 rows and GPT-2 124M shapes that runs a
token's linears, LM head included, 1.3-1.6x (fp32) and 1.8x (bf16) faster than dense weights,
which oneDNN re-packs per call.
Falls back to `F.linear` where the op is missing (builds without oneDNN) or off CPU.

CPUs whose oneDNN has no bf16 GEMM (AVX2-only x86: it needs AVX-512 BW/VL/DQ or
AVX-NE-CONVERT) run PyTorch's bf16 matmuls on a slow generic path (3-16x slower than fp32
on a Zen 1 core at GPT-2 shapes). There bf16 is emulated (`emulate_bf16`): bf16 operands
are widened to fp32 (exactly), multiplied by the fp32 GEMM (fp32 accumulation, as a bf16
GEMM) and the result rounded to bf16 - the values of a bf16 GEMM up to summation order, at
fp32 speed. `pack` then turns a bf16 weight into an fp32 copy of its (bf16) values.
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


def avx512() -> bool:
    """True when PyTorch's CPU kernels run AVX-512 here (its own capability, which follows
    ATEN_CPU_CAPABILITY caps): the CPUs where oneDNN's fp32 GEMM was measured faster than MKL."""
    return torch.backends.cpu.get_cpu_capability().startswith("AVX512")


# fp32 from dense weights on oneDNN only where it was measured faster than MKL: AVX-512 CPUs
USE_ONEDNN_FP32 = _OP is not None and avx512()


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


def emulate_bf16() -> bool:
    """True when bf16 matmuls on this CPU should run as widened fp32 GEMMs (no oneDNN bf16
    GEMM, the oneDNN op present). Callers check that their tensors are on the CPU."""
    return _OP is not None and not bf16_packable()


def usable(t: torch.Tensor) -> bool:
    """True when `t`'s linears run on oneDNN here (fp32 on CPU, `USE_ONEDNN_FP32`, no autocast)."""
    return (USE_ONEDNN_FP32 and t.device.type == "cpu" and t.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu"))


def pack(w: torch.Tensor, rows: int) -> torch.Tensor:
    """w (out, in), any strides, fp32 or bf16, as a oneDNN tensor in the blocked layout for
    GEMMs of about `rows` input rows (any row count works); w itself where that is not
    available. A bf16 weight on a CPU without oneDNN bf16 GEMMs becomes a packed fp32 copy of
    its values (`linear` then emulates bf16). A copy: re-pack after the weight changes. Only
    `linear` takes the result."""
    if _REORDER is None or w.device.type != "cpu" or w.dtype not in (torch.float32, torch.bfloat16):
        return w
    if w.dtype == torch.bfloat16 and not bf16_packable():
        w = w.float()
    return _REORDER(w.detach(), rows)


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None, gelu: str | None = None) -> torch.Tensor:
    """x (..., in) @ w.T + b -> (..., out) for w (out, in), any strides, or packed by `pack`
    (then x and b in its dtype, or bf16 for the fp32 copy of a bf16 weight: emulated bf16,
    bf16 out); no autograd. `gelu` "tanh" or "none" (erf) applies GELU to the result, on oneDNN
    fused into the GEMM (on its float accumulator)."""
    if x.dtype == torch.bfloat16 and w.dtype == torch.float32:  # bf16 emulated on an fp32 copy of bf16 values
        y = linear(x.float(), w, None if b is None else b.float(), gelu)
        return y.to(x.dtype)
    if not (w.is_mkldnn or usable(w)):
        y = F.linear(x, w, b)
        return y if gelu is None else F.gelu(y, approximate=gelu)
    y = _OP(x.reshape(-1, x.shape[-1]).contiguous(), w, b, "none" if gelu is None else "gelu", [], gelu or "")  # (M, out)
    return y.view(*x.shape[:-1], -1)


class Linear(torch.autograd.Function):
    """y = x @ w.T + b with the forward GEMM on oneDNN and both backward GEMMs on `_gemm`'s
    route (oneDNN where `USE_ONEDNN_FP32`, else MKL); w (out, in) may be a transposed view (a
    GPT-2 Conv1D weight `.t()`): autograd maps its gradient back."""

    @staticmethod
    def forward(ctx, x, w, b):  # x (M, in), w (out, in), b (out,) or None
        x = x.contiguous()
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        return _OP(x, w, b, "none", [], "")  # (M, out)

    @staticmethod
    def backward(ctx, gy):  # gy (M, out)
        x, w = ctx.saved_tensors
        return linear_backward(gy, x, w, ctx.needs_input_grad, ctx.has_bias)


def linear_backward(gy: torch.Tensor, x: torch.Tensor, w: torch.Tensor, needs: tuple, has_bias: bool):
    """Gradients (x, w, b) of y = x @ w.T + b for gy (M, out), x (M, in) contiguous, w (out, in):
    `_gemm`'s route; None where `needs` (x, w, b) says so or there is no bias."""
    gy = gy.contiguous()
    gx = _gemm(gy, w.t(), None) if needs[0] else None  # (M, in)
    gw = _weight_grad(gy, x, w) if needs[1] else None  # (out, in), w's strides
    gb = gy.sum(0) if has_bias and needs[2] else None  # (out,)
    return gx, gw, gb


def _weight_grad(gy: torch.Tensor, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """gy.T @ x (out, in) laid out like w. The op wants a contiguous input, so one operand is
    transposed into a copy either way; this picks the one that yields w's layout: for a
    transposed view (a Conv1D weight `.t()`) it computes (x.T @ gy) (in, out) and returns its
    `.t()`, which autograd hands to the Conv1D weight as a contiguous gradient, where the
    other order made AccumulateGrad copy every weight gradient into the parameter's layout:
    GPT-2 124M fp32 update (forward + backward) 7.06 -> 6.69 s on one Zen 4 core. fp32 GEMM
    on `_gemm`'s route; MKL reads the transposed operands in place, so there no copy is made
    (124M's LM head, 672 x 50257: 0.89-0.93 -> 0.73-0.84 s on a Zen 3 core)."""
    conv = w.stride(0) == 1 and w.stride(1) != 1  # (out, in) view of an (in, out) tensor
    if not USE_ONEDNN_FP32:
        return torch.mm(x.t(), gy).t() if conv else torch.mm(gy.t(), x)
    if conv:
        return _gemm(x.t().contiguous(), gy.t(), None).t()  # (in, out) -> (out, in) view
    return _gemm(gy.t().contiguous(), x.t(), None)  # (out, in)


class Bf16Linear(torch.autograd.Function):
    """What `F.linear` computes under CPU bf16 autocast - operands and bias rounded to bf16,
    fp32 accumulation, bf16 output; bf16 gradients, cast to the dtypes of x, w and b - with
    every GEMM run in fp32 on the widened bf16 values (`emulate_bf16`). Runs without autocast."""

    @staticmethod
    def forward(ctx, x, w, b, head):  # x (M, in) any float dtype, w (out, in) fp32, b (out,) or None
        with torch.autocast("cpu", enabled=False):
            xb = x.to(torch.bfloat16).contiguous()  # (M, in) what autocast feeds the GEMM
            wf = w.to(torch.bfloat16).float()  # (out, in)
            bf = None if b is None else b.to(torch.bfloat16).float()
            y = _gemm(xb.float(), wf, bf, dnn=head).to(torch.bfloat16)  # (M, out)
        ctx.save_for_backward(xb, w)
        ctx.x_dtype, ctx.has_bias = x.dtype, b is not None
        return y

    @staticmethod
    def backward(ctx, gy):  # gy (M, out) bf16
        xb, w = ctx.saved_tensors
        with torch.autocast("cpu", enabled=False):
            gyf = gy.to(torch.bfloat16).float().contiguous()  # (M, out) bf16 values
            gx = gw = gb = None
            if ctx.needs_input_grad[0]:  # (M, in)
                gx = _gemm(gyf, w.to(torch.bfloat16).float().t(), None).to(torch.bfloat16).to(ctx.x_dtype)
            if ctx.needs_input_grad[1]:  # (out, in), w's strides
                gw = _weight_grad(gyf, xb.float(), w).to(torch.bfloat16).to(w.dtype)
            if ctx.has_bias and ctx.needs_input_grad[2]:  # (out,)
                gb = gyf.sum(0).to(torch.bfloat16).float()
        return gx, gw, gb, None


def gemm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """fp32 x (M, in) contiguous @ w.T + b, no autograd, on the route `Linear`'s GEMMs take."""
    return _gemm(x, w, b)


def _gemm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, dnn: bool = False) -> torch.Tensor:
    """fp32 x (M, in) @ w.T + b for w (out, in), any strides, on oneDNN where `USE_ONEDNN_FP32`
    or `dnn` (x contiguous then), else MKL."""
    return _OP(x, w, b, "none", [], "") if USE_ONEDNN_FP32 or dnn else F.linear(x, w, b)


def linear_grad(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None, head: bool = False) -> torch.Tensor:
    """Differentiable `linear`: x (M, in), w (out, in) -> (M, out). Under CPU bf16 autocast on
    a CPU without a oneDNN bf16 GEMM, bf16 is emulated (`Bf16Linear`).

    `head`: w is a language-model head, a dense row-major (V, C) weight with a large V; its
    forward product then runs on oneDNN on every CPU where the op exists. With that layout
    MKL's x @ w.T ran at 35 GFLOP/s against oneDNN's 52-55 at GPT-2 124M's head on one Zen 3
    core, where MKL won the other products (`benchmarks/linear_kernels.py`); the backward
    products stay on `_gemm`'s route."""
    cpu32 = w.device.type == "cpu" and w.dtype == torch.float32
    if cpu32 and torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16 and emulate_bf16():
        return Bf16Linear.apply(x, w, b, head)
    if usable(w) or (head and cpu32 and _OP is not None and not torch.is_autocast_enabled("cpu")):
        return Linear.apply(x, w, b)
    return F.linear(x, w, b)
