"""Memory and collector settings of the CPU training loops: malloc, huge pages, gc.

Speed settings only (values never change): glibc's malloc keeps freed memory for the next
step, long-lived weight streams live in transparent huge pages, and the objects made before a
training loop are frozen out of the cyclic collector's sight for the loop. Each is a no-op
where the platform lacks it and with the kernels switch off (`_switch.memory`).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import math
import mmap
import sys

import torch

from tinyreason.kernels import _switch

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers (malloc.h)


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep the memory a CPU training step frees, for the next step.

    By default glibc serves blocks above a (dynamic, <= 32 MiB) threshold with fresh `mmap`s
    and returns freed heap tops to the OS, so every step's gradients, logits and activations
    are faulted in and zeroed page by page again (GPT-2 124M bf16 GRPO: ~130k page faults
    per update). Blocks up to 1 GiB now come from the heap and it is never
    trimmed: the process keeps its peak memory, as with the jemalloc/tcmalloc preloads of
    PyTorch's CPU tuning guides. Process-wide; a no-op (False) where libc is not glibc or the
    kernels switch is off."""
    if not _switch.memory() or not sys.platform.startswith("linux"):
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
    4 KiB pages every 4 KiB of a weight stream costs a TLB miss and stops the hardware prefetcher
    (`benchmarks/decode_step.py`; docs/benchmarks.md, "Kernels"). A plain `torch.empty` for
    buffers under 2 MiB or where mmap's advice is not available."""
    n, item = math.prod(shape), torch.empty(0, dtype=dtype).element_size()
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if n * item < _HUGE or advice is None or not _switch.memory():
        return torch.empty(shape, dtype=dtype)
    size = -(-n * item // _HUGE) * _HUGE  # whole huge pages
    # private anonymous (a shared one is shmem, whose huge pages follow another setting); room to align
    buf = mmap.mmap(-1, size + _HUGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    start = -ctypes.addressof(ctypes.c_char.from_buffer(buf)) % _HUGE
    with contextlib.suppress(OSError):  # a kernel without THP: 4 KiB pages, still aligned
        buf.madvise(advice, start, size)  # before any page is touched
    return torch.frombuffer(buf, dtype=dtype, count=n, offset=start).view(shape)  # keeps buf alive


@contextlib.contextmanager
def frozen_gc():
    """Within the block the objects made before it (modules, imports: ~400k in a GRPO run) are
    out of the cyclic collector's sight (`gc.freeze`), so the full collections a small model's
    steps set off do not walk over every object; undone on exit however the block ends
    (`gc.unfreeze`). A no-op with the kernels switch off."""
    if not _switch.memory():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
