"""Evaluation metrics on hand-made cases: known legal / illegal / best moves and known FENs."""

from __future__ import annotations

import json

import pytest

from tinyreason.chess.eval_metrics import (
    reference_best_moves,
    score_env,
    score_mate_in_one,
    score_policy,
    summarize_env,
    summarize_mate,
    summarize_policy,
)
from tinyreason.chess.formats import parse_policy
from tinyreason.chess.rewards import EVAL_CLIP

# White mates with Ra8 (back rank); the other four candidates are quiet moves.
BACK_RANK = "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1"
PROMPT = f"P: {BACK_RANK} "
REFERENCE = "M: g1f1 h2h3 a1a8 g2g3 f2f3 E: 0.5 0.4 999.99 0.3 0.2 B: a1a8"
START = "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1"


def test_best_move_is_top_eval_not_b_field():
    # first line of rook_val_400: black to move, B: is h7f6 (-3.21) but h7f8 (-2.3) is Stockfish's best
    fen = "2b3k1/Q4rqn/p2p4/4p3/p6p/2PP3P/BP3PP1/R5K1 b - - 0 34"
    ref = "M: a4a3 c8f5 h7f6 h7g5 h7f8      E: -3.06 -2.82 -3.21 -3.16 -2.3            B: h7f6"
    assert reference_best_moves(ref) == {"h7f8"}
    good = score_policy(f"P: {fen}", ref, "M: h7f8 a4a3 E: -2.3 -3.0 B: h7f8")
    assert good.best_correct and good.in_top5 and good.best_legal and good.format_valid
    follows_b = score_policy(f"P: {fen}", ref, "M: h7f6 E: -3.2 B: h7f6")
    assert not follows_b.best_correct and follows_b.in_top5 and follows_b.best_legal


def test_tied_top_evals_all_count():
    assert reference_best_moves("M: a4a5 d4c4 a6g6 E: 0.0 0.0 -0.5 B: d4c4") == {"a4a5", "d4c4"}
    assert reference_best_moves("garbage") == set()


@pytest.mark.parametrize(
    "completion, legal, best, top5",
    [
        ("M: a1a8 g1f1 E: 999.99 0.5 B: a1a8", True, True, True),  # the mate: best
        ("M: h2h3 E: 0.4 B: h2h3", True, False, True),  # a candidate, not the best
        ("M: a1a2 E: 0.1 B: a1a2", True, False, False),  # legal, outside the top 5
        ("M: a1h8 E: 0.1 B: a1h8", False, False, False),  # illegal: a rook cannot move diagonally
        ("M: e7e8 E: 0.1 B: e7e8", False, False, False),  # no piece there
    ],
)
def test_policy_move_outcomes(completion, legal, best, top5):
    rec = score_policy(PROMPT, REFERENCE, completion)
    assert (rec.best_legal, rec.best_correct, rec.in_top5) == (legal, best, top5)
    assert rec.format_valid


def test_policy_format_and_garbage():
    rec = score_policy(PROMPT, REFERENCE, "M: a1a8 g1f1 E: 999.99 B: a1a8")  # 2 moves, 1 eval
    assert not rec.format_valid and rec.best_correct
    rec = score_policy(PROMPT, REFERENCE, "M: a1a8 E: 1.0 B: a1a8 M: junk")  # run-on text
    assert not rec.format_valid
    rec = score_policy(PROMPT, REFERENCE, "zzz")
    assert rec.chosen is None and not (rec.format_valid or rec.best_legal or rec.best_correct or rec.in_top5)


def test_eval_errors_on_shared_candidates_with_clip():
    rec = score_policy(PROMPT, REFERENCE, "M: a1a8 h2h3 a1a2 E: 5.0 1.4 0.0 B: a1a8")
    # a1a8: ref 999.99 clipped to EVAL_CLIP; h2h3: |1.4-0.4|; a1a2 is not a reference candidate
    assert rec.eval_errors == pytest.approx([EVAL_CLIP - 5.0, 1.0])


def test_eval_errors_count_a_repeated_move_once():
    # greedy decoding often writes one move five times; it is one candidate, scored by its first eval
    rec = score_policy(PROMPT, REFERENCE, "M: h2h3 h2h3 h2h3 h2h3 h2h3 E: 1.4 0.4 0.4 0.4 0.4 B: h2h3")
    assert rec.eval_errors == pytest.approx([1.0])


def test_summarize_policy_hand_computed():
    recs = [
        score_policy(PROMPT, REFERENCE, "M: a1a8 E: 999.99 B: a1a8"),
        score_policy(PROMPT, REFERENCE, "M: h2h3 E: 0.9 B: h2h3"),
        score_policy(PROMPT, REFERENCE, "M: a1h8 E: 0.1 B: a1h8"),
        score_policy(PROMPT, REFERENCE, ""),
    ]
    recs[0].cp_loss, recs[1].cp_loss = 0.0, 500.0
    s = summarize_policy(recs)
    assert s["n"] == 4
    assert s["format_valid_rate"] == 0.75
    assert s["legal_best_move_rate"] == 0.5
    assert s["best_move_accuracy"] == 0.25
    assert s["top5_rate"] == 0.5
    assert s["eval_mae"] == pytest.approx(0.25)  # errors 0.0 and 0.5
    assert s["mean_cp_loss"] == 250.0 and s["cp_loss_n"] == 2


def test_env_known_fen():
    prompt = f"A: {START}+e2e4+e2e4+"
    truth = "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1+0.001+0+0"
    rec = score_env(prompt, truth)
    assert rec.exact and rec.fen_exact and rec.reward_ok and rec.terminated_ok and rec.truncated_ok
    assert all(rec.fen_fields.values())
    wrong = score_env(prompt, "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR w KQkq - 1 1+0.001+0+0")
    assert not wrong.fen_exact and not wrong.exact and wrong.reward_ok
    assert wrong.fen_fields == {"placement": True, "side": False, "castling": True, "ep": True,
                                "halfmove": False, "fullmove": True}
    s = summarize_env([rec, wrong])
    assert s["fen_exact_rate"] == 0.5 and s["fen_field_accuracy"] == pytest.approx((6 + 4) / 12)
    assert s["fen_side_accuracy"] == 0.5 and s["reward_accuracy"] == 1.0
    assert s["legal_move_fen_exact_rate"] == 0.5
    assert s["illegal_move_n"] == 0 and s["illegal_move_fen_exact_rate"] is None


def test_env_illegal_and_mating_moves():
    illegal = f"A: {START}+e2e5+e2e5+"
    kept = score_env(illegal, f"{START}+-1.0+0+1")
    assert kept.exact and kept.illegal_move
    rec = score_env(illegal, "rnbqkbnr/pppppppp/8/4P3/8/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1+0.001+0+0")
    assert not (rec.fen_exact or rec.reward_ok or rec.truncated_ok) and rec.terminated_ok
    legal = score_env(f"A: {START}+e2e4+e2e4+", "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1+0.001+0+0")
    assert not legal.illegal_move
    s = summarize_env([kept, rec, rec, legal])  # the illegal move kept once, played twice
    assert s["illegal_move_n"] == 3 and s["illegal_move_fen_exact_rate"] == pytest.approx(1 / 3)
    assert s["legal_move_fen_exact_rate"] == 1.0 and s["fen_exact_rate"] == 0.5
    mate = f"A: {BACK_RANK}+a1a8+a1a8+"
    rec = score_env(mate, "R5k1/5ppp/8/8/8/8/5PPP/6K1 b - - 1 1+1.0+1+0")
    assert rec.exact
    rec = score_env(mate, "R5k1/5ppp/8/8/8/8/5PPP/6K1 b - - 1 1+0.001+0+0")
    assert rec.fen_exact and not rec.reward_ok and not rec.terminated_ok and not rec.exact


def test_env_real_model_generations(fixtures):
    gens = json.loads((fixtures / "rookworld" / "rookworld_lm_env_generations.json").read_text())
    for g in gens:
        rec = score_env(g["prompt"], g["generated"])
        assert rec.fen_exact == (g["generated"].split("+")[0].strip() == g["expected"])


def test_mate_in_one():
    assert score_mate_in_one(PROMPT, "M: a1a8 E: 999.99 B: a1a8").mates
    quiet = score_mate_in_one(PROMPT, "M: g1f1 E: 0.5 B: g1f1")
    assert quiet.legal and not quiet.mates
    assert not score_mate_in_one(PROMPT, "M: a1h8 E: 1.0 B: a1h8").legal
    assert not score_mate_in_one(PROMPT, "nonsense").legal
    s = summarize_mate([score_mate_in_one(PROMPT, "B: a1a8"), quiet])
    assert s == {"n": 2, "mate_in_one_accuracy": 0.5, "legal_rate": 1.0}


def test_rook_val_references_score_perfectly(fixtures):
    """Feeding each reference back with B: set to the top-eval move gives a perfect score."""
    lines = (fixtures / "rookworld" / "rook_val_400.txt").read_text().splitlines()
    recs = []
    for line in lines:
        parsed = parse_policy(line)
        cut = line.index("M:")
        best = max(parsed.candidates().items(), key=lambda kv: kv[1])[0]
        completion = line[cut:line.index("B:")] + f"B: {best}"
        recs.append(score_policy(line[:cut], line[cut:], completion))
    s = summarize_policy(recs)
    assert s["format_valid_rate"] == s["legal_best_move_rate"] == s["best_move_accuracy"] == s["top5_rate"] == 1.0
    assert s["eval_mae"] == 0.0
