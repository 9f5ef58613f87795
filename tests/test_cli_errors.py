"""The CLI's error contract: errors about the user's files and environment are one line and exit 2
(OSError on given paths, non-UTF-8 files, bad values, outputs that are inputs); a bug keeps its traceback."""

from __future__ import annotations

import os
import sys
import types

import numpy as np
import pytest

from tinyreason import cli
from tinyreason.cli import main

ROPE = "hrm_official/rope_f32"


def one_line_exit_2(capsys, argv: list[str], *needles: str, after_output: bool = False) -> str:
    """Exit 2 with one `error:` line (the only stderr output, or with `after_output` the last line
    after the command's progress output), holding every needle; no traceback."""
    rc = main(argv)
    err = capsys.readouterr().err
    last = err.splitlines()[-1] if err.strip() else ""
    assert rc == 2 and last.startswith("error: ") and "Traceback" not in err, (argv, err)
    assert after_output or err.count("\n") == 1, (argv, err)
    for needle in needles:
        assert needle in last, (needle, err)
    return last


def _inputs(fixtures, tmp_path, **arrays) -> str:
    with np.load(fixtures / ROPE / "reference_io.npz") as z:
        base = {"inputs": z["inputs"], "puzzle_identifiers": z["puzzle_identifiers"]}
    path = tmp_path / "in.npz"
    np.savez(path, **{**base, **arrays})
    return str(path)


def _predict(fixtures, *extra: str) -> list[str]:
    return ["hrm", "predict", "--checkpoint", str(fixtures / ROPE / "step_1234"), *extra]


def test_config_files_not_utf8_or_with_duplicate_keys(tmp_path, capsys):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("split: t\xe9st\n".encode("latin-1"))
    one_line_exit_2(capsys, ["hrm", "show", "x", "--config", str(bad)], "not UTF-8")
    dup = tmp_path / "dup.yaml"
    dup.write_text("split: test\nindex: 1\nsplit: train\n")
    one_line_exit_2(capsys, ["hrm", "show", "x", "--config", str(dup)], "duplicate key 'split' (line 3)")


def test_bad_values_are_refused(capsys):
    one_line_exit_2(capsys, ["chess", "sft", "seq_len=0"], "seq_len")
    one_line_exit_2(capsys, ["chess", "sft", "arch.n_embd=100", "arch.n_head=8"], "not divisible by n_head")
    one_line_exit_2(capsys, ["chess", "grpo", "epsilon=-1"], "epsilon")
    one_line_exit_2(capsys, ["chess", "grpo", "sampling.stop_strings=5"], "list of strings")


def test_unknown_device(fixtures, tmp_path, capsys):
    one_line_exit_2(capsys, _predict(fixtures, "--inputs", _inputs(fixtures, tmp_path), "--out", str(tmp_path / "o.npz"),
                                     "--device", "tpu"), "unknown device 'tpu'", "auto, cpu, cuda")


def test_predict_inputs_that_are_strings_or_far_too_long(fixtures, tmp_path, capsys):
    out = str(tmp_path / "o.npz")
    one_line_exit_2(capsys, _predict(fixtures, "--inputs", _inputs(fixtures, tmp_path, inputs=np.array([["1", "2"]])),
                                     "--out", out), "'inputs' must hold integer")
    long = np.ones((2, 81 * 200), dtype=np.int32)
    one_line_exit_2(capsys, _predict(fixtures, "--inputs", _inputs(fixtures, tmp_path, inputs=long,
                                                                   puzzle_identifiers=np.zeros(2, np.int32)),
                                     "--out", out), "16200 tokens", "at most 4096")
    assert not os.path.exists(out)


def test_outputs_that_are_inputs_are_refused(fixtures, tmp_path, capsys):
    inputs = _inputs(fixtures, tmp_path)
    before = open(inputs, "rb").read()
    one_line_exit_2(capsys, _predict(fixtures, "--inputs", inputs, "--out", inputs), "same file as --inputs")
    ckpt = fixtures / ROPE / "step_1234"
    one_line_exit_2(capsys, _predict(fixtures, "--inputs", inputs, "--out", str(ckpt)), "same file as --checkpoint")
    # through a run folder: the resolved checkpoint file
    one_line_exit_2(capsys, ["hrm", "predict", "--checkpoint", str(ckpt.parent), "--inputs", inputs, "--out", str(ckpt)],
                    "same file as the checkpoint file")
    one_line_exit_2(capsys, ["hrm", "eval", "--checkpoint", str(ckpt.parent), "--data", str(tmp_path), "--out", str(ckpt)],
                    "same file as the checkpoint file")
    assert open(inputs, "rb").read() == before
    data = tmp_path / "d.txt"
    data.write_text("P: x\n")
    one_line_exit_2(capsys, ["chess", "eval", "--model", "embedded:rookworld-tiny", "--data", str(data), "--out", str(data)],
                    "same file as --data")
    one_line_exit_2(capsys, ["chess", "eval", "--model", "embedded:rookworld-tiny", "--data", str(data),
                             "--out", str(tmp_path / "x.json"), "--records", str(tmp_path / "x.json")], "same file as --records")
    pgn = tmp_path / "g.pgn"
    pgn.write_text("1. e4 e5 *\n")
    one_line_exit_2(capsys, ["chess", "datagen", "--pgn", str(pgn), "--out", str(pgn), "--overwrite"], "same file as --pgn")
    assert pgn.read_text() == "1. e4 e5 *\n" and data.read_text() == "P: x\n"
    one_line_exit_2(capsys, ["hrm", "show", str(tmp_path), "--predictions", inputs, "--png", inputs], "same file as --predictions")
    one_line_exit_2(capsys, ["hrm", "build", "sudoku", "--source", str(tmp_path), "--out", str(tmp_path)], "same file as --source")


def test_write_errors_on_given_paths(fixtures, tmp_path, capsys):
    inputs = _inputs(fixtures, tmp_path)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    one_line_exit_2(capsys, _predict(fixtures, "--inputs", inputs, "--out", str(a_file / "o.npz")), "is a file, not a folder",
                    after_output=True)
    (tmp_path / "dir.npz").mkdir()
    one_line_exit_2(capsys, _predict(fixtures, "--inputs", inputs, "--out", str(tmp_path / "dir.npz")), "Is a directory",
                    after_output=True)
    # a run folder below a file: the OSError (with its filename) from mkdir, through the CLI's one place
    one_line_exit_2(capsys, ["hrm", "build", "sudoku", "--generate", "1", "--out", str(a_file / "ds")], str(a_file))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder(fixtures, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        one_line_exit_2(capsys, _predict(fixtures, "--inputs", _inputs(fixtures, tmp_path), "--out", str(ro / "o.npz")),
                        "Permission denied", after_output=True)
    finally:
        ro.chmod(0o755)


def test_data_files_that_are_not_utf8(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for split in ("train", "test"):
        (src / f"{split}.csv").write_bytes(b"source,question,answer,rating\nx\xff,1,2,0\n")
    one_line_exit_2(capsys, ["hrm", "build", "sudoku", "--source", str(src), "--out", str(tmp_path / "ds")], "not UTF-8")
    assert not (tmp_path / "ds").exists()  # a failed build leaves no half-built folder
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_bytes(b'{"input_sequence": [1], "target_sequence": [1]}\n\xff\xfe\n')
    one_line_exit_2(capsys, ["hrm", "convert", str(jsonl), str(tmp_path / "conv")], "not UTF-8")


def test_a_bug_keeps_its_traceback(monkeypatch):
    """Only errors about the user's files become one line: others propagate."""
    def buggy(argv):
        raise OSError("no file involved")

    def keyerror(argv):
        raise KeyError("a bug")

    for fn, exc in ((buggy, OSError), (keyerror, KeyError)):
        monkeypatch.setitem(sys.modules, "tinyreason.fake", types.SimpleNamespace(main=fn))
        monkeypatch.setitem(cli.COMMANDS["hrm"], "fake", ("tinyreason.fake", ""))
        with pytest.raises(exc):
            main(["hrm", "fake"])


def test_a_used_run_folder_is_refused_before_anything_loads(tmp_path, capsys):
    """Issue #26 item 1, for each trainer: refused at once, the folder untouched."""
    run = tmp_path / "R"
    (run / "checkpoints" / "step_0000060").mkdir(parents=True)
    (run / "metrics.jsonl").write_text('{"step": 60}\n')
    for argv in (["chess", "sft", f"run_dir={run}"], ["chess", "grpo", f"run_dir={run}"],
                 ["hrm", "train", "data_path=d", f"checkpoint_path={run}", "resume=false", "device=cpu"]):
        one_line_exit_2(capsys, argv, "already holds a run", "--resume", "--overwrite")
    assert (run / "checkpoints" / "step_0000060").is_dir() and (run / "metrics.jsonl").read_text() == '{"step": 60}\n'


def test_a_run_folder_locked_by_another_process(tmp_path, capsys):
    import subprocess

    run = tmp_path / "R"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom tinyreason import runguard\n"
         "with runguard.start_run(sys.argv[1], False, False):\n    print('held', flush=True)\n    time.sleep(60)\n",
         str(run)], stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        assert holder.stdout.readline().strip() == "held"
        for argv in (["chess", "sft", f"run_dir={run}", "--resume"],
                     ["hrm", "train", "data_path=d", f"checkpoint_path={run}", "device=cpu"]):
            one_line_exit_2(capsys, argv, f"in use by pid {holder.pid}", "started")
    finally:
        holder.kill()
        holder.wait()
