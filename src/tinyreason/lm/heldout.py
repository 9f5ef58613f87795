"""Greedy evaluation of a RookWorld LM on held-out samples (used by GRPO's periodic eval).

Generation is the batched sampler at temperature 0, stopping at a newline or EOS;
scoring is `tinyreason.chess.eval_metrics` (policy: legal-move rate and best-move
accuracy against the reference's top eval; env: exact FEN against the arbiter).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tinyreason.chess import eval_metrics
from tinyreason.chess.data import Sample
from tinyreason.lm.sampler import decode_completions, sample, stop_token_ids

STOP_STRINGS = ("\n",)


def greedy_completions(
    model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 128, batch_size: int = 32,
    dtype: torch.dtype = torch.float32, stop_strings: Sequence[str] = STOP_STRINGS,
) -> list[str]:
    """Greedy completion of each prompt (batched by similar length)."""
    stops = stop_token_ids(tokenizer, stop_strings)
    encoded = [tokenizer(p).input_ids for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    out: list[str] = [""] * len(prompts)
    was_training = model.training
    model.eval()
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        roll = sample(model, [encoded[i] for i in idx], 1, max_new_tokens, temperature=0.0, stop_ids=stops,
                      pad_id=tokenizer.pad_token_id, dtype=dtype)
        for i, text in zip(idx, decode_completions(tokenizer, roll, stop_strings)):
            out[i] = text
    model.train(was_training)
    return out


def evaluate_samples(samples: Sequence[Sample], completions: Sequence[str]) -> dict[str, float | int | None]:
    """Held-out metrics of generated completions: policy_legal_rate, policy_best_move_accuracy,
    env_fen_exact_rate (None for a task without samples) and the sample counts."""
    pol = [eval_metrics.score_policy(s.prompt, s.completion, c) for s, c in zip(samples, completions) if s.task == "policy"]
    env = [eval_metrics.score_env(s.prompt, c) for s, c in zip(samples, completions) if s.task == "env"]
    ps = eval_metrics.summarize_policy(pol) if pol else {}
    es = eval_metrics.summarize_env(env) if env else {}
    return {
        "n_policy": len(pol),
        "n_env": len(env),
        "policy_legal_rate": ps.get("legal_best_move_rate"),
        "policy_best_move_accuracy": ps.get("best_move_accuracy"),
        "policy_format_rate": ps.get("format_valid_rate"),
        "env_fen_exact_rate": es.get("fen_exact_rate"),
        "env_exact_rate": es.get("exact_rate"),
    }


def evaluate_heldout(model, tokenizer, samples: Sequence[Sample], max_new_tokens: int = 128,
                     batch_size: int = 32, dtype: torch.dtype = torch.float32) -> dict[str, float | int | None]:
    completions = greedy_completions(model, tokenizer, [s.prompt for s in samples], max_new_tokens, batch_size, dtype)
    return evaluate_samples(samples, completions)
