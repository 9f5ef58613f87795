"""bf16 on a CPU without a oneDNN bf16 GEMM: PyTorch's bf16 kernels vs the fp32-GEMM emulation.

What `tinyreason.kernels.emulate_bf16` replaces, at GPT-2 shapes, in one run: a linear
forward + backward under bf16 autocast (`F.linear`, what a Hugging Face model or TRL runs, vs
`kernels.Bf16Linear`), a decode linear on bf16 weights (dense `F.linear` vs the sampler's
fp32-packed copy of the bf16 values), and a bf16 attention matmul (`torch.matmul` vs the
widened fp32 one). Both sides give the values of a bf16 GEMM (fp32 accumulation, bf16
result); the script also prints the largest difference. On CPUs that have a bf16 GEMM the
emulation is not used by tinyreason (this prints what it would cost there).

    .venv/bin/python benchmarks/bf16_emulation.py [--threads 1] [--reps 3]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from linear_kernels import setup, timed

from tinyreason import kernels

SHAPES = {"small (256 -> 768)": (256, 768), "124M (768 -> 3072)": (768, 3072)}


def train_linear(x, w, emulated: bool) -> torch.Tensor:
    """Forward + backward of one linear under bf16 autocast; returns the output."""
    x, w = x.detach().requires_grad_(), w.detach().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = kernels.Bf16Linear.apply(x, w, None) if emulated else F.linear(x, w)
    y.float().sum().backward()
    return y.detach()


def main() -> None:
    args = setup()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); oneDNN bf16 GEMM on this CPU: "
          f"{kernels.bf16_packable()} (tinyreason emulates bf16: {kernels.emulate_bf16()})")
    for name, (i, o) in SHAPES.items():
        w = torch.randn(o, i) * i**-0.5  # (out, in) fp32 master weight
        x = torch.randn(764, i)  # (M, in) a GRPO update's tokens
        native = timed(lambda: train_linear(x, w, False), args.reps)
        emul = timed(lambda: train_linear(x, w, True), args.reps)
        diff = (train_linear(x, w, True).float() - train_linear(x, w, False).float()).abs().max().item()
        print(f"{name:20s} train fwd+bwd, 764 rows: bf16 kernels {native * 1e3:8.1f} ms  emulated "
              f"{emul * 1e3:8.1f} ms  speed-up {native / emul:5.2f}x  max |diff| {diff:.1e}")
        wb, xd = w.bfloat16(), torch.randn(8, i).bfloat16()  # (out, in), (8, in) decode rows
        packed = kernels.dnn_pack(wb.float(), 8)  # the sampler's fp32 copy of bf16 values
        native = timed(lambda: F.linear(xd, wb), args.reps * 30)
        emul = timed(lambda: kernels.dnn_linear(xd, packed), args.reps * 30)
        diff = (kernels.dnn_linear(xd, packed).float() - F.linear(xd, wb).float()).abs().max().item()
        print(f"{name:20s} decode, 8 rows:          bf16 kernels {native * 1e3:8.3f} ms  emulated "
              f"{emul * 1e3:8.3f} ms  speed-up {native / emul:5.2f}x  max |diff| {diff:.1e}")
    q, k = torch.randn(8, 12, 176, 64).bfloat16(), torch.randn(8, 12, 176, 64).bfloat16()  # (N, H, T, D)
    native = timed(lambda: torch.matmul(q, k.transpose(-1, -2)), args.reps)
    emul = timed(lambda: torch.matmul(q.float(), k.float().transpose(-1, -2)).bfloat16(), args.reps)
    print(f"attention scores (8 x 12 heads, 176 x 176): bf16 kernels {native * 1e3:.1f} ms  emulated "
          f"{emul * 1e3:.1f} ms  speed-up {native / emul:5.2f}x")


if __name__ == "__main__":
    main()
