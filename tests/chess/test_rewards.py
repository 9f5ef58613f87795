"""Every reward on hand-made cases and on real RookWorld-LM generations, checked against the arbiter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import chess
import pytest

from tinyreason.chess import arbiter_completion
from tinyreason.chess.engine import EnginePool
from tinyreason.chess.eval_metrics import score_mate_in_one
from tinyreason.chess.formats import policy_prompt
from tinyreason.chess.rewards import (
    DEFAULT_WEIGHTS,
    REWARD_FUNCS,
    env_fen_exact,
    env_fen_fields,
    env_fen_ranks,
    env_format,
    env_outcome,
    policy_best_move,
    policy_candidates,
    policy_eval_error,
    policy_format,
    policy_legal_moves,
    policy_mate,
    policy_move_quality,
    policy_valid_best_move,
    score,
)
from tinyreason.errors import UserError

ROOKWORLD = Path(__file__).parents[1] / "fixtures" / "rookworld"
START = chess.STARTING_FEN
P = policy_prompt(START)
REF = "M: e2e4 d2d4 g1f3 c2c4 g2g3      E: 0.3 0.3 0.25 0.2 0.1                  B: e2e4"
ENV_P = f"A: {START}+e2e4+e2e4+"
ENV_TRUE = "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1+0.001+0+0"


def test_policy_format_partial_credit():
    got = policy_format([P] * 5, [REF, "M: e2e4 E: 0.1 B: e2e4", "M: e2e4 E: B: e2e4", "B: e2e4", "M: e2e4 E: 0.1 B: e2e4 P: x"])
    assert got == pytest.approx([1.0, 1.0, 0.8, 0.4, 0.8])
    assert policy_format([P], [""]) == [0.0]


def test_policy_best_move_ranks_by_reference_evals_not_its_b():
    comps = [f"M: e2e4 E: 0.3 B: {m}" for m in ["e2e4", "d2d4", "g1f3", "c2c4", "g2g3", "a2a3", "e2e5", "zz"]]
    got = policy_best_move([P] * len(comps), comps, reference=[REF] * len(comps))
    assert got == pytest.approx([1.0, 1.0, 0.6, 0.4, 0.2, 0.0, -1.0, -1.0])  # e2e4/d2d4 tie for first
    black_ref = "M: a7a6 e7e5 c7c5 E: -0.9 -0.2 -0.3 B: a7a6"  # original data: black B: is the weakest
    bp = policy_prompt("rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1")
    assert policy_best_move([bp, bp], ["B: e7e5", "B: a7a6"], reference=[black_ref] * 2) == pytest.approx([1.0, 1 / 3])
    with pytest.raises(UserError, match="without a valid FEN"):
        policy_best_move(["P: nonsense"], ["B: e2e4"], reference=[REF])


def test_policy_candidates_overlap():
    comps = ["M: e2e4 d2d4 g1f3 c2c4 g2g3 E:", "M: e2e4 d2d4 E:", "M: a2a3 h2h3 E:",
             "M: e2e4 d2d4 g1f3 c2c4 g2g3 a2a3 E:", "B: e2e4", "M: e2e4 e2e4 E:"]
    got = policy_candidates([P] * 6, comps, reference=[REF] * 6)
    assert got == pytest.approx([1.0, 0.4, 0.0, 5 / 6, 0.0, 0.2])


def test_policy_mate_credits_only_a_legal_mating_best_move_as_the_eval_counts_mates():
    fen = "r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4"  # Qxf7# on the board
    p = policy_prompt(fen)
    comps = ["M: h5f7 c4f7 E: 99.0 2.0 B: h5f7",  # the mate
             "B: h5f7",  # the mate in a malformed answer: still the mate
             "M: c4f7 E: 2.0 B: c4f7",  # check, not mate
             "M: h5h8 E: 1.0 B: h5h8",  # illegal
             "M: h5f7 E: 99.0"]  # no best move
    got = policy_mate([p] * len(comps), comps)
    assert got == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert got == [float(score_mate_in_one(p, c).mates) for c in comps]
    assert policy_mate([P], [REF]) == [0.0]  # no mate from the start position
    assert DEFAULT_WEIGHTS["policy"]["policy_mate"] == 0.0  # off unless a config weights it


def test_policy_legal_moves_counts_distinct_legal_moves():
    comps = ["M: e2e4 d2d4 g1f3 E:", "M: e2e4 e2e4 e2e4 e2e4 E:", "M: e2e4 e2e5 E:", "M: e7e5 E:", "B: e2e4", ""]
    got = policy_legal_moves([P] * 6, comps)
    assert got == pytest.approx([1.0, 0.25, 0.5, 0.0, 0.0, 0.0])
    assert DEFAULT_WEIGHTS["policy"]["policy_legal_moves"] == 0.0  # off unless a config weights it


def test_policy_valid_best_move_keeps_credit_only_for_well_formed_answers():
    comps = ["M: e2e4 d2d4 E: 0.3 0.3 B: e2e4",  # well formed, best: full credit
             "M: e2e4 e2e4 E: 0.3 0.3 B: e2e4",  # the same best move after a repeated candidate: none
             "M: e2e4 d2d4 E: 0.3 B: d2d4",  # an eval missing: none
             "M: e2e4 e2e4 E: 0.3 0.3 B: e2e5",  # illegal stays -1 whatever the format
             "M: a2a3 E: 0.0 B: a2a3"]  # well formed, outside the candidates: 0
    got = policy_valid_best_move([P] * 5, comps, reference=[REF] * 5)
    assert got == pytest.approx([1.0, 0.0, 0.0, -1.0, 0.0])
    assert policy_best_move([P] * 5, comps, reference=[REF] * 5)[:3] == pytest.approx([1.0, 1.0, 1.0])
    assert DEFAULT_WEIGHTS["policy"]["policy_valid_best_move"] == 0.0


def test_policy_eval_error():
    comps = ["M: e2e4 d2d4 E: 0.3 0.3 B: e2e4", "M: e2e4 E: 1.3 B: e2e4", "M: e2e4 E: 99 B: e2e4",
             "M: e2e4 a2a3 E: 0.3 0.0 B: e2e4", "M: e2e4 E: B: e2e4", "B: e2e4"]
    got = policy_eval_error([P] * 6, comps, reference=[REF] * 6)
    assert got == pytest.approx([1.0, 0.5, 0.0, 0.5, 0.0, 0.0])
    mate_ref = "M: h5f7 E: 999.97 B: h5f7"  # mates compare clipped to ±10 pawns
    assert policy_eval_error([P], ["M: h5f7 E: 999.5 B: h5f7"], reference=[mate_ref]) == [1.0]


def test_env_rewards_hand_made():
    comps = [ENV_TRUE, "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR w KQkq - 0 1+0.001+0+0",
             "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR b KQkq e3 0 1+1.0+1+0",
             ENV_TRUE + "+", ENV_TRUE + " junk", "", "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1"]
    prompts = [ENV_P] * len(comps)
    assert env_format(prompts, comps) == pytest.approx([1.0, 1.0, 0.8, 1.0, 0.8, 0.0, 0.2])  # #2: impossible e.p.
    assert env_fen_exact(prompts, comps) == [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    assert env_fen_fields(prompts, comps) == pytest.approx([1.0, 5 / 6, 4 / 6, 1.0, 1.0, 0.0, 1.0])
    assert env_outcome(prompts, comps) == pytest.approx([1.0, 1.0, 1 / 3, 1.0, 1.0, 0.0, 0.0])


def test_env_fen_ranks_scores_each_board_rank():
    one_off = "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR b KQkq - 0 1+0.001+0+0"  # pawn not moved: ranks 4 and 2 wrong
    nine = "r/r/r/r/r/r/r/r/r w - - 0 1+0+0+0"
    got = env_fen_ranks([ENV_P] * 4, [ENV_TRUE, one_off, "garbage", nine])
    assert got == pytest.approx([1.0, 0.75, 0.0, 0.0])
    assert DEFAULT_WEIGHTS["env"]["env_fen_ranks"] == 0.0  # off unless a config weights it


def test_env_rewards_illegal_and_mate_truth_from_arbiter():
    illegal_p = f"A: {START}+e2e5+e2e5+"
    good, lazy = f"{START}+-1.0+0+1", "rnbqkbnr/pppppppp/8/4P3/8/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1+0.001+0+0"
    # an original-style reference that pushed the illegal move is overruled by the arbiter
    assert env_fen_exact([illegal_p] * 2, [good, lazy], reference=[lazy, lazy]) == [1.0, 0.0]
    assert env_outcome([illegal_p] * 2, [good, lazy]) == pytest.approx([1.0, 1 / 3])  # terminated 0 is right
    mate = "A: r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4+h5f7+h5f7+"
    truth = arbiter_completion(mate)
    assert env_outcome([mate], [truth]) == [1.0] and env_outcome([mate], [truth.replace("+1.0+1+", "+0.001+0+")]) == [1 / 3]
    # unparseable prompt: the reference is the truth; without one it is bad input
    broken = "A: garbage+e2e4+e2e4+"
    assert env_fen_exact([broken], [ENV_TRUE], reference=[ENV_TRUE]) == [1.0]
    with pytest.raises(UserError, match="environment prompt without a valid position"):
        env_fen_exact([broken], [ENV_TRUE])


def test_real_model_generations_scored_against_the_arbiter():
    gens = json.loads((ROOKWORLD / "rookworld_lm_env_generations.json").read_text())
    prompts = [g["prompt"] for g in gens]
    comps = [g["generated"] for g in gens]
    exact = env_fen_exact(prompts, comps)
    assert exact == [float(g["generated"].split("+")[0] == g["expected"]) for g in gens]
    assert sum(exact) == 13
    truth = [arbiter_completion(p) for p in prompts]
    assert env_fen_exact(prompts, truth) == [1.0] * 20 and env_outcome(prompts, truth) == [1.0] * 20
    assert env_outcome(prompts, comps) == [1.0] * 20  # all legal quiet moves: 0.001+0+0 is right
    fields = env_fen_fields(prompts, comps)
    for e, f, g in zip(exact, fields, gens):
        assert (f == 1.0) == (e == 1.0)
        assert 0.0 <= f <= 1.0
    assert all((r == 1.0) >= (e == 1.0) for r, e in zip(env_fen_ranks(prompts, comps), exact))  # exact FEN => all ranks
    assert env_format(prompts, comps) == [1.0 if e else 0.8 for e in exact]  # wrong ones are impossible FENs
    total, parts = score("env", prompts, comps, truth)
    assert set(parts) == {k for k, w in DEFAULT_WEIGHTS["env"].items() if w} and all(  # zero weights skipped
        t == pytest.approx(sum(DEFAULT_WEIGHTS["env"][k] * parts[k][i] for k in parts)) for i, t in enumerate(total))


def test_real_policy_references_score_themselves_top():
    lines = (ROOKWORLD / "rook_val_400.txt").read_text().splitlines()[:60]
    prompts = [line[:92] for line in lines]
    refs = [line[92:] for line in lines]
    total, parts = score("policy", prompts, refs, refs, weights={"policy_format": 1, "policy_candidates": 1, "policy_eval_error": 1})
    assert parts["policy_format"] == [1.0] * 60 and parts["policy_candidates"] == [1.0] * 60
    assert parts["policy_eval_error"] == [1.0] * 60 and total == [3.0] * 60
    best = policy_best_move(prompts, refs, reference=refs)
    assert all(-1.0 < b <= 1.0 for b in best)  # legal, but black's B: is often not the top move
    assert min(best) < 1.0


def test_score_weights_and_errors():
    total, parts = score("policy", [P], [REF], [REF], weights={"policy_format": 2.0, "policy_best_move": 0.0})
    assert total == [2.0] and set(parts) == {"policy_format"}
    with pytest.raises(UserError, match="unknown policy reward"):
        score("policy", [P], [REF], [REF], weights={"policy_fromat": 1.0})
    with pytest.raises(UserError, match="unknown task"):
        score("chess", [P], [REF], [REF])
    with pytest.raises(UserError, match="references for"):
        policy_best_move([P, P], [REF, REF], reference=[REF])
    assert set(REWARD_FUNCS) == set(DEFAULT_WEIGHTS)


def test_trl_conversational_completions():
    comp = [[{"role": "assistant", "content": REF}]]
    assert policy_format([[{"role": "user", "content": P}]], comp) == [1.0]
    assert policy_best_move([P], comp, reference=[REF]) == [1.0]


def test_live_engine_when_reference_has_no_candidates(stockfish_path):
    pool = EnginePool(stockfish_path, size=1, nodes=3000)
    try:
        fen = "r1bqkbnr/pppp1ppp/2n5/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 2 3"  # Qxf7# wins
        prompt = policy_prompt(fen)
        comps = ["B: h5f7", "B: a2a3", "B: h5h6"]
        got = policy_best_move([prompt] * 3, comps, engine=pool)
        assert got[0] == 1.0 and got[1] == 0.0 and got[2] == 0.0
        assert pool.hits >= 2  # the best-line analysis is cached across completions
        cand = policy_candidates([prompt], ["M: h5f7 E: 999.99 B: h5f7"], engine=pool)[0]
        assert cand == pytest.approx(1 / 5)
        ev = policy_eval_error([prompt], ["M: h5f7 E: 999.99 B: h5f7"], engine=pool)
        assert ev == [1.0]
        total, parts = score("policy", [prompt], ["M: h5f7 E: 999.99 B: h5f7"], [None], engine=pool)
        assert parts["policy_best_move"] == [1.0]
    finally:
        pool.close()


def test_policy_move_quality_scores_every_legal_move_by_live_centipawn_loss(stockfish_path):
    fen = "r1bqkbnr/pppp1ppp/2n5/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 2 3"  # Qxf7# wins
    prompt = policy_prompt(fen)
    comps = ["B: h5f7", "B: h5h6", "B: a2a3", "B: h5h8", ""]
    with EnginePool(stockfish_path, size=1, nodes=3000) as pool:
        got = policy_move_quality([prompt] * 5, comps, reference=[REF] * 5, engine=pool)  # reference unused
        loss = pool.cp_loss(fen, "a2a3", clip=1000)
    assert got[0] == 1.0 and got[1] == 0.0  # the mate; the queen hangs to the g-pawn (clipped loss 2000 cp)
    assert got[2] == pytest.approx(max(0.0, 1 - loss / 300))
    assert got[3:] == [-1.0, -1.0]  # illegal, missing
    assert DEFAULT_WEIGHTS["policy"]["policy_move_quality"] == 0.0


@pytest.mark.slow  # a fresh interpreter, two engines
def test_shared_pool_when_no_engine_is_passed_and_the_process_still_exits(stockfish_path):
    # TRL passes only dataset columns, so without `engine` the rewards use one process-wide pool.
    # python-chess runs engines from non-daemon threads: an unclosed pool would hang the exit.
    code = (
        "from tinyreason.chess.engine import shared_pool\n"
        "from tinyreason.chess.formats import policy_prompt\n"
        "from tinyreason.chess.rewards import policy_best_move\n"
        "p = policy_prompt('r1bqkbnr/pppp1ppp/2n5/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 2 3')\n"
        "print(policy_best_move([p, p], ['B: h5f7', 'B: a2a3']), shared_pool() is shared_pool(), shared_pool().hits)\n"
    )
    env = {**os.environ, "STOCKFISH": stockfish_path}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0 and proc.stdout.split() == ["[1.0,", "0.0]", "True", "1"], proc.stderr


@pytest.mark.slow  # a fresh interpreter, one engine
def test_configured_shared_pool_uses_the_configured_engine(stockfish_path):
    # `chess grpo` passes its `stockfish`/`engine_nodes`/`engine_workers` settings this way;
    # nothing starts until a reward needs the engine; the same settings again keep the running
    # pool, other settings (the next run in this process) close it and take effect on next use.
    code = (
        "import os; os.environ.pop('STOCKFISH', None); os.environ['PATH'] = ''\n"
        "from tinyreason.chess.engine import configure_shared_pool, shared_pool\n"
        "from tinyreason.chess import engine\n"
        f"configure_shared_pool({stockfish_path!r}, size=1, nodes=321)\n"
        "assert engine._shared is None\n"
        "pool = shared_pool()\n"
        "print(len(pool._engines), pool.limit.nodes)\n"
        f"configure_shared_pool({stockfish_path!r}, size=1, nodes=321)\n"
        "print(shared_pool() is pool)\n"
        f"configure_shared_pool({stockfish_path!r}, size=1, nodes=654)\n"
        "print(engine._shared is None, pool._engines == [])\n"
        "print(shared_pool().limit.nodes)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.split() == ["1", "321", "True", "True", "True", "654"], proc.stderr
