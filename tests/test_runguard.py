"""Run-folder and output contract: refusal, --overwrite, locks held by a real second process,
stale temporaries, pruning by step number, outputs that are inputs, no empty leftovers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tinyreason import runguard
from tinyreason.errors import UserError

_HOLDER = textwrap.dedent("""
    import sys, time
    from tinyreason import runguard
    with runguard.hold(sys.argv[1], sys.argv[1]):
        print("held", flush=True)
        time.sleep(60)
""")


@pytest.fixture
def other_process():
    """Start a second Python process that holds a lock file until the test ends."""
    procs = []

    def start(lock_file: Path) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(lock_file), "--from-test"], stdout=subprocess.PIPE,
                                text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_second_process_is_refused_naming_the_holder(tmp_path, other_process):
    lock = tmp_path / "run" / runguard.LOCK_NAME
    proc = other_process(lock)
    with pytest.raises(UserError) as err:
        with runguard.hold(lock, tmp_path / "run"):
            pass
    msg = str(err.value)
    assert f"pid {proc.pid}" in msg and "--from-test" in msg and "started" in msg and "\n" not in msg
    proc.kill()
    proc.wait()
    with runguard.hold(lock, tmp_path / "run"):  # a dead holder's lock is free (the kernel released it)
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()  # removed on release


def test_start_run_refuses_a_used_folder_and_overwrite_clears_it(tmp_path):
    run = tmp_path / "run"
    with runguard.start_run(run, resume=False, overwrite=False):
        (run / "metrics.jsonl").write_text('{"step": 1}\n')
        (run / "checkpoints").mkdir()
    with pytest.raises(UserError, match="--resume .* --overwrite"):
        with runguard.start_run(run, resume=False, overwrite=False):
            pass
    assert (run / "metrics.jsonl").exists()
    with runguard.start_run(run, resume=True, overwrite=False):  # resuming is the trainer's job
        assert (run / "metrics.jsonl").exists()
    with runguard.start_run(run, resume=True, overwrite=True):  # --overwrite wins
        assert [p.name for p in run.iterdir()] == [runguard.LOCK_NAME]


def test_a_folder_with_only_a_config_is_not_a_run(tmp_path):
    (tmp_path / "config.yaml").write_text("a: 1\n")
    (tmp_path / "metrics.jsonl").write_text("")
    assert not runguard.holds_run(tmp_path)
    (tmp_path / "step_10").write_bytes(b"x")  # an official HRM checkpoint
    assert runguard.holds_run(tmp_path)


def test_overwrite_never_empties_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n')
    (tmp_path / "my_code.py").write_text("x = 1\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="current folder"):
        with runguard.start_run(".", resume=False, overwrite=True):
            pass
    assert (tmp_path / "my_code.py").exists()


def test_a_run_that_fails_before_logging_removes_its_folder(tmp_path):
    run = tmp_path / "new"
    with pytest.raises(RuntimeError):
        with runguard.start_run(run, resume=False, overwrite=False):
            (run / "config.yaml").write_text("a: 1\n")
            raise RuntimeError("boom")
    assert not run.exists()
    with pytest.raises(RuntimeError):  # one that logged keeps its metrics
        with runguard.start_run(run, resume=False, overwrite=False):
            (run / "metrics.jsonl").write_text('{"step": 1}\n')
            raise RuntimeError("boom")
    assert (run / "metrics.jsonl").exists() and not (run / runguard.LOCK_NAME).exists()


def test_stale_temporaries_of_a_killed_save_are_removed(tmp_path):
    ck = tmp_path / "checkpoints"
    (ck / ".step_0000004.ab_cd123").mkdir(parents=True)  # save_model's temp folder
    (ck / ".step_0000004.ab_cd123" / "model.safetensors").write_bytes(b"half")
    (ck / ".latest.json.x1y2z3w4.tmp").write_text("{")  # atomic_write's temp file
    (tmp_path / ".step_20.k9k9k9k9.tmp").write_bytes(b"half")  # hrm train's step file
    (ck / ".step_0000002.old").mkdir()
    (ck / "step_0000002").mkdir()
    (tmp_path / "metrics.jsonl").write_text("")
    with runguard.start_run(tmp_path, resume=True, overwrite=False):
        pass
    assert sorted(p.name for p in ck.iterdir()) == ["step_0000002"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints", "metrics.jsonl"]


def test_prune_orders_by_step_number_and_keeps_the_newest(tmp_path):
    for n in (10, 20, 60, 2, 4):
        (tmp_path / f"step_{n:07d}").mkdir()
    (tmp_path / "step_0000100").mkdir()
    runguard.prune_steps(tmp_path, keep=2, newest=tmp_path / "step_0000060")
    # 60 kept (newest written), 20 (next below it); 100 is a superseded run's, the rest are old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_0000020", "step_0000060"]
    runguard.prune_steps(tmp_path, keep=1, newest=tmp_path / "step_0000060")
    assert [p.name for p in tmp_path.iterdir()] == ["step_0000060"]


def test_outputs_equal_to_inputs_are_refused(tmp_path):
    data = tmp_path / "d.txt"
    data.write_text("x\n")
    os.link(data, tmp_path / "hard.txt")
    (tmp_path / "soft.txt").symlink_to(data)
    for out in (data, tmp_path / "sub" / ".." / "d.txt", tmp_path / "hard.txt", tmp_path / "soft.txt"):
        with pytest.raises(UserError, match="same file as --data"):
            runguard.refuse_same(out, "--out", {"--data": data, "--none": None})
    runguard.refuse_same(tmp_path / "other.txt", "--out", {"--data": data})
    runguard.refuse_same(None, "--out", {"--data": data})


def test_an_output_file_lock_and_no_empty_output_after_a_failure(tmp_path, other_process):
    out = tmp_path / "o.txt"
    side = tmp_path / "o.txt.state.json"
    with pytest.raises(ValueError):
        with runguard.output_file(out, (side,)):
            out.write_bytes(b"")
            side.write_text("{}")
            raise ValueError("no positions")
    assert not out.exists() and not side.exists()
    with pytest.raises(ValueError):  # something written: kept
        with runguard.output_file(out, (side,)):
            out.write_text("line\n")
            raise ValueError("later failure")
    assert out.read_text() == "line\n"
    other_process(runguard.output_lock(out))
    t0 = time.monotonic()
    with pytest.raises(UserError, match="in use by pid"):
        with runguard.output_file(out):
            pass
    assert time.monotonic() - t0 < 5  # refused at once, not after waiting
