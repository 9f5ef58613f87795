"""Device and dtype choice shared by both halves (`auto|cpu|cuda`, `float32|bfloat16`)."""

from __future__ import annotations

import contextlib
from typing import Literal

import torch

from tinyreason.errors import UserError

DeviceName = Literal["auto", "cpu", "cuda"]
DtypeName = Literal["float32", "bfloat16"]


def pick_device(name: str = "auto") -> torch.device:
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
