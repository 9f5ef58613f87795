"""Shared test set-up: offline Hub, fixture paths, Stockfish discovery."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # a Hub lookup would otherwise retry for ~50 s
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FIXTURES = Path(__file__).parent / "fixtures"


def _find_stockfish() -> str | None:
    for cand in (os.environ.get("STOCKFISH"), shutil.which("stockfish"), "/usr/games/stockfish"):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    return None


STOCKFISH = _find_stockfish()
needs_stockfish = pytest.mark.skipif(STOCKFISH is None, reason="no Stockfish binary found (set $STOCKFISH or apt-get install stockfish)")


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def stockfish_path() -> str:
    if STOCKFISH is None:
        pytest.skip("no Stockfish binary found (set $STOCKFISH or apt-get install stockfish)")
    return STOCKFISH
