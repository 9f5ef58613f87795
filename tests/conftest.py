"""Shared test set-up: offline Hub, fixture paths, Stockfish discovery."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # a Hub lookup would otherwise retry for ~50 s
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

# Tests use tiny models, where a second intra-op thread costs more than it gains and makes
# timings depend on whatever else the machine runs. Subprocess tests set OMP_NUM_THREADS=1.
torch.set_num_threads(1)

FIXTURES = Path(__file__).parent / "fixtures"


def _find_stockfish() -> str | None:
    for cand in (os.environ.get("STOCKFISH"), shutil.which("stockfish"), "/usr/games/stockfish"):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    return None


STOCKFISH = _find_stockfish()
needs_stockfish = pytest.mark.skipif(STOCKFISH is None, reason="no Stockfish binary found (set $STOCKFISH or apt-get install stockfish)")


KERNELS_OFF = os.environ.get("TINYREASON_KERNELS", "").strip().lower() == "off"


def pytest_collection_modifyitems(config, items):
    """Under TINYREASON_KERNELS=off (`make test-plain`) the tests marked `kernels` - those that
    run or force a fast kernel to compare it with its plain path - skip with the reason."""
    if KERNELS_OFF:
        skip = pytest.mark.skip(reason="TINYREASON_KERNELS=off: the fast kernels are switched off (make test-plain)")
        for item in items:
            if item.get_closest_marker("kernels") is not None:
                item.add_marker(skip)


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def stockfish_path() -> str:
    if STOCKFISH is None:
        pytest.skip("no Stockfish binary found (set $STOCKFISH or apt-get install stockfish)")
    return STOCKFISH


@pytest.fixture
def one_torch_thread():
    """Tiny tensors and models gain nothing from a second thread, and on a shared 2-core box the
    OpenMP barrier of every small op costs milliseconds; restored after each test."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
