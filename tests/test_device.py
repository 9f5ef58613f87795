import ctypes
import platform

import pytest
import torch

from tinyreason.device import autocast, keep_freed_memory, pick_device, pick_dtype
from tinyreason.errors import UserError


def test_dtype_names_and_fp16_refused():
    assert pick_dtype("bf16") is torch.bfloat16 and pick_dtype("float32") is torch.float32
    with pytest.raises(UserError, match="unsupported dtype 'float16'"):
        pick_dtype("float16")


def test_cpu_device_and_fp32_autocast_is_a_no_op():
    assert pick_device("cpu").type == "cpu"
    with autocast(torch.device("cpu"), torch.float32):
        assert not torch.is_autocast_enabled("cpu")
    with autocast(torch.device("cpu"), torch.bfloat16):
        assert torch.is_autocast_enabled("cpu")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_large_blocks_come_from_the_heap_and_stay_there():
    """After keep_freed_memory a 48 MiB tensor (a step's gradients or logits) is served from
    the heap, not a fresh mmap, and freeing it does not give the memory back to the OS, so the
    next step reuses those pages instead of faulting new ones in."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    assert keep_freed_memory()
    before = libc.mallinfo2()
    t = torch.ones(12 * 2**20)  # 48 MiB
    during = libc.mallinfo2()
    assert during.hblkhd - before.hblkhd < 2**20  # not mmapped (glibc's default above 32 MiB at most)
    assert during.uordblks - before.uordblks >= 48 * 2**20  # in the heap
    del t
    after = libc.mallinfo2()
    assert after.arena == during.arena  # heap not trimmed
    assert after.fordblks - during.fordblks >= 48 * 2**20  # free in the heap for the next step


def test_slow_bf16_flags_bf16_on_cpus_without_a_bf16_gemm(monkeypatch):
    from tinyreason.device import slow_bf16
    from tinyreason.lm import onednn

    cpu = torch.device("cpu")
    monkeypatch.setattr(onednn, "_BF16", False)
    assert slow_bf16(cpu, torch.bfloat16) == (onednn._OP is not None)
    assert not slow_bf16(cpu, torch.float32)
    monkeypatch.setattr(onednn, "_BF16", True)
    assert not slow_bf16(cpu, torch.bfloat16)


def test_huge_page_buffers_are_aligned_contiguous_and_outlive_their_mapping_object():
    import gc
    import mmap

    from tinyreason.device import huge_page_empty

    t = huge_page_empty((300, 768, 8))  # 7 MiB, one of GPT-2 124M's packed decode weights
    assert t.shape == (300, 768, 8) and t.dtype == torch.float32 and t.is_contiguous()
    if hasattr(mmap, "MADV_HUGEPAGE"):
        assert t.data_ptr() % (2 << 20) == 0  # its own mapping, aligned to huge pages
    t.fill_(2.0)
    part = t[-1]  # a view keeps the mapping alive after the tensor itself goes
    del t
    gc.collect()
    assert part.sum().item() == 2.0 * 768 * 8
    small = huge_page_empty((3, 4))  # under 2 MiB: an ordinary tensor
    assert small.shape == (3, 4) and small.dtype == torch.float32


def test_unknown_device_names_the_allowed_ones():
    for name in ("tpu", "gpu", "cuda:x", "cpu:0 "):
        with pytest.raises(UserError, match=r"unknown device .*auto, cpu, cuda or cuda:N"):
            pick_device(name)
    assert pick_device("cpu") == torch.device("cpu")
