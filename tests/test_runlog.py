import json

from pydantic import BaseModel

from tinyreason.runlog import RunDir, progress, read_metrics


class C(BaseModel):
    a: int = 1


def test_run_dir_writes_config_and_metrics(tmp_path):
    run = RunDir(tmp_path / "run")
    run.write_config(C())
    assert (tmp_path / "run" / "config.yaml").read_text().strip() == "a: 1"
    run.log({"step": 1, "loss": 0.5})
    run.log({"step": 2, "loss": float("nan")})
    recs = read_metrics(tmp_path / "run")
    assert [r["step"] for r in recs] == [1, 2] and recs[1]["loss"] is None and "time" in recs[0]


def test_truncate_after_and_torn_line(tmp_path):
    run = RunDir(tmp_path)
    for s in range(1, 6):
        run.log({"step": s})
    with open(run.metrics_path, "a") as f:
        f.write('{"step": 6, "lo')  # killed mid-write
    assert len(read_metrics(run.metrics_path)) == 5
    run.truncate_after(3)
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3]
    assert json.loads(run.metrics_path.read_text().splitlines()[-1])["step"] == 3


def test_non_main_rank_writes_nothing(tmp_path):
    run = RunDir(tmp_path / "r", is_main=False)
    run.write_config(C())
    run.log({"step": 1})
    assert not (tmp_path / "r").exists()


def test_progress_yields_everything():
    assert list(progress(range(5), "x")) == list(range(5))
    assert list(progress(iter([1, 2]), "x", disable=True)) == [1, 2]
