"""scripts/random_legal_baseline.py: exact expectations of a uniformly random legal move, by the eval's scorer."""

from __future__ import annotations

import json

import pytest

from script_module import load_script

rlb = load_script("scripts/random_legal_baseline.py")

START = "P: rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1 "
START_REF = "M: e2e4 d2d4 g1f3 c2c4 b1c3 E: 0.3 0.4 0.2 0.2 0.1 B: d2d4"
# the rook on a8 checks the black king on h8 along the 8th rank: Kg7 and Kh7 are its only moves
CHECK = "P: R6k/8/8/8/8/8/8/6K1 b - - 0 1 "
CHECK_REF = "M: h8g7 h8h7 E: 0.0 -9.0 B: h8g7"
MATE = "P: 6k1/5ppp/8/8/8/8/8/R5K1 w - - 0 1 "  # only a1a8 mates among white's legal moves


def test_expectations_weight_every_legal_move_equally():
    start = rlb.policy_expectation(START, START_REF)
    assert start == {"n_legal": 20, "best": pytest.approx(1 / 20), "top5": pytest.approx(5 / 20)}
    check = rlb.policy_expectation(CHECK, CHECK_REF)
    assert check == {"n_legal": 2, "best": pytest.approx(1 / 2), "top5": pytest.approx(1.0)}
    n = len(rlb.legal_moves(MATE))
    assert rlb.mate_expectation(MATE) == pytest.approx(1 / n)


def test_summary_is_per_number_of_legal_moves():
    rows = [rlb.policy_expectation(START, START_REF), rlb.policy_expectation(CHECK, CHECK_REF)]
    s = rlb.summarize(rows)
    assert s["all"]["n"] == 2 and s["all"]["best_move_accuracy"] == pytest.approx((1 / 20 + 1 / 2) / 2)
    assert s["1-5 legal moves"]["top5_rate"] == pytest.approx(1.0) and s["6-20"]["top5_rate"] == pytest.approx(0.25)
    assert "21 or more" not in s and "mean_cp_loss" not in s["all"]


def test_main_writes_json_and_refuses_a_file_without_policy_samples(tmp_path, capsys):
    data = tmp_path / "d.txt"
    data.write_text(f"{START}{START_REF}\n{CHECK}{CHECK_REF}\n")
    mates = tmp_path / "m.txt"
    mates.write_text(f"{MATE}M: a1a8 E: 999.99 B: a1a8\n")
    out = tmp_path / "o.json"
    assert rlb.main([str(data), "--mate-in-one", str(mates), "--out", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["policy"]["all"]["top5_rate"] == pytest.approx((0.25 + 1.0) / 2)
    assert got["mate_in_one"]["n"] == 1 and 0 < got["mate_in_one"]["mate_in_one_accuracy"] < 1
    env_only = tmp_path / "e.txt"
    env_only.write_text("A: 8/8/8/8/8/8/8/K6k w - - 0 1+a1a2++8/8/8/8/8/8/K7/7k b - - 1 1+0.001+0+0\n")
    assert rlb.main([str(env_only)]) == 2 and "no policy samples" in capsys.readouterr().err


@pytest.mark.slow
def test_cp_loss_is_the_evals_own_per_legal_move(tmp_path, stockfish_path):
    data = tmp_path / "d.txt"
    data.write_text(f"{CHECK}{CHECK_REF}\n")
    out = tmp_path / "o.json"
    assert rlb.main([str(data), "--cp-loss", "--engine-nodes", "200", "--stockfish", stockfish_path, "--out", str(out)]) == 0
    from tinyreason.chess.engine import EnginePool
    from tinyreason.chess.rewards import CP_CLIP

    fen = CHECK[3:].strip()
    with EnginePool(stockfish_path, size=1, nodes=200) as pool:
        want = sum(pool.cp_loss(fen, m, clip=CP_CLIP) for m in ("h8g7", "h8h7")) / 2
    assert json.loads(out.read_text())["policy"]["all"]["mean_cp_loss"] == pytest.approx(want)
