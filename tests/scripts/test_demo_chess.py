"""scripts/demo_chess.py: the GRPO overrides it adds on a machine without Stockfish."""

from __future__ import annotations

from tinyreason.chess import engine
from tinyreason.config import load_config
from tinyreason.lm.grpo_train import GRPOTrainConfig

from script_module import load_script


def _demo():
    return load_script("scripts/demo_chess.py")


def test_without_stockfish_the_demo_turns_the_engine_reward_off(monkeypatch, tmp_path):
    demo, said = _demo(), []
    cfg = load_config(GRPOTrainConfig, demo.GRPO_CONFIG)
    assert cfg.reward_weights["policy"]["policy_move_quality"] > 0  # the demo uses the engine reward
    monkeypatch.setenv("STOCKFISH", str(tmp_path / "none"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(engine, "FALLBACK_PATHS", (str(tmp_path / "stockfish"),))
    overrides = demo.engine_overrides(said.append)
    assert overrides == ["reward_weights.policy.policy_move_quality=0"]
    assert len(said) == 1 and "no Stockfish binary found" in said[0]
    key, value = overrides[0].split("=")
    off = load_config(GRPOTrainConfig, demo.GRPO_CONFIG, {key: value})
    assert off.reward_weights["policy"]["policy_move_quality"] == 0


def test_with_stockfish_the_demo_keeps_its_config(stockfish_path, monkeypatch):
    monkeypatch.setenv("STOCKFISH", stockfish_path)
    assert _demo().engine_overrides(print) == []
