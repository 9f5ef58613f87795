"""fp32 linear layers on oneDNN's GEMM for CPU, without weight conversion.

On AVX-512 CPUs oneDNN ran GPT-2's fp32 GEMMs faster than the MKL sgemm behind
`torch.addmm`/`F.linear` (decode, training rows, LM head, forward and both backward products);
on AVX2-only CPUs MKL won from dense tensors, so there `linear`/`linear_grad` keep fp32 dense
weights on `F.linear` (`_switch.onednn_fp32`); packed weights (below) still beat MKL there at
decode (`benchmarks/linear_kernels.py`; figures in docs/benchmarks.md, "Kernels").
`torch.ops.mkldnn._linear_pointwise` (the op PyTorch's own CPU compiler emits) reads
ordinary dense tensors, transposed views included, so weights need no `to_mkldnn` copy:
the sampler reads the live parameters and sees every optimizer step at no cost.
For decoding, where the same weights serve many small GEMMs, `pack` puts a weight in
oneDNN's blocked layout once (fp32 or bf16), where dense weights are re-packed per call.
Both private ops (`_linear_pointwise`, `_reorder_linear_weight`) are probed by a real call at
first use (`op`, `reorder`, against `F.linear`); falls back to `F.linear` where an op is
missing (builds without oneDNN), fails its probe, or off CPU.

CPUs whose oneDNN has no bf16 GEMM (AVX2-only x86: it needs AVX-512 BW/VL/DQ or
AVX-NE-CONVERT) run PyTorch's bf16 matmuls on a slow generic path, several times slower than
fp32. There bf16 is emulated (`emulate_bf16`): bf16 operands
are widened to fp32 (exactly), multiplied by the fp32 GEMM (fp32 accumulation, as a bf16
GEMM) and the result rounded to bf16 - the values of a bf16 GEMM up to summation order, at
fp32 speed. `pack` then turns a bf16 weight into an fp32 copy of its (bf16) values.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tinyreason.kernels import _probe, _switch


def _find(name: str):
    try:
        return getattr(torch.ops.mkldnn, name) if torch.backends.mkldnn.is_available() else None
    except (AttributeError, RuntimeError):
        return None


_OP = _find("_linear_pointwise")
_REORDER = _find("_reorder_linear_weight")
_BF16: bool | None = None  # whether oneDNN packs bf16 weights on this CPU; probed once


def op():
    """`torch.ops.mkldnn._linear_pointwise` where it exists and passes its probe (a real fp32
    call, plain and with fused tanh-GELU, against `F.linear`), else None."""
    if _OP is None:
        return None
    x, w, b = torch.linspace(-1, 1, 15).view(3, 5), torch.linspace(-0.5, 0.7, 20).view(4, 5), torch.linspace(-1, 1, 4)
    ok = _probe.passes("torch.ops.mkldnn._linear_pointwise",
                       lambda: (_OP(x, w, b, "none", [], ""), _OP(x, w.t().contiguous().t(), b, "gelu", [], "tanh")),
                       lambda: (F.linear(x, w, b), F.gelu(F.linear(x, w, b), approximate="tanh")))
    return _OP if ok else None


def reorder():
    """`torch.ops.mkldnn._reorder_linear_weight` where it and `op()` pass their probes (an fp32
    weight packed for 2 rows, then multiplied, against `F.linear`), else None."""
    if _REORDER is None or op() is None:
        return None
    x, w = torch.linspace(-1, 1, 10).view(2, 5), torch.linspace(-0.5, 0.7, 20).view(4, 5)
    ok = _probe.passes("torch.ops.mkldnn._reorder_linear_weight",
                       lambda: _OP(x, _REORDER(w, 2), None, "none", [], ""), lambda: F.linear(x, w))
    return _REORDER if ok else None


def avx512() -> bool:
    """True when PyTorch's CPU kernels run AVX-512 here (its own capability, which follows
    ATEN_CPU_CAPABILITY caps): the CPUs where oneDNN's fp32 GEMM was measured faster than MKL."""
    return torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def fp32_route() -> bool:
    """fp32 GEMMs from dense weights on oneDNN (`_switch.onednn_fp32`): AVX-512 CPUs, else MKL."""
    return _switch.onednn_fp32()


def bf16_packable() -> bool:
    """True when oneDNN can pack bf16 weights here (then it also runs bf16 GEMMs on them).
    Probed by packing a tiny weight once: it asks the very op `pack` calls, so it follows this
    build's own CPU checks (and caps such as ONEDNN_MAX_CPU_ISA)."""
    global _BF16
    if _BF16 is None:
        try:
            _BF16 = reorder() is not None and _REORDER(torch.zeros(16, 16, dtype=torch.bfloat16), 1).is_mkldnn
        except RuntimeError:  # "bf16 path needs the cpu support avx_ne_convert or avx512bw, ..."
            _BF16 = False
    return _BF16


def pack(w: torch.Tensor, rows: int) -> torch.Tensor:
    """w (out, in), any strides, fp32 or bf16, as a oneDNN tensor in the blocked layout for
    GEMMs of about `rows` input rows (any row count works); w itself where that is not
    available. A bf16 weight on a CPU without oneDNN bf16 GEMMs becomes a packed fp32 copy of
    its values (`linear` then emulates bf16). A copy: re-pack after the weight changes. Only
    `linear` takes the result."""
    if not _switch.onednn_pack(w):
        return w
    if w.dtype == torch.bfloat16 and (not bf16_packable() or _switch.emulate_bf16()):
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
    if not (w.is_mkldnn or _switch.onednn_fp32(w)):
        y = F.linear(x, w, b)
        return y if gelu is None else F.gelu(y, approximate=gelu)
    y = _OP(x.reshape(-1, x.shape[-1]).contiguous(), w, b, "none" if gelu is None else "gelu", [], gelu or "")  # (M, out)
    return y.view(*x.shape[:-1], -1)


class Linear(torch.autograd.Function):
    """y = x @ w.T + b with the forward GEMM on oneDNN and both backward GEMMs on `_gemm`'s
    route (oneDNN where `_switch.onednn_fp32`, else MKL); w (out, in) may be a transposed view (a
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
    other order made AccumulateGrad copy every weight gradient into the parameter's layout.
    fp32 GEMM on `_gemm`'s route; MKL reads the transposed operands in place, so there no copy
    is made."""
    conv = w.stride(0) == 1 and w.stride(1) != 1  # (out, in) view of an (in, out) tensor
    if not fp32_route():
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
    """fp32 x (M, in) @ w.T + b for w (out, in), any strides, on oneDNN where `_switch.onednn_fp32`
    or `dnn` (x contiguous then), else MKL."""
    return _OP(x, w, b, "none", [], "") if (dnn and op() is not None) or fp32_route() else F.linear(x, w, b)


def linear_grad(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None, head: bool = False) -> torch.Tensor:
    """Differentiable `linear`: x (M, in), w (out, in) -> (M, out). Under CPU bf16 autocast on
    a CPU without a oneDNN bf16 GEMM, bf16 is emulated (`Bf16Linear`).

    `head`: w is a language-model head, a dense row-major (V, C) weight with a large V; its
    forward product then runs on oneDNN on every CPU where the op exists (`_switch.onednn_head`:
    with that layout MKL's x @ w.T was slower than oneDNN's even where MKL won the other
    products, `benchmarks/linear_kernels.py`); the backward products stay on `_gemm`'s route."""
    cpu32 = w.device.type == "cpu" and w.dtype == torch.float32
    if (cpu32 and torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
            and _switch.emulate_bf16()):
        return Bf16Linear.apply(x, w, b, head)
    if _switch.onednn_fp32(w) or (head and _switch.onednn_head(w)):
        return Linear.apply(x, w, b)
    return F.linear(x, w, b)
