"""Greedy evaluation of an LM on held-out examples (used by GRPO's periodic eval).

Generation is the batched sampler at temperature 0, stopping at a newline or EOS;
scoring is each task's own `metrics` (`tinyreason.lm.tasks.Task`; chess: policy legal-move
rate and best-move accuracy against the reference's top eval, env exact FEN against the arbiter).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tinyreason.lm.sampler import decode_completions, sample, stop_token_ids
from tinyreason.lm.tasks import ExampleLike, Task

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


def evaluate_samples(tasks: dict[str, Task], examples: Sequence[ExampleLike],
                     completions: Sequence[str]) -> dict[str, float | int | None]:
    """Held-out metrics of generated completions: each task's `metrics` on its own examples
    (called for every task, also one without held-out examples), merged in task order."""
    out: dict[str, float | int | None] = {}
    for name, task in tasks.items():
        idx = [i for i, e in enumerate(examples) if e.task == name]
        out.update(task.metrics([examples[i] for i in idx], [completions[i] for i in idx]))
    return out


def evaluate_heldout(model, tokenizer, tasks: dict[str, Task], examples: Sequence[ExampleLike],
                     max_new_tokens: int = 128, batch_size: int = 32,
                     dtype: torch.dtype = torch.float32) -> dict[str, float | int | None]:
    completions = greedy_completions(model, tokenizer, [e.prompt for e in examples], max_new_tokens, batch_size, dtype)
    return evaluate_samples(tasks, examples, completions)
