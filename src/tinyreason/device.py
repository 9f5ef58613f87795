"""Device and dtype choice shared by both halves (`auto|cpu|cuda`, `float32|bfloat16`)."""

from __future__ import annotations

import contextlib
import ctypes
import math
import mmap
import re
import sys
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
    matmuls run there on a generic path, 3-16x slower than fp32 (Zen 1, GPT-2 shapes;
    `benchmarks/bf16_emulation.py`)."""
    if dtype != torch.bfloat16 or device.type != "cpu":  # checked first: called per HRM linear
        return False
    from tinyreason.lm import onednn

    return onednn.emulate_bf16()


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers (malloc.h)


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep the memory a CPU training step frees, for the next step.

    By default glibc serves blocks above a (dynamic, <= 32 MiB) threshold with fresh `mmap`s
    and returns freed heap tops to the OS, so every step's gradients, logits and activations
    are faulted in and zeroed page by page again (GPT-2 124M bf16 GRPO: ~130k page faults,
    ~0.4 s of a 2.5 s update). Blocks up to 1 GiB now come from the heap and it is never
    trimmed: the process keeps its peak memory, as with the jemalloc/tcmalloc preloads of
    PyTorch's CPU tuning guides. Process-wide; a no-op (False) where libc is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    except (OSError, AttributeError):
        return False


_HUGE = 2 << 20  # x86-64 transparent huge page size


def huge_page_empty(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An uninitialised CPU tensor (fp32 unless `dtype`) for a large, long-lived buffer that is streamed end to end
    (the sampler's decode weights), in its own anonymous mapping, 2 MiB-aligned and on Linux
    advised into transparent huge pages (`MADV_HUGEPAGE`; the common THP mode "madvise" uses them
    only when asked, and memory from malloc's heap may already be mapped in 4 KiB pages). With
    4 KiB pages every 4 KiB of a weight stream costs a TLB miss and stops the hardware prefetcher:
    GPT-2 124M's decode linears read 12.1-12.8 GB/s of weights from 4 KiB pages and 13.3-14.2 GB/s
    from huge pages on one Zen 4 core (`benchmarks/decode_step.py`). A plain `torch.empty` for
    buffers under 2 MiB or where mmap's advice is not available."""
    n, item = math.prod(shape), torch.empty(0, dtype=dtype).element_size()
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if n * item < _HUGE or advice is None:
        return torch.empty(shape, dtype=dtype)
    size = -(-n * item // _HUGE) * _HUGE  # whole huge pages
    # private anonymous (a shared one is shmem, whose huge pages follow another setting); room to align
    buf = mmap.mmap(-1, size + _HUGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    start = -ctypes.addressof(ctypes.c_char.from_buffer(buf)) % _HUGE
    with contextlib.suppress(OSError):  # a kernel without THP: 4 KiB pages, still aligned
        buf.madvise(advice, start, size)  # before any page is touched
    return torch.frombuffer(buf, dtype=dtype, count=n, offset=start).view(shape)  # keeps buf alive
