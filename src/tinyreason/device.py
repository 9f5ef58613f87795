"""Device and dtype choice shared by both halves (`auto|cpu|cuda`, `float32|bfloat16`)."""

from __future__ import annotations

import contextlib
import re
from typing import Literal

import torch

from tinyreason.errors import UserError

DeviceName = Literal["auto", "cpu", "cuda"]
DtypeName = Literal["float32", "bfloat16"]


def pick_device(name: str = "auto") -> torch.device:
    """auto (CUDA when available, else CPU), cpu, cuda or cuda:N; anything else is a UserError."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", name):
        raise UserError(f"unknown device '{name}' (auto, cpu, cuda or cuda:N)")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device '{name}' requested but CUDA is not available")
    return torch.device(name)


def pick_dtype(name: str) -> torch.dtype:
    """fp16 is refused: it is unusably slow on CPU and bf16 covers the GPU case."""
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if name not in table:
        raise UserError(f"unsupported dtype '{name}' (float32 or bfloat16)")
    return table[name]


def autocast(device: torch.device, dtype: torch.dtype):
    """bf16 autocast on the device when asked; a no-op context for fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


EMULATED_BF16_NOTE = ("note: this CPU has no bf16 GEMM (AVX2-only); bf16 is emulated with fp32 GEMMs "
                      "(same values, no faster than dtype=float32)")


def slow_bf16(device: torch.device, dtype: torch.dtype) -> bool:
    """True for bf16 on a CPU without a oneDNN bf16 GEMM (AVX2-only x86): PyTorch's bf16
    matmuls run there on a generic path, several times slower than fp32
    (`benchmarks/bf16_emulation.py`, docs/benchmarks.md). False with the kernels switch off."""
    if dtype != torch.bfloat16 or device.type != "cpu":  # checked first: called per HRM linear
        return False
    from tinyreason import kernels

    return kernels.emulate_bf16()
