"""benchmarks/grpo_learning_vs_trl.py: the verdict rule, the settings mapping, the reward
wrapper and the position-id hook (none of them needs TRL; building TRL's GRPOConfig does)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from script_module import load_script

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "rookworld"


bench = load_script("benchmarks/grpo_learning_vs_trl.py")


def demo_cfg(*extra: str):
    from tinyreason.config import parse_command
    from tinyreason.lm.grpo_train import GRPOTrainConfig

    args = type("A", (), {"config": bench.DEMO_CONFIG, "model": "embedded:rookworld-tiny", "train_data": None,
                          "steps": 100})()
    return parse_command(GRPOTrainConfig, bench.grpo_argv(args, 1) + list(extra))


def test_verdict_rule():
    assert bench.verdict([0.30, 0.32, 0.31], [0.31, 0.29, 0.33], True) == "within noise"
    # difference 0.1, pooled sd 0.01: beyond 2 sd
    assert bench.verdict([0.40, 0.41, 0.42], [0.30, 0.31, 0.32], True) == "better"
    assert bench.verdict([0.40, 0.41, 0.42], [0.30, 0.31, 0.32], False) == "worse"
    assert bench.verdict([0.40, 0.41, 0.42], [0.30, 0.31, 0.32], None) == "higher"
    assert bench.verdict([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], True) == "within noise"  # no spread, no difference
    assert bench.verdict([0.1, 0.1], [0.0, 0.0], True) == "better"  # no spread, any difference counts
    assert bench.verdict([0.3], [0.2, 0.3], True) == "n/a"
    # exactly 2 pooled sd apart is still within noise: sd 0.1 both sides, difference 0.2
    assert bench.verdict([0.5, 0.7], [0.3, 0.5], True) == "within noise"
    assert bench.pooled_sd([0.5, 0.7], [0.3, 0.5]) == pytest.approx(0.1414213, rel=1e-5)


def test_window_means():
    assert bench.window_means([1, 2, 3, 4, 5, 6, 7, 8], 4) == [1.5, 3.5, 5.5, 7.5]
    assert bench.window_means([1, 2, 3], 4) == [1, 2, 3]  # fewer steps than windows
    assert len(bench.window_means(list(range(10)), 4)) == 4


def test_demo_settings_match_and_map_to_trl_fields():
    cfg = demo_cfg()
    assert bench.unmatched(cfg) == []
    kw = bench.trl_kwargs(cfg, Path("out"))
    assert (kw["num_generations"], kw["per_device_train_batch_size"]) == (cfg.group_size, cfg.group_size * cfg.prompts_per_step)
    assert kw["max_completion_length"] == cfg.sampling.max_new_tokens and kw["temperature"] == cfg.sampling.temperature
    assert (kw["learning_rate"], kw["beta"], kw["loss_type"], kw["scale_rewards"]) == (cfg.lr, cfg.beta, cfg.loss_type,
                                                                                      cfg.scale_rewards)
    assert (kw["adam_beta1"], kw["adam_beta2"], kw["max_grad_norm"]) == (*cfg.adam_betas, cfg.max_grad_norm)
    assert kw["mask_truncated_completions"] is cfg.mask_truncated_completions
    assert kw["epsilon_high"] == cfg.epsilon  # ours None = epsilon; TRL's None means the same, given explicitly
    assert kw["bf16"] is False and kw["use_bias_correction_kl"] is False and kw["shuffle_dataset"] is False
    assert kw["max_steps"] == 100 and kw["seed"] == 1


@pytest.mark.parametrize("override, word", [("dtype=bfloat16", "dtype"), ("num_iterations=2", "num_iterations"),
                                            ("zero_std_weight=0.5", "zero_std_weight"),
                                            ("entropy_coef=0.01", "entropy_coef"), ("ref_model=other", "ref_model")])
def test_unmatchable_settings_are_refused(override, word):
    bad = bench.unmatched(demo_cfg(override))
    assert len(bad) == 1 and bad[0].startswith(word)


def test_dispatching_reward_scores_each_row_by_its_task():
    from tinyreason.chess.data import split_text
    from tinyreason.chess.rewards import score
    from tinyreason.chess.tasks import TASKS
    from tinyreason.lm.tasks import reward_weights

    pol = split_text(FIXTURES.joinpath("rook_val_400.txt").read_text().splitlines()[0])
    env = json.loads(FIXTURES.joinpath("env_prompts_expected.json").read_text())[0]
    weights = reward_weights(TASKS, {"policy": {"policy_legal_moves": 0.5}})
    fn = bench.dispatching_reward(weights, ["\n"])
    env_completion = env["expected_fen"] + "+0.001+0+0"
    got = fn([pol.prompt, env["prompt"], pol.prompt], [pol.completion + "\nP: junk", env_completion, "M: zz"],
             reference=[pol.completion, None, pol.completion])
    want_pol = score("policy", [pol.prompt] * 2, [pol.completion, "M: zz"], [pol.completion] * 2, weights["policy"])[0]
    want_env = score("env", [env["prompt"]], [env_completion], [None], weights["env"])[0]
    assert got == pytest.approx([want_pol[0], want_env[0], want_pol[1]])
    assert got[0] > got[2]
    with pytest.raises(ValueError):
        bench.task_of("Q: what")


def test_mask_positions_gives_left_padded_rows_their_sampling_positions():
    from tinyreason.lm.model import random_model, train_char_tokenizer

    tok = train_char_tokenizer(["P: abc", "A: abcdef"])
    model = random_model(tok, seed=0, n_layer=1, n_embd=16, n_head=2, n_positions=32).eval()
    ids = torch.tensor([[1, 1, 5, 6, 7], [5, 6, 7, 8, 9]])  # (B, L), row 0 left-padded by 2
    mask = (ids != 1).long()  # (B, L)
    with torch.no_grad():
        want = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits
        plain = model(input_ids=ids, attention_mask=mask).logits
        bench.mask_positions(model)
        got = model(input_ids=ids, attention_mask=mask).logits
    assert not torch.allclose(plain[0, 2:], want[0, 2:])  # without the hook the padded row is shifted
    torch.testing.assert_close(got[:, 2:], want[:, 2:])
    torch.testing.assert_close(got[1], plain[1])  # an unpadded row is unchanged


@pytest.mark.slow
def test_trl_accepts_the_mapped_config(tmp_path):
    trl = pytest.importorskip("trl", reason="TRL is an optional extra (pip install 'trl>=0.20')")
    trl.GRPOConfig(**bench.trl_kwargs(demo_cfg(), tmp_path))
