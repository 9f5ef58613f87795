"""`hrm train` under CPU contention: the watchdog lowers torch's threads mid-run, logs it, restores them."""

from __future__ import annotations

import pytest
import torch
from test_train import tiny_dataset

from tinyreason import contention
from tinyreason.hrm.train import main as train_main
from tinyreason.runlog import read_metrics

ARCH = ["arch.H_cycles=1", "arch.L_cycles=1", "arch.H_layers=1", "arch.L_layers=1", "arch.hidden_size=16",
        "arch.num_heads=2", "arch.expansion=2", "arch.puzzle_emb_ndim=16", "arch.halt_max_steps=2",
        "arch.forward_dtype=float32"]


@pytest.mark.slow
def test_contention_lowers_threads_mid_run_and_restores_them(fixtures, tmp_path, monkeypatch):
    waited = iter(range(0, 10**6, 1000))  # each step reads 1000 s more run-queue wait: contended throughout
    monkeypatch.setattr(contention, "runqueue_wait", lambda: float(next(waited)))
    monkeypatch.setattr(contention, "cpu_limit", lambda: 2)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run = tmp_path / "run"
        assert train_main([*ARCH, f"data_path={tiny_dataset(fixtures, tmp_path)}", f"checkpoint_path={run}",
                           "global_batch_size=4", "device=cpu", "log_every=1", "checkpoint_every=4", "max_steps=4"]) == 0
        events = [r for r in read_metrics(run) if "contention/threads" in r]
        assert [(r["step"], r["contention/threads"]) for r in events] == [(2, 1)]  # two contended steps, then down
        assert torch.get_num_threads() == 2  # restored when the run ends
    finally:
        torch.set_num_threads(before)
