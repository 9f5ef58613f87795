"""`tinyreason hrm compare`: run folders expand to their steps; table JSON and PNG are written."""

from __future__ import annotations

import json
import shutil

import pytest

from tinyreason.cli import main as cli


@pytest.mark.slow
def test_compare_expands_run_folders_and_writes_chart(fixtures, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for step in (10, 20):
        shutil.copy(fixtures / "hrm_official/rope_f32/step_1234", run / f"step_{step}")
    shutil.copy(fixtures / "hrm_official/rope_f32/all_config.yaml", run / "all_config.yaml")
    out = tmp_path / "cmp.json"
    assert cli(["hrm", "compare", "--checkpoints", str(run), "--data", str(fixtures / "hrm_datasets/sudoku-noaug"),
                "--out", str(out), "--limit", "2"]) == 0
    table = json.loads(out.read_text())["comparison"]
    assert list(table) == ["run/step_10", "run/step_20"]
    assert [row["step"] for row in table.values()] == [10, 20]
    assert table["run/step_10"]["total_puzzles"] == 2
    assert (tmp_path / "cmp.png").stat().st_size > 1000
