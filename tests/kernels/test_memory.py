"""The training loops' memory and collector settings (`kernels.keep_freed_memory`, `huge_page_empty`, `frozen_gc`)."""

import ctypes
import gc
import platform

import pytest
import torch

from tinyreason import kernels
from tinyreason.kernels import frozen_gc, huge_page_empty, keep_freed_memory


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
@pytest.mark.kernels
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




@pytest.mark.kernels
def test_huge_page_buffers_are_aligned_contiguous_and_outlive_their_mapping_object():
    import mmap


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


@pytest.mark.kernels
def test_frozen_gc_is_undone_however_the_block_ends():
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), frozen_gc():
        assert gc.get_freeze_count() > 0
        raise RuntimeError("a step failed")
    assert gc.get_freeze_count() == 0


def test_memory_settings_are_off_with_the_switch(monkeypatch):
    monkeypatch.setenv(kernels.ENV, "off")
    assert not keep_freed_memory()
    with frozen_gc():
        assert gc.get_freeze_count() == 0
    t = huge_page_empty((300, 768, 8))  # an ordinary tensor
    assert t.shape == (300, 768, 8) and t.is_contiguous()
