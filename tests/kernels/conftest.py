"""The kernel tests: one torch thread (the C kernels' main case), restored after each test."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny tensors gain nothing from a second thread, and on a shared 2-core box the OpenMP
    barrier of every small op costs milliseconds; restored after each test."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
