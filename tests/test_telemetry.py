"""`report_to`: TensorBoard and W&B (offline) writers fed by RunDir.log, read back from their files."""

from __future__ import annotations

import json
import sys

import pytest
from pydantic import BaseModel
from tracker_files import offline_wandb, tensorboard_scalars, wandb_history, wandb_records

from tinyreason.errors import UserError
from tinyreason.runlog import RunDir
from tinyreason.telemetry import scalars

RECORDS = [
    {"step": 1, "loss": 2.0, "lr": 1e-3, "reward/policy/mean": 0.25, "tokens": 7, "ok": True, "note": "x", "kl": None},
    {"step": 2, "loss": 1.5, "lr": 1e-3, "reward/policy/mean": 0.5, "tokens": 9, "grad": {"norm": 0.7}},
    {"step": 2, "eval/policy_legal_rate": 0.125},  # a second record at the same step (GRPO's eval)
    {"step": 3, "loss": float("nan"), "lr": 5e-4},
    {"epoch": 1},  # no step: not sent
]


class Cfg(BaseModel):
    lr: float = 1e-3
    run_dir: str = "runs/x"


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    offline_wandb(monkeypatch, tmp_path / "wandb-home")


def test_scalars_are_the_finite_numbers_flattened():
    rec = {"time": 1.5, **RECORDS[0], "grad": {"norm": 0.7, "parts": {"a": 1}}, "lst": [1, 2], "inf": float("inf")}
    assert scalars(rec) == {"loss": 2.0, "lr": 1e-3, "reward/policy/mean": 0.25, "tokens": 7.0, "grad/norm": 0.7,
                            "grad/parts/a": 1.0}


def _log(run: RunDir, records: list[dict]) -> None:
    for rec in records:
        run.log(rec)


def test_tensorboard_gets_what_metrics_jsonl_gets_and_a_resume_purges_later_steps(tmp_path):
    run = RunDir(tmp_path / "run")
    run.report_to("tensorboard", Cfg())
    _log(run, RECORDS)
    run.close()

    def read() -> dict[str, list[tuple[int, float]]]:
        return {tag: [(step, round(v, 6)) for step, v in pts] for tag, pts in tensorboard_scalars(tmp_path / "run").items()}

    assert read() == {"loss": [(1, 2.0), (2, 1.5)], "lr": [(1, 0.001), (2, 0.001), (3, 0.0005)],
                      "reward/policy/mean": [(1, 0.25), (2, 0.5)], "tokens": [(1, 7.0), (2, 9.0)],
                      "grad/norm": [(2, 0.7)], "eval/policy_legal_rate": [(2, 0.125)]}
    resumed = RunDir(tmp_path / "run")  # continues from a step-2 checkpoint: step 3 is logged again
    resumed.truncate_after(2)
    resumed.report_to("tensorboard", Cfg())
    resumed.log({"step": 3, "lr": 2e-4})
    resumed.close()
    assert read()["lr"] == [(1, 0.001), (2, 0.001), (3, 0.0002)]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line).get("step") for line in lines] == [1, 2, 2, None, 3]  # as metrics.jsonl reads


@pytest.mark.slow
def test_wandb_runs_offline_in_the_run_folder_with_the_logged_history(tmp_path, wandb_env):
    run = RunDir(tmp_path / "run")
    run.report_to("wandb", Cfg(), project="tinyreason-test")
    _log(run, RECORDS)
    run.close()
    (run_file,) = (tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb")
    assert wandb_history(run_file) == [
        {"_step": 1, "loss": 2, "lr": 1e-3, "reward/policy/mean": 0.25, "tokens": 7},
        {"_step": 2, "loss": 1.5, "lr": 1e-3, "reward/policy/mean": 0.5, "tokens": 9, "grad/norm": 0.7,
         "eval/policy_legal_rate": 0.125},
        {"_step": 3, "lr": 5e-4}]
    run_record = next(r.run for r in wandb_records(run_file) if r.WhichOneof("record_type") == "run")
    assert run_record.project == "tinyreason-test" and run_record.display_name == "run"
    config = {item.key: json.loads(item.value_json) for item in run_record.config.update}
    assert config["lr"] == 1e-3 and config["run_dir"] == "runs/x"


def test_a_missing_package_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    for kind in ("tensorboard", "wandb"):
        with pytest.raises(UserError, match=rf"pip install 'tinyreason\[{kind}\]'") as e:
            RunDir(tmp_path / "run").report_to(kind, Cfg())
        assert "\n" not in str(e.value)


def test_none_and_other_ranks_write_no_tracker_files(tmp_path):
    main = RunDir(tmp_path / "run")
    main.report_to("none", Cfg())
    _log(main, RECORDS[:2])
    other = RunDir(tmp_path / "run", is_main=False)
    other.report_to("tensorboard", Cfg())
    _log(other, RECORDS[:2])
    other.close()
    assert main.writer is None and other.writer is None
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["metrics.jsonl"]
