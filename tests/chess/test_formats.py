"""RookWorld text formats: byte-exact round-trips on real data, tolerant parsing of model output."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tinyreason.chess.formats import (
    eval_str,
    format_policy,
    parse_env,
    parse_env_completion,
    parse_env_prompt,
    parse_policy,
    policy_completion,
    policy_prompt,
)


ROOKWORLD = Path(__file__).parents[1] / "fixtures" / "rookworld"


@pytest.fixture(scope="module")
def val_lines():
    lines = (ROOKWORLD / "rook_val_400.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 400
    return lines


def _reformat(line: str, compact: bool = False) -> str:
    r = parse_policy(line)
    return format_policy(r.fen, r.moves, [float(v) for v in r.eval_values], r.best, compact=compact)


def test_padded_round_trip_is_byte_exact_on_all_real_samples(val_lines):
    for line in val_lines:
        parsed = parse_policy(line)
        assert parsed.well_formed, line
        assert all(parsed.moves_legal) and parsed.best_legal, line
        assert _reformat(line) == line


def test_evals_are_python_float_strings(val_lines):
    for line in val_lines:
        for token in parse_policy(line).evals:
            assert eval_str(float(token)) == token
    assert eval_str(-999.79) == "-999.79" and eval_str(0) == "0.0" and eval_str(-2.30) == "-2.3"


def test_padded_layout_columns():
    fen = "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1"
    line = format_policy(fen, ["e2e4", "d2d4"], [0.3, 0.25], "e2e4")
    assert line.index("M: ") == 92 and line.index("E: ") == 92 + 33 and line.index("B: ") == 92 + 33 + 43
    assert policy_prompt(fen) + policy_completion(["e2e4", "d2d4"], [0.3, 0.25], "e2e4") == line


def test_compact_round_trip_and_any_whitespace(val_lines):
    for line in val_lines[:50]:
        compact = _reformat(line, compact=True)
        assert "  " not in compact
        assert _reformat(compact) == line  # parser reads compact; writer restores padding
        messy = compact.replace(" M: ", "\tM:   ").replace(" E: ", "\n E:").replace("B: ", "B:  ")
        assert _reformat(messy) == line


def test_partial_and_broken_policy_output_never_raises(val_lines):
    rng = random.Random(0)
    for line in val_lines[:40]:
        completion = line[line.index("M:"):]
        for cut in range(0, len(completion), 7):
            r = parse_policy(completion[:cut], fen=line[: line.index("M:")])
            assert r.board is not None
            assert not r.well_formed or cut >= len(completion) - 1
        junk = "".join(rng.choice("MEB: e2e4+-.0x\n") for _ in range(80))
        assert parse_policy(junk).board is None
    for weird in ["", "   ", "B: ", "M:", "P:", None, "E: 1 2 3 M: e2e4 B: e2e4"]:
        assert not parse_policy(weird).well_formed  # type: ignore[arg-type]


def test_policy_fields_presence_form_and_legality():
    prompt = policy_prompt("rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1")
    r = parse_policy("M: e2e4 e2e5 zz   E: 0.3 x B: e7e5 and more", fen=prompt)
    assert (r.has_moves, r.has_evals, r.has_best, r.in_order) == (True, True, True, True)
    assert r.moves_ok == [True, True, False] and r.moves_legal == [True, False, False]
    assert r.eval_values == [0.3, None]
    assert r.best == "e7e5" and r.best_ok and not r.best_legal
    assert r.trailing == "and more" and not r.well_formed
    out_of_order = parse_policy("E: 0.1 M: e2e4 B: e2e4", fen=prompt)
    assert not out_of_order.in_order and out_of_order.best_legal
    whole = parse_policy(prompt + "M: e2e4 E: 0.3 B: e2e4")
    assert whole.fen.startswith("rnbqkbnr/") and whole.well_formed and whole.best_legal
    assert whole.candidates() == {"e2e4": 0.3}
    bad_fen = parse_policy("M: e2e4 E: 0.3 B: e2e4", fen="P: not a fen")
    assert bad_fen.board is None and not bad_fen.best_legal


def test_env_prompt_and_completion_parsing():
    prompt = "A: rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1+e2e4+e2e4+"
    p = parse_env_prompt(prompt)
    assert p.ok and p.move == "e2e4" and p.history == ["e2e4"]
    c = parse_env(prompt, "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1+0.001+0+0")
    assert c.well_formed and c.reward == 0.001 and c.terminated == 0 and c.truncated == 0 and c.move_legal
    whole = parse_env(prompt + "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1+0.001+0+0")
    assert whole.fields == c.fields and whole.prompt.move == "e2e4"
    closed = parse_env_completion("8/8/8/8/8/8/8/K6k w - - 0 1 + 0.5 + 1 + 0 +")
    assert closed.fields[1:] == ["0.5", "1", "0"] and closed.trailing == ""
    runon = parse_env_completion("x+0.001+0+0 A: more text")
    assert runon.trailing == "A: more text" and not runon.fen_ok and not runon.well_formed
    partial = parse_env_completion("rnbqkbnr/pppppppp/8/8 w")
    assert partial.present == 1 and partial.reward is None and partial.terminated is None
    bad = parse_env_completion("fen+abc+2+yes")
    assert bad.reward is None and bad.terminated is None and bad.truncated is None
    for weird in ["", "+", "++++++", None, "A: x"]:
        assert not parse_env_completion(weird).well_formed  # type: ignore[arg-type]
        assert not parse_env(weird or "", weird).prompt.ok  # type: ignore[arg-type]
    assert not parse_env_prompt("P: nope").complete and not parse_env_prompt("A: fen+e2e4").complete


def test_real_model_generations_all_parse(fixtures):
    gens = json.loads((fixtures / "rookworld" / "rookworld_lm_env_generations.json").read_text())
    assert len(gens) == 20
    right = 0
    for g in gens:
        r = parse_env(g["prompt"], g["generated"])
        assert r.prompt.ok and r.move_legal
        assert len(r.fields) == 4 and r.reward == 0.001 and r.terminated == 0 and r.truncated == 0
        assert r.fen_ok == (r.fen == g["expected"])  # every wrong FEN here is also an impossible one
        right += r.fen == g["expected"]
    assert right == 13  # the real model gets 13 of these 20 positions exactly right
