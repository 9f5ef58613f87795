"""Paths of the official HRM fixture datasets and their sources (tests/fixtures/hrm_datasets)."""

from __future__ import annotations

from pathlib import Path

HRM_DATASETS = Path(__file__).parents[1] / "fixtures" / "hrm_datasets"
SOURCES = HRM_DATASETS / "sources"
DATASETS = ["sudoku-noaug", "sudoku-aug2", "maze-noaug", "maze-aug", "arc-noaug", "arc-aug3"]
TRM_DATASETS = Path(__file__).parents[1] / "fixtures" / "trm_datasets"
