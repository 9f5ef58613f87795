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
STALEMATE = "P: 7k/5Q2/6K1/8/8/8/8/8 b - - 0 1 "


def test_expectations_weight_every_legal_move_equally():
    assert rlb.policy_expectation(START, START_REF) == {"n_legal": 20, "best": pytest.approx(1 / 20),
                                                        "top5": pytest.approx(5 / 20)}
    assert rlb.policy_expectation(CHECK, CHECK_REF) == {"n_legal": 2, "best": pytest.approx(1 / 2),
                                                        "top5": pytest.approx(1.0)}
    _, moves = rlb.position(MATE)
    assert rlb.mate_expectation(MATE) == pytest.approx(1 / len(moves))


def test_moves_tied_at_the_top_eval_all_count_as_best_as_in_the_eval():
    tied = "M: e2e4 d2d4 g1f3 c2c4 b1c3 E: 0.4 0.4 0.2 0.2 0.1 B: d2d4"
    assert rlb.policy_expectation(START, tied)["best"] == pytest.approx(2 / 20)


def test_a_position_without_a_legal_move_scores_zero_in_its_own_bucket():
    assert rlb.position(STALEMATE)[1] == []
    assert rlb.policy_expectation(STALEMATE, "M: h8g8 E: 0.0 B: h8g8") == {"n_legal": 0, "best": 0.0, "top5": 0.0}
    assert rlb.mate_expectation(STALEMATE) == 0.0
    with pytest.raises(ValueError, match="not a valid position"):
        rlb.position("P: 8/8/8/8/8/8/8/Kk6 w - - 0 1 ")  # kings side by side


def test_summary_buckets_split_at_their_edges_and_add_up_to_all():
    rows = [{"n_legal": n, "best": b, "top5": 1.0} for n, b in ((0, 0.0), (5, 0.2), (6, 0.1), (20, 0.3), (21, 0.0))]
    s = rlb.summarize(rows)
    assert {k: v["n"] for k, v in s.items()} == {"all": 5, "no legal move": 1, "1-5 legal moves": 1, "6-20": 2,
                                                 "21 or more": 1}
    assert s["6-20"]["best_move_accuracy"] == pytest.approx(0.2) and s["all"]["best_move_accuracy"] == pytest.approx(0.12)
    assert "mean_cp_loss" not in s["all"]


def test_main_writes_json(tmp_path):
    data = tmp_path / "d.txt"
    data.write_text(f"{START}{START_REF}\n{CHECK}{CHECK_REF}\n")
    mates = tmp_path / "m.txt"
    mates.write_text(f"{MATE}M: a1a8 E: 999.99 B: a1a8\n")
    out = tmp_path / "o.json"
    assert rlb.main([str(data), "--mate-in-one", str(mates), "--out", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["policy"]["all"]["top5_rate"] == pytest.approx((0.25 + 1.0) / 2)
    assert got["policy"]["1-5 legal moves"]["n"] == 1 and got["policy"]["6-20"]["n"] == 1
    assert got["mate_in_one"] == {"n": 1, "mate_in_one_accuracy": pytest.approx(1 / len(rlb.position(MATE)[1]))}


def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys):
    env = "A: 8/8/8/8/8/8/8/K6k w - - 0 1+a1a2++8/8/8/8/8/8/K7/7k b - - 1 1+0.001+0+0\n"
    files = {"env.txt": env, "bad.txt": "P: 8/8/8/8/8/8/8/Kk6 w - - 0 1 M: a1a2 E: 0.0 B: a1a2\n",
             "good.txt": f"{START}{START_REF}\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    cases = [([str(tmp_path / "missing.txt")], ""), ([str(tmp_path / "env.txt")], "no policy (P:) samples"),
             ([str(tmp_path / "bad.txt")], "not a valid position"),
             ([str(tmp_path / "good.txt"), "--mate-in-one", str(tmp_path / "env.txt")], "policy (P:) samples only")]
    for argv, msg in cases:
        assert rlb.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and msg in err, err


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
