"""`tinyreason chess eval`: config errors, live centipawn loss, and a tiny end-to-end run."""

from __future__ import annotations

import json

import pytest

from tinyreason.chess import evaluate
from tinyreason.chess.eval_metrics import score_policy
from tinyreason.errors import UserError

BACK_RANK = "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1"


def test_config_errors():
    with pytest.raises(UserError, match="nothing to evaluate"):
        evaluate.parse_command(evaluate.EvalConfig, ["--model", "x"])
    with pytest.raises(UserError, match="greedy"):
        evaluate.parse_command(evaluate.EvalConfig, ["--model", "x", "--data", "d", "--greedy", "temperature=0.5"])
    with pytest.raises(UserError, match="unknown key"):
        evaluate.parse_command(evaluate.EvalConfig, ["--model", "x", "--data", "d", "--beam", "3"])
    with pytest.raises(UserError, match="reward_weights"):
        evaluate.parse_command(evaluate.EvalConfig, ["--model", "x", "--data", "d", "reward_weights.policy.nope=1"])


def test_cp_loss_without_engine_is_null_with_reason(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("STOCKFISH", raising=False)
    rec = score_policy(f"P: {BACK_RANK} ", "M: a1a8 g1f1 E: 999.99 0.5 B: a1a8", "M: g1f1 E: 0.5 B: g1f1")
    cfg = evaluate.EvalConfig(model="x", data="d", stockfish="/nonexistent/stockfish")
    reason = evaluate.add_cp_loss([rec], cfg)
    assert reason.startswith("no engine") and rec.cp_loss is None


def test_cp_loss_live_engine(stockfish_path):
    # white to move, in check from an unprotected queen: taking it wins, Kf1 throws the queen away
    fen = "4k3/8/8/8/8/8/3q4/3QK3 w - - 0 1"
    ref = "M: d1d2 e1d2 e1f1 E: 999.9 999.8 0.0 B: d1d2"
    recs = [score_policy(f"P: {fen} ", ref, f"M: {m} E: 0.0 B: {m}") for m in ("d1d2", "e1f1", "e1e2")]
    cfg = evaluate.EvalConfig(model="x", data="d", stockfish=stockfish_path, engine_nodes=5000, engine_workers=1)
    assert evaluate.add_cp_loss(recs, cfg) is None
    assert recs[0].cp_loss < 100  # a queen capture is (close to) the engine's choice
    assert 800 < recs[1].cp_loss <= 2 * evaluate.CP_CLIP  # a lost queen, clipped evals
    assert recs[2].cp_loss is None  # illegal (e2 is covered by the queen): no centipawn loss


@pytest.mark.slow
def test_end_to_end_tiny_random_model(tmp_path, fixtures):
    from tinyreason.lm.model import random_model, save_model, train_char_tokenizer

    val = (fixtures / "rookworld" / "rook_val_400.txt").read_text().splitlines()[:6]
    env = json.loads((fixtures / "rookworld" / "env_prompts_expected.json").read_text())[:4]
    from tinyreason.chess.arbiter import arbiter_completion

    env_lines = [e["prompt"] + arbiter_completion(e["prompt"]) for e in env]
    data = tmp_path / "data.txt"
    data.write_text("\n".join(val + env_lines) + "\n")
    tok = train_char_tokenizer(val + env_lines, extra_chars="\n")
    model = random_model(tok, n_layer=1, n_head=2, n_embd=32, n_positions=256)
    save_model(model, tok, tmp_path / "model")
    out, records = tmp_path / "results.json", tmp_path / "records.jsonl"
    argv = ["--model", str(tmp_path / "model"), "--data", str(data), "--out", str(out), "--records", str(records),
            "--max-new-tokens", "40", "--batch-size", "4", "--mate-in-one", str(data), "--limit", "6",
            "cp_loss=false", "--device", "cpu"]
    assert evaluate.main(argv) == 0
    res = json.loads(out.read_text())
    assert res["policy"]["n"] == 6 and "env" not in res  # --limit 6: the first six lines (policy)
    assert res["policy"]["cp_loss_note"].startswith("disabled")
    assert -1.0 <= res["policy"]["mean_reward"] <= 1.7  # weighted sum of the default policy rewards
    assert res["mate_in_one"]["n"] == 6
    rows = [json.loads(line) for line in records.read_text().splitlines()]
    assert len(rows) == 12 and all("completion" in r for r in rows)
    # a random model writes nonsense: nothing is scored as valid and every rate is a real number in [0, 1]
    assert 0.0 <= res["policy"]["format_valid_rate"] <= 1.0 and res["policy"]["best_move_accuracy"] == 0.0
    # sampling with a seed is reproducible
    argv2 = ["--model", str(tmp_path / "model"), "--data", str(data), "--out", str(tmp_path / "r2.json"),
             "--max-new-tokens", "30", "temperature=1.0", "seed=3", "cp_loss=false", "--device", "cpu"]
    assert evaluate.main(argv2) == 0
    argv2[5] = str(tmp_path / "r3.json")
    assert evaluate.main(argv2) == 0
    r2, r3 = (json.loads((tmp_path / f).read_text()) for f in ("r2.json", "r3.json"))
    assert r2["env"] == r3["env"] and r2["env"]["n"] == 4


def test_reformat_policy_prompts(fixtures):
    from tinyreason.chess.data import load_samples

    samples = load_samples(fixtures / "rookworld" / "rook_val_400.txt", limit=2)
    compact = evaluate.reformat(samples, "compact")
    assert compact[0].prompt == "P: 2b3k1/Q4rqn/p2p4/4p3/p6p/2PP3P/BP3PP1/R5K1 b - - 0 34 "
    assert compact[0].completion == samples[0].completion
    assert evaluate.reformat(compact, "padded")[0].prompt == samples[0].prompt  # back to 90 columns
    assert evaluate.reformat(samples, "as_is") is samples


@pytest.mark.slow
def test_embedded_model_loads_by_name_and_evaluates(tmp_path):
    from tinyreason.hub import EMBEDDED_DIR
    from tinyreason.lm.model import load_model

    model, tok = load_model("embedded:rookworld-tiny", device="cpu")
    assert model.config.model_type == "gpt2" and 1e6 < sum(p.numel() for p in model.parameters()) < 2e7
    data = EMBEDDED_DIR / "rookworld-tiny" / "data"
    out = tmp_path / "r.json"
    argv = ["--model", "embedded:rookworld-tiny", "--data", str(data / "heldout.txt"), "--limit", "8",
            "--mate-in-one", str(data / "mate_in_one.txt"), "--out", str(out), "cp_loss=false", "--device", "cpu"]
    assert evaluate.main(argv) == 0
    res = json.loads(out.read_text())
    assert res["policy"]["n"] == 4 and res["env"]["n"] == 4 and res["mate_in_one"]["n"] == 8
    # the shipped model has learned the formats (figures on the full sets: the model card)
    assert res["env"]["well_formed_rate"] > 0 or res["policy"]["format_valid_rate"] > 0
