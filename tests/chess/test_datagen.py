"""`tinyreason chess datagen` end to end with Stockfish: valid samples, determinism, resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import chess
import pytest

from tinyreason.chess import arbiter_completion
from tinyreason.chess.data import load_samples
from tinyreason.chess.formats import parse_policy
from tinyreason.cli import main as cli_main

SMALL = ["--nodes", "300", "--positions-per-game", "4", "--max-plies", "30", "--illegal-share", "0.3"]
SCHOLAR = '[Event "a"]\n\n1. e4 e5 2. Bc4 Nc6 3. Qh5 Nf6 4. Qxf7# 1-0\n\n[Event "b"]\n\n1. d4 d5 2. Ke3 Nf6 *\n'


def _gen(out: Path, *extra: str, stockfish: str) -> int:
    return cli_main(["chess", "datagen", "--out", str(out), "--stockfish", stockfish, *SMALL, *extra])


def _check_lines(path: Path) -> tuple[int, int]:
    policy = env = 0
    for s in load_samples(path):
        if s.task == "policy":
            r = parse_policy(s.completion, fen=s.prompt)
            assert r.well_formed and r.board is not None and all(r.moves_legal) and r.best_legal, s.text
            assert r.best in r.candidates(), s.text  # B: is Stockfish's first line (see test below)
            assert r.board.fen() == r.fen
            policy += 1
        else:
            assert arbiter_completion(s.prompt) == s.completion, s.text
            env += 1
    return policy, env


@pytest.mark.slow
def test_selfplay_samples_are_valid_and_config_is_written(tmp_path, stockfish_path):
    out = tmp_path / "d.txt"
    assert _gen(out, "--games", "2", stockfish=stockfish_path) == 0
    policy, env = _check_lines(out)
    assert policy == env == 8
    assert any("+-1.0+0+1" in line for line in out.read_text().splitlines())  # illegal-move samples
    state = json.loads((tmp_path / "d.txt.state.json").read_text())
    assert state["games_done"] == 2 and state["bytes"] == out.stat().st_size and state["positions"] == 8
    cfg = (tmp_path / "d.txt.config.yaml").read_text()
    assert "nodes: 300" in cfg and "multipv: 5" in cfg
    black = [s for s in load_samples(out) if s.task == "policy" and " b " in s.prompt]
    assert black, "expected black-to-move positions"
    for sample in load_samples(out):  # B: is the top-eval candidate, for both colours
        if sample.task == "policy":
            parsed = parse_policy(sample.completion)
            cands = parsed.candidates()
            assert cands[parsed.best] == max(cands.values()), sample.text
    compact = tmp_path / "c.txt"
    assert _gen(compact, "--games", "1", "--format", "compact", "--env", "false", stockfish=stockfish_path) == 0
    lines = compact.read_text().splitlines()
    assert len(lines) == 4 and all("  " not in line and line.startswith("P: ") for line in lines)
    assert _check_lines(compact) == (4, 0)


@pytest.mark.slow
def test_same_bytes_for_one_and_two_workers(tmp_path, stockfish_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    assert _gen(a, "--games", "3", "--workers", "1", stockfish=stockfish_path) == 0
    assert _gen(b, "--games", "3", "--workers", "2", stockfish=stockfish_path) == 0
    assert a.read_bytes() == b.read_bytes() and a.stat().st_size > 0
    c = tmp_path / "c.txt"
    assert _gen(c, "--games", "3", "--seed", "1", stockfish=stockfish_path) == 0
    assert c.read_bytes() != a.read_bytes()


@pytest.mark.slow
def test_resume_after_a_torn_write_neither_duplicates_nor_loses(tmp_path, stockfish_path):
    full, part = tmp_path / "full.txt", tmp_path / "part.txt"
    assert _gen(full, "--games", "3", stockfish=stockfish_path) == 0
    assert _gen(part, "--games", "2", stockfish=stockfish_path) == 0
    with open(part, "a", encoding="utf-8") as f:  # a kill in the middle of writing game 3
        f.write("P: 8/8/8/8/8/8/8/K6k w - - 0 1      M: a1a2")
    assert _gen(part, "--games", "3", stockfish=stockfish_path) == 0
    assert part.read_bytes() == full.read_bytes()
    assert _gen(part, "--games", "3", stockfish=stockfish_path) == 0  # already complete: no-op
    assert part.read_bytes() == full.read_bytes()


@pytest.mark.slow
def test_resume_after_ctrl_c_and_a_real_kill(tmp_path, stockfish_path):
    # 12 games of 5000 nodes: after the kill at >= 4, the 8 left take two workers ~1 s, which the
    # 50 ms poll below must not sleep through.
    args = ["--stockfish", stockfish_path, "--nodes", "5000", "--max-plies", "30", "--games", "12"]
    full, part = tmp_path / "full.txt", tmp_path / "part.txt"
    assert cli_main(["chess", "datagen", "--out", str(full), *args]) == 0
    state = tmp_path / "part.txt.state.json"

    def interrupt(sig: int, after_games: int, workers: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "tinyreason.cli", "chess", "datagen", "--out", str(part), *args, "--workers", workers]
        # own process group, signalled as a whole like a terminal's Ctrl-C (workers and engines too).
        # SIGINT back to its default: a shell starts background jobs (`make test &`) with SIGINT
        # ignored, which the child would inherit and so never see the Ctrl-C.
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            if state.exists() and json.loads(state.read_text() or "{}").get("games_done", 0) >= after_games:
                break
            time.sleep(0.05)
        os.killpg(proc.pid, sig)
        return subprocess.CompletedProcess(cmd, proc.wait(), "", proc.stderr.read())

    ctrl_c = interrupt(signal.SIGINT, 2, "1")
    assert ctrl_c.returncode == 130 and ctrl_c.stderr.rstrip().endswith("interrupted"), ctrl_c.stderr
    assert interrupt(signal.SIGKILL, 4, "2").returncode == -signal.SIGKILL  # killed mid-run, not finished
    assert 4 <= json.loads(state.read_text())["games_done"] < 12
    assert cli_main(["chess", "datagen", "--out", str(part), *args]) == 0
    assert part.read_bytes() == full.read_bytes()


@pytest.mark.slow
def test_pgn_positions_and_mate_in_one(tmp_path, stockfish_path):
    pgn = tmp_path / "g.pgn"
    pgn.write_text(SCHOLAR)
    out = tmp_path / "p.txt"
    assert cli_main(["chess", "datagen", "--out", str(out), "--pgn", str(pgn), "--games", "null",
                     "--stockfish", stockfish_path, "--nodes", "300", "--illegal-share", "0", "--ending-share", "0"]) == 0
    policy, env = _check_lines(out)
    assert policy == env == 7 + 2  # game b stops before its illegal 2. Ke3
    envs = [s for s in load_samples(out) if s.task == "env"]
    assert envs[6].prompt.endswith("+h5f7+e2e4 e7e5 f1c4 b8c6 d1h5 g8f6 h5f7+") and envs[6].completion.endswith("+1.0+1+0")
    mates = tmp_path / "m.txt"
    assert cli_main(["chess", "datagen", "--out", str(mates), "--pgn", str(pgn), "--games", "null",
                     "--stockfish", stockfish_path, "--nodes", "300", "--mate-in-one"]) == 0
    samples = load_samples(mates)
    assert len(samples) == 1 and samples[0].task == "policy"
    r = parse_policy(samples[0].completion, fen=samples[0].prompt)
    board = r.board.copy()
    board.push_uci(r.best)
    assert r.best == "h5f7" and board.is_checkmate()


@pytest.mark.slow
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, stockfish_path):
    out = tmp_path / "x.txt"
    cases = [
        (["--games", "0"], "greater than or equal to 1"),
        (["--gmaes", "3"], "unknown key 'gmaes'"),
        (["--nodes", "null"], "set nodes or time"),
        (["--format", "wide"], "format"),
        (["--pgn", str(tmp_path / "none.pgn")], "PGN file not found"),
    ]
    for extra, message in cases:
        rc = cli_main(["chess", "datagen", "--out", str(out), "--stockfish", stockfish_path, *extra])
        err = capsys.readouterr().err
        assert rc == 2 and message in err and err.count("\n") == 1, (extra, err)
    empty = tmp_path / "empty.pgn"
    empty.write_text("")
    assert cli_main(["chess", "datagen", "--out", str(out), "--pgn", str(empty), "--stockfish", stockfish_path]) == 2
    assert "no games found" in capsys.readouterr().err
    bad_fen = tmp_path / "fen.pgn"
    bad_fen.write_text('[SetUp "1"]\n[FEN "not a fen"]\n\n1. e4 *\n')
    assert cli_main(["chess", "datagen", "--out", str(tmp_path / "f.txt"), "--pgn", str(bad_fen), "--stockfish", stockfish_path]) == 2
    assert "game 1: malformed FEN header" in capsys.readouterr().err
    binary = tmp_path / "bin.pgn"
    binary.write_bytes(b"\x00\x01{{{ not chess")
    assert cli_main(["chess", "datagen", "--out", str(tmp_path / "b.txt"), "--pgn", str(binary), "--stockfish", stockfish_path]) == 2
    assert "no positions found in PGN" in capsys.readouterr().err
    assert not out.exists()  # the failed runs above left no empty output behind (issue #26)
    out.write_text("someone else's file\n")
    assert cli_main(["chess", "datagen", "--out", str(out), "--stockfish", stockfish_path]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_text() == "someone else's file\n"
    (tmp_path / "x.txt.state.json").write_text('{"games_done": "two"}')
    assert cli_main(["chess", "datagen", "--out", str(out), "--stockfish", stockfish_path]) == 2
    assert "not a datagen state file" in capsys.readouterr().err
    assert cli_main(["chess", "datagen", "--out", str(out / "y.txt"), "--stockfish", stockfish_path]) == 2
    assert "cannot write" in capsys.readouterr().err  # parent is a file


@pytest.mark.slow
def test_an_engine_failing_in_a_worker_ends_the_run_instead_of_hanging(tmp_path, stockfish_path):
    # Starts once (the pre-flight check in the main process), then dies at once in the workers.
    flaky = tmp_path / "flaky-stockfish"
    flaky.write_text(f"#!/bin/sh\n[ -e {tmp_path}/started ] && exit 0\ntouch {tmp_path}/started\nexec {stockfish_path}\n")
    flaky.chmod(0o755)
    cmd = [sys.executable, "-m", "tinyreason.cli", "chess", "datagen", "--out", str(tmp_path / "w.txt"),
           "--stockfish", str(flaky), "--workers", "2", *SMALL, "--games", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "cannot start Stockfish" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_resume_with_other_settings_is_refused(tmp_path, capsys, stockfish_path):
    out = tmp_path / "r.txt"
    assert _gen(out, "--games", "1", stockfish=stockfish_path) == 0
    before = out.read_bytes()
    assert _gen(out, "--games", "2", "--seed", "5", stockfish=stockfish_path) == 2
    assert "other settings (seed)" in capsys.readouterr().err and out.read_bytes() == before
    assert _gen(out, "--games", "1", "--seed", "5", "--overwrite", stockfish=stockfish_path) == 0
    assert out.read_bytes() != before


def test_selfplay_game_is_a_legal_game_with_random_opening():
    from types import SimpleNamespace

    from tinyreason.chess.selfplay import game_rng, illegal_move, play_selfplay

    s = SimpleNamespace(opening_plies=6, random_move_share=1.0, max_plies=40)
    plies = play_selfplay(s, game_rng(0, 3), analyse=lambda b: pytest.fail("no engine with all-random moves"))
    board = chess.Board()
    for ply in plies:
        assert ply.board.fen() == board.fen() and ply.history == [m.uci() for m in board.move_stack]
        board.push_uci(ply.move)
    assert [p.move for p in play_selfplay(s, game_rng(0, 3), None)] == [p.move for p in plies]
    rng = game_rng(0, 0)
    for ply in plies:
        assert chess.Move.from_uci(illegal_move(ply.board, rng)) not in ply.board.legal_moves


def test_best_is_the_top_eval_line_for_both_colours():
    from tinyreason.chess.engine import Candidate
    from tinyreason.chess.selfplay import Ply, game_rng, policy_line

    for fen in [chess.STARTING_FEN, "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1"]:
        board = chess.Board(fen)
        moves = sorted(m.uci() for m in board.legal_moves)[:5]
        # node-limited MultiPV: a lower line can end with a higher score than line 1; B: follows
        # the evals (as evaluation and rewards read them), so B: and E: always agree
        lines = [Candidate(moves[0], 20), *(Candidate(m, 30 - i) for i, m in enumerate(moves[1:]))]
        r = parse_policy(policy_line(Ply(board, [], moves[0], lines), game_rng(0, 0), compact=False))
        assert r.best == moves[1] and sorted(r.moves) == sorted(moves)
        assert r.candidates() == {c.move: c.cp / 100 for c in lines}
        tied = [Candidate(m, 0) for m in moves]  # ties keep Stockfish's order: line 1
        assert parse_policy(policy_line(Ply(board, [], moves[0], tied), game_rng(0, 0), compact=False)).best == moves[0]


def test_mating_and_ending_moves():
    from tinyreason.chess.selfplay import ending_moves, mating_moves

    scholar = chess.Board("r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4")
    assert mating_moves(scholar) == ["h5f7"] and ending_moves(scholar) == ["h5f7"]
    board = chess.Board("7k/5Q2/6K1/8/8/8/8/8 w - - 0 1")
    mates, ends = mating_moves(board), ending_moves(board)
    assert mates == ["f7e8", "f7f8", "f7g7", "f7h7"]
    assert set(mates) < set(ends) and "g6h6" in ends and "f7c4" in ends  # stalemates end the game too
    assert ending_moves(chess.Board()) == []


@pytest.mark.slow
def test_shards_concatenated_equal_one_run_and_resume_on_their_own(tmp_path, capsys, stockfish_path):
    one = tmp_path / "one.txt"
    assert _gen(one, "--games", "5", stockfish=stockfish_path) == 0
    shards = [tmp_path / f"s{k}.txt" for k in range(3)]
    for k, out in enumerate(shards):  # games 0, 1-2, 3-4
        assert _gen(out, "--games", "5", "--shard", f"{k}/3", "--workers", "2" if k == 2 else "1", stockfish=stockfish_path) == 0
    assert b"".join(s.read_bytes() for s in shards) == one.read_bytes() and all(s.stat().st_size for s in shards)
    assert json.loads((tmp_path / "s2.txt.state.json").read_text())["games_done"] == 2
    # a kill in the middle of shard 2's second game, then the same command again
    game3 = tmp_path / "g3.txt"
    assert _gen(game3, "--games", "5", "--shard", "3/5", stockfish=stockfish_path) == 0
    first_game = game3.stat().st_size
    state = json.loads((tmp_path / "s2.txt.state.json").read_text())
    state.update(games_done=1, bytes=first_game)
    (tmp_path / "s2.txt.state.json").write_text(json.dumps(state))
    with open(shards[2], "r+b") as f:
        f.truncate(first_game + 10)
    assert _gen(shards[2], "--games", "5", "--shard", "2/3", stockfish=stockfish_path) == 0
    assert b"".join(s.read_bytes() for s in shards) == one.read_bytes()
    capsys.readouterr()
    assert _gen(shards[2], "--games", "5", "--shard", "1/3", stockfish=stockfish_path) == 2  # another shard's settings
    assert "other settings (game_span, shard)" in capsys.readouterr().err
    assert _gen(shards[2], "--games", "6", "--shard", "2/3", stockfish=stockfish_path) == 2  # games 4-5 now
    assert "other settings (game_span)" in capsys.readouterr().err


@pytest.mark.slow
def test_pgn_shards_concatenated_equal_one_run(tmp_path, stockfish_path):
    pgn = tmp_path / "g.pgn"
    pgn.write_text(SCHOLAR + '\n[Event "c"]\n\n1. f3 e5 2. g4 Qh4# 0-1\n')
    args = ["--pgn", str(pgn), "--games", "null", "--stockfish", stockfish_path, "--nodes", "300"]
    one = tmp_path / "one.txt"
    assert cli_main(["chess", "datagen", "--out", str(one), *args]) == 0
    shards = [tmp_path / f"s{k}.txt" for k in range(2)]  # games 0, 1-2
    for k, out in enumerate(shards):
        assert cli_main(["chess", "datagen", "--out", str(out), *args, "--shard", f"{k}/2"]) == 0
    assert b"".join(s.read_bytes() for s in shards) == one.read_bytes() and shards[0].stat().st_size
    empty = tmp_path / "e.txt"  # more shards than games: an empty share, not an error
    assert cli_main(["chess", "datagen", "--out", str(empty), *args, "--shard", "0/4"]) == 0
    assert empty.read_bytes() == b""


def test_bad_shard_exits_2_with_one_line(tmp_path, capsys):
    for value in ["4/4", "1", "a/3", "-1/4", "0/0"]:
        rc = cli_main(["chess", "datagen", "--out", str(tmp_path / "x.txt"), "--shard", value])
        err = capsys.readouterr().err
        assert rc == 2 and "shard" in err and err.count("\n") == 1, (value, err)
    assert not (tmp_path / "x.txt").exists()
