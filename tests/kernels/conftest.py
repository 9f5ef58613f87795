"""The kernel tests: one torch thread (the C kernels' main case), restored after each test."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here runs at one torch thread (tests/conftest.py)."""
