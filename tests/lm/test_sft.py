"""SFT: overfits a few RookWorld samples; packing and padding rows; resume."""

import json

import pytest
import torch

from tinyreason.chess.data import split_text
from tinyreason.chess import sft as chess_sft
from tinyreason.lm import sft
from tinyreason.lm.model import load_model, train_char_tokenizer
from tinyreason.lm.state import latest_checkpoint
from tinyreason.runlog import read_metrics


def test_rows_packing_and_padding():
    docs = [([1, 2, 3], [1, 1, 1]), ([4, 5], [0, 1]), ([6, 7, 8, 9], [1, 1, 1, 1])]
    packed = sft.Rows(docs, 3, True, 0, pad_id=0, shuffle=False)
    assert packed.per_epoch == 3
    ids, attn, mask = packed.batch([0, 1, 2, 3])
    assert ids.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 2, 3]] and attn.all()
    assert mask[1].tolist() == [0, 1, 1]
    padded = sft.Rows(docs, 3, False, 0, pad_id=0, shuffle=False)
    ids, attn, mask = padded.batch([1, 2])
    assert ids.tolist() == [[4, 5, 0], [6, 7, 8]] and attn.tolist() == [[1, 1, 0], [1, 1, 1]]


def test_completion_only_mask():
    tok = train_char_tokenizer(["P: x M: y"])
    (ids, mask), = sft.encode([split_text("P: x M: y")], tok, completion_only=True)
    assert len(ids) == len("P: x M: y") + 1 and mask == [0] * len("P: x ") + [1] * (len("M: y") + 1)


@pytest.mark.parametrize("completion_only", [False, True])
def test_encode_batched_equals_one_call_per_sample(rook_data, completion_only):
    from tinyreason.chess.data import load_samples
    from tinyreason.chess.tokenizer import chess_tokenizer

    samples = load_samples(rook_data)[:20]
    for tok in (train_char_tokenizer(s.text for s in samples), chess_tokenizer()):
        want = []
        for s in samples:
            if completion_only:
                p, c = tok(s.prompt).input_ids, tok(s.completion).input_ids + [tok.eos_token_id]
                want.append((p + c, [0] * len(p) + [1] * len(c)))
            else:
                ids = tok(s.prompt + s.completion).input_ids + [tok.eos_token_id]
                want.append((ids, [1] * len(ids)))
        assert sft.encode(samples, tok, completion_only) == want
    assert sft.encode([], tok, completion_only) == []


@pytest.mark.slow
def test_cpu_contention_lowers_threads_mid_run_and_restores_them(rook_data, tmp_path, monkeypatch):
    from tinyreason import contention

    waited = iter(range(0, 10**6, 1000))  # each step reads 1000 s more run-queue wait: contended throughout
    monkeypatch.setattr(contention, "runqueue_wait", lambda: float(next(waited)))
    monkeypatch.setattr(contention, "cpu_limit", lambda: 2)
    torch.set_num_threads(2)  # tests/lm/conftest.py puts one thread back afterwards
    args = [f"train_data=[{rook_data}]", "train_split=null", "char_tokenizer=true", "arch.n_layer=1", "arch.n_embd=16",
            "arch.n_head=2", "seq_len=64", "batch_size=2", "max_steps=4", "eval_every=0", "save_every=0",
            f"run_dir={tmp_path / 'run'}", "device=cpu"]
    assert chess_sft.main(args) == 0
    recs = [r for r in read_metrics(tmp_path / "run") if "loss" in r]
    assert [r.get("contention/threads") for r in recs] == [None, 1, None, None]  # two contended steps, then down
    assert torch.get_num_threads() == 2  # restored when the run ends


@pytest.mark.slow
def test_sft_overfits_and_resumes(rook_data, tmp_path):
    data = tmp_path / "four.txt"
    lines = rook_data.read_text().splitlines()
    data.write_text("\n".join([lines[0], lines[8]]) + "\n")  # one policy and one env sample
    args = [f"train_data=[{data}]", "train_split=null", f"eval_data=[{data}]", "eval_split=null", "char_tokenizer=true",
            "arch.n_layer=2", "arch.n_embd=64", "arch.n_head=4", "arch.n_positions=256", "packing=false", "seq_len=256",
            "batch_size=2", "grad_accum=1", "lr=1e-2", "warmup_steps=3", "max_steps=40", "eval_every=20", "save_every=20",
            "weight_decay=0.0", f"run_dir={tmp_path / 'run'}", "device=cpu"]
    assert chess_sft.main(args) == 0
    recs = [r for r in read_metrics(tmp_path / "run") if "loss" in r]
    assert recs[0]["loss"] > 2.5 and recs[-1]["loss"] < 0.5 and recs[-1]["eval_loss"] < 0.5
    model, tok = load_model(latest_checkpoint(tmp_path / "run"), device="cpu")
    from tinyreason.lm.heldout import greedy_completions

    line = data.read_text().splitlines()[0]
    s = split_text(line)
    assert greedy_completions(model, tok, [s.prompt], max_new_tokens=12)[0][:12] == s.completion[:12]
    # resume from the step-40 checkpoint gives the same final weights
    import shutil

    shutil.rmtree(tmp_path / "run" / "checkpoints" / "step_0000040")
    (tmp_path / "run" / "checkpoints" / "latest.json").unlink()
    assert chess_sft.main(args + ["resume=true"]) == 0
    again = [r for r in read_metrics(tmp_path / "run") if "loss" in r]
    assert [r["loss"] for r in again] == [r["loss"] for r in recs]
    model2, _ = load_model(latest_checkpoint(tmp_path / "run"), device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), model2.state_dict().values()))


def _tiny_args(data, run, **over) -> list[str]:
    args = {"train_data": f"[{data}]", "train_split": "null", "char_tokenizer": "true", "arch.n_layer": 1,
            "arch.n_embd": 16, "arch.n_head": 2, "arch.n_positions": 64, "seq_len": 32, "batch_size": 2,
            "warmup_steps": 1, "max_steps": 6, "save_every": 2, "eval_every": 0, "run_dir": run, "device": "cpu"}
    args.update(over)
    return [f"{k}={v}" for k, v in args.items()]


@pytest.mark.slow
def test_a_used_run_folder_is_refused_and_overwrite_starts_over(rook_data, tmp_path, capsys):
    """Issue #26 item 1: a fresh run in a used folder refuses instead of pruning its own newest checkpoint."""
    from tinyreason.cli import main as cli

    run = tmp_path / "R"
    assert chess_sft.main(_tiny_args(rook_data, run)) == 0
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    capsys.readouterr()
    assert cli(["chess", "sft", *_tiny_args(rook_data, run, max_steps=2)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume" in err and "--overwrite" in err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before
    assert chess_sft.main(_tiny_args(rook_data, run, max_steps=2) + ["--overwrite"]) == 0
    assert latest_checkpoint(run).name == "step_0000002"
    assert [r["step"] for r in read_metrics(run)] == [1, 2]


@pytest.mark.slow
def test_kill_during_a_save_a_second_process_and_resume(rook_data, tmp_path, capsys):
    """A real SIGKILL while checkpoints are being written: a second run meanwhile is refused (the
    lock names the holder); the resume removes the half-written temporaries and repeats no step."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tinyreason.cli import main as cli

    run = tmp_path / "R"
    args = _tiny_args(rook_data, run, max_steps=100000, save_every=1, keep_checkpoints=3)
    proc = subprocess.Popen([sys.executable, "-m", "tinyreason.cli", "chess", "sft", *args], stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})
    ckpts, seen_temp = run / "checkpoints", False
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (ckpts / "latest.json").exists():
            time.sleep(0.05)
        assert cli(["chess", "sft", *args, "--resume"]) == 2  # the live run holds the folder
        err = capsys.readouterr().err
        assert f"in use by pid {proc.pid}" in err and "chess sft" in err and err.count("\n") == 1
        while time.monotonic() < deadline and not seen_temp:  # kill while a save's temp folder exists
            seen_temp = any(p.name.startswith(".step_") for p in ckpts.iterdir())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    if not any(p.name.startswith(".") and p.name != ".lock" for p in ckpts.iterdir()):
        (ckpts / ".step_9999999.abcdefgh").mkdir()  # the kill missed the save window: leave what it would have left
    resumed_from = json.loads((ckpts / "latest.json").read_text())["step"]
    assert chess_sft.main(_tiny_args(rook_data, run, max_steps=resumed_from + 2, save_every=1) + ["--resume"]) == 0
    steps = [r["step"] for r in read_metrics(run)]
    assert steps == list(range(1, resumed_from + 3))
    assert not [p for p in ckpts.iterdir() if p.name.startswith(".")] and not (run / ".lock").exists()
