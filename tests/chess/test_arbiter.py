"""The arbiter reproduces python-chess ground truth, including game ends and illegal moves."""

from __future__ import annotations

import json

import chess
import pytest

from tinyreason.chess import arbiter_completion
from tinyreason.chess.arbiter import arbiter_step, make_env_sample, parse_board, parse_move
from tinyreason.chess.formats import env_prompt
from tinyreason.errors import UserError


def test_every_expected_fen_of_the_reference_prompts(fixtures):
    cases = json.loads((fixtures / "rookworld" / "env_prompts_expected.json").read_text())
    assert len(cases) == 300
    for case in cases:
        assert arbiter_completion(case["prompt"]) == f"{case['expected_fen']}+0.001+0+0", case["prompt"]


def test_real_generations_expected_fens(fixtures):
    for g in json.loads((fixtures / "rookworld" / "rookworld_lm_env_generations.json").read_text()):
        assert arbiter_completion(g["prompt"]).split("+")[0] == g["expected"]


def _complete(fen: str, uci: str) -> str:
    return arbiter_completion(env_prompt(fen, uci, [uci]))


def test_checkmate_rewards_the_mover():
    fen = "r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4"
    assert _complete(fen, "h5f7") == "r1bqkb1r/pppp1Qpp/2n2n2/4p3/2B1P3/8/PPPP1PPP/RNB1K1NR b KQkq - 0 4+1.0+1+0"
    black = "rnbqkbnr/pppp1ppp/8/4p3/6P1/5P2/PPPPP2P/RNBQKBNR b KQkq - 0 2"
    assert _complete(black, "d8h4").endswith("+1.0+1+0")


def test_draws_score_half():
    stalemate = "7k/5Q2/8/8/8/8/8/K7 w - - 0 1"
    assert _complete(stalemate, "f7g6") == "7k/8/6Q1/8/8/8/8/K7 b - - 1 1+0.5+1+0"
    bare_kings = "8/8/8/8/8/8/1r6/K6k w - - 0 1"  # Kxb2 leaves insufficient material
    assert _complete(bare_kings, "a1b2") == "8/8/8/8/8/8/1K6/7k b - - 0 1+0.5+1+0"
    assert _complete("7k/8/8/8/8/8/1r6/K2R4 w - - 0 1", "a1b2").endswith("+0.001+0+0")  # a rook is left
    seventyfive = "8/8/8/4k3/8/8/3R4/4K3 w - - 149 120"
    assert _complete(seventyfive, "d2d3").endswith("+0.5+1+0")  # 75-move rule ends the game


def test_claimable_draws_do_not_end_the_game():
    fifty = "8/8/8/4k3/8/8/3R4/4K3 w - - 99 80"
    assert _complete(fifty, "d2d3") == "8/8/8/4k3/8/3R4/8/4K3 b - - 100 80+0.001+0+0"


def test_illegal_and_malformed_moves_leave_the_position():
    start = chess.STARTING_FEN
    for uci in ["e2e5", "e1e2", "e7e5", "zz", "", "e2e4q", "a1a1"]:
        assert arbiter_step(start, uci).completion() == f"{start}+-1.0+0+1"
    pinned = "4k3/4r3/8/8/8/8/4B3/4K3 w - - 0 1"
    assert _complete(pinned, "e2d3") == f"{pinned}+-1.0+0+1"  # pseudo-legal, leaves king in check


def test_en_passant_square_only_when_capturable():
    assert _complete(chess.STARTING_FEN, "e2e4").split("+")[0].split()[3] == "-"
    fen = "rnbqkbnr/ppp1pppp/8/8/3pP3/8/PPPP1PPP/RNBQKBNR w KQkq - 0 3"
    assert _complete(fen, "c2c4").split("+")[0].split()[3] == "c3"


def test_history_keeps_last_ten_moves_including_this_one():
    board = chess.Board()
    history = ["g1f3", "g8f6", "f3g1", "f6g8"] * 3
    for m in history:
        board.push_uci(m)
    prompt, completion = make_env_sample(board, "e2e4", history)
    parts = prompt.split("+")
    assert parts[1] == "e2e4" and parts[2].split() == (history + ["e2e4"])[-10:]
    assert completion.endswith("+0.001+0+0")


def test_bad_prompts_raise_one_line_user_errors():
    for prompt in ["P: something", "A: only+two", ""]:
        with pytest.raises(UserError):
            arbiter_completion(prompt)
    with pytest.raises(UserError, match="malformed FEN"):
        arbiter_completion("A: not/a/fen w - - 0 1+e2e4+e2e4+")
    with pytest.raises(UserError, match="invalid position"):
        parse_board("8/8/8/8/8/8/8/8 w - - 0 1")  # no kings
    board = chess.Board()
    assert parse_move(board, "e2e4") == chess.Move.from_uci("e2e4")
    with pytest.raises(UserError, match="illegal move"):
        parse_move(board, "e2e5")
    with pytest.raises(UserError, match="malformed UCI"):
        parse_move(board, "e9e4")
