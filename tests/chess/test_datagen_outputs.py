"""`chess datagen` output contract (issue #26): one writer per output, no empty output after a
failure, a PGN cut mid-move is reported."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tinyreason.chess.datagen import truncated_move
from tinyreason.cli import main as cli

SMALL = ["--nodes", "300", "--positions-per-game", "2", "--max-plies", "20"]


def test_truncated_last_move_is_found(tmp_path):
    pgn = tmp_path / "g.pgn"
    for text, cut in (("1. e4 e5 2. Nf3 Nc", "Nc"), ("1. e4 e5 2. O-", "O-"), ("1. e4 e5 2. Nf3 Nc6 *\n", None),
                      ("1. e4 e5 2.", None), ("1. e4 e5 2. Qxf7#", None), ("1. e4 {a comment}", None),
                      ('[Event "x"]\n', None), ("1.e4 e5 2.Nf3", None), ("1. e4 e5 2. e8=Q+!?", None)):
        pgn.write_text(text)
        assert truncated_move(pgn) == cut, text


@pytest.mark.slow
def test_a_second_writer_is_refused_and_failures_leave_no_empty_output(tmp_path, capsys, stockfish_path):
    out = tmp_path / "o.txt"
    cmd = [sys.executable, "-m", "tinyreason.cli", "chess", "datagen", "--out", str(out), "--stockfish", stockfish_path,
           "--games", "100000", *SMALL]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not out.with_name("o.txt.state.json").exists():
            time.sleep(0.05)
        size = out.stat().st_size
        rc = cli(["chess", "datagen", "--out", str(out), "--stockfish", stockfish_path, "--games", "100000", *SMALL])
        err = capsys.readouterr().err
        assert rc == 2 and f"in use by pid {proc.pid}" in err and err.count("\n") == 1
        assert out.stat().st_size >= size  # not cut back by the refused rerun
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    binary = tmp_path / "bin.pgn"
    binary.write_bytes(b"\x00\x01{{{ not chess")
    bad = tmp_path / "b.txt"
    assert cli(["chess", "datagen", "--out", str(bad), "--pgn", str(binary), "--stockfish", stockfish_path]) == 2
    assert "no positions found" in capsys.readouterr().err
    # (the killed writer's lock file stays: the kernel released its lock, the next writer reuses and removes it)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".o.txt.lock", "bin.pgn", "o.txt", "o.txt.config.yaml",
                                                          "o.txt.state.json"]


@pytest.mark.slow
def test_a_pgn_cut_mid_move_is_reported(tmp_path, capsys, stockfish_path):
    pgn = tmp_path / "cut.pgn"
    pgn.write_text("1. e4 e5 2. Nf3 Nc6 3. Bb5 a6 4. Ba")
    assert cli(["chess", "datagen", "--out", str(tmp_path / "c.txt"), "--pgn", str(pgn), "--stockfish", stockfish_path,
                *SMALL]) == 0
    err = capsys.readouterr().err
    assert "ends in the middle of a move ('Ba')" in err and (tmp_path / "c.txt").stat().st_size > 0
