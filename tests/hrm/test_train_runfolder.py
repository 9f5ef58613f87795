"""`hrm train` and its run folder: refusal, --overwrite, resume without or with a torn train state,
resume after an architecture change, device names (issue #26)."""

from __future__ import annotations

import pytest
from test_train import tiny_dataset

from tinyreason.cli import main as cli
from tinyreason.runlog import read_metrics

ARCH = ["arch.H_cycles=1", "arch.L_cycles=1", "arch.H_layers=1", "arch.L_layers=1", "arch.hidden_size=16",
        "arch.num_heads=2", "arch.expansion=2", "arch.puzzle_emb_ndim=16", "arch.halt_max_steps=2",
        "arch.forward_dtype=float32"]


def _train(capsys, data, run, *extra: str) -> tuple[int, str]:
    rc = cli(["hrm", "train", *ARCH, f"data_path={data}", f"checkpoint_path={run}", "global_batch_size=4",
              "device=cpu", "log_every=1", "checkpoint_every=2", "max_steps=2", *extra])
    return rc, capsys.readouterr().err


@pytest.mark.slow
def test_run_folder_contract(fixtures, tmp_path, capsys):
    data, run = tiny_dataset(fixtures, tmp_path), tmp_path / "run"
    assert _train(capsys, data, run)[0] == 0
    rc, err = _train(capsys, data, run, "resume=false")
    assert rc == 2 and "--resume" in err and "--overwrite" in err and err.count("\n") == 1
    # a torn train state: one line, nothing changed
    state = run / "train_state.pt"
    good = state.read_bytes()
    state.write_bytes(good[: len(good) // 3])
    rc, err = _train(capsys, data, run, "max_steps=4")
    assert rc == 2 and "train_state.pt is truncated or corrupt" in err.splitlines()[-1] and "Traceback" not in err
    state.write_bytes(good)
    # the same run folder with another architecture
    rc, err = _train(capsys, data, run, "max_steps=4", "arch.hidden_size=32", "arch.puzzle_emb_ndim=32")
    assert rc == 2 and "cannot resume" in err.splitlines()[-1] and "Traceback" not in err
    # a kill before the state was written: step files but no train_state.pt
    state.unlink()
    rc, err = _train(capsys, data, run, "max_steps=4")
    assert rc == 2 and "no train_state.pt" in err
    (tmp_path / "run" / ".step_4.abcdefgh.tmp").write_bytes(b"half")  # a kill's temporary
    assert _train(capsys, data, run, "max_steps=4", "--overwrite")[0] == 0
    assert [r["step"] for r in read_metrics(run) if "train/lm_loss" in r] == [1, 2, 3, 4]
    assert not [p for p in run.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_resume_without_a_state_starts_clean(fixtures, tmp_path, capsys):
    data, run = tiny_dataset(fixtures, tmp_path), tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2}\n')  # a run killed before its first checkpoint
    assert _train(capsys, data, run, "checkpoint_every=10")[0] == 0
    assert [r["step"] for r in read_metrics(run)] == [1, 2]


def test_unknown_device_and_no_folder_left(fixtures, tmp_path, capsys):
    rc, err = _train(capsys, tmp_path / "data", tmp_path / "run", "device=tpu")
    assert rc == 2 and "unknown device 'tpu'" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()
