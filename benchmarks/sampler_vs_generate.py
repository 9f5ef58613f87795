"""Rollout throughput: tinyreason.lm.sampler.sample vs transformers `model.generate`.

Same model (random weights), prompts, group size and sampling settings (temperature,
top-k, top-p, fixed completion length: no stop token so both produce the same number of
tokens), in one run. `generate` is timed without asking for scores (the sampler also
returns log-probs, so this favours generate) and without the sampler's early dropping of
finished rows (no stop token), so the figure is a lower bound for real rollouts.
Equal dtype on both sides: for bfloat16, `generate` runs a bf16 copy of the model and the
sampler its bf16 weights (never our bf16 against their fp32).

Shapes follow RookWorld GRPO: G=8 completions for each of 4 policy prompts. The small
config is character-level, so its prompts are the fixture's policy prompts (92 chars) and
completions the policy completion length (84 with the newline); the 124M config uses GPT-2
BPE lengths (prompts 48-64 tokens, 64 new tokens).

    .venv/bin/python benchmarks/sampler_vs_generate.py [--models small,124m] [--dtypes float32,bfloat16] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from tinyreason.lm.model import random_model
from tinyreason.lm.sampler import sample

CONFIGS = {
    "small": dict(vocab_size=64, n_layer=4, n_embd=256, n_head=4, n_positions=512),  # ~3.3M, char vocab
    "124m": dict(vocab_size=50257, n_layer=12, n_embd=768, n_head=12, n_positions=1024),
}
# (prompt lengths, new tokens) per config, see the module docstring
SHAPES = {"small": ([92, 92, 92, 92], 84), "124m": ([48, 56, 60, 64], 64)}


def prompts_for(vocab: int, lengths: list[int], n: int, seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lengths = (lengths * n)[:n]
    return [torch.randint(3, vocab, (L,), generator=g).tolist() for L in lengths]


def time_generate(model, prompts, g, t, temp, top_k, top_p) -> float:
    """`model` is already in the compared dtype."""
    p = max(len(x) for x in prompts)
    ids = torch.tensor([[0] * (p - len(x)) + x for x in prompts])
    mask = torch.tensor([[0] * (p - len(x)) + [1] * len(x) for x in prompts])
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, num_return_sequences=g,
                             max_new_tokens=t, min_new_tokens=t, temperature=temp, top_k=top_k, top_p=top_p,
                             pad_token_id=0, eos_token_id=None)
    dt = time.perf_counter() - t0
    assert out.shape == (len(prompts) * g, p + t)
    return dt


def time_sampler(model, prompts, g, t, temp, top_k, top_p, dtype) -> float:
    t0 = time.perf_counter()
    r = sample(model, prompts, g, t, temp, top_k, top_p, stop_ids=[], pad_id=0, dtype=dtype)
    dt = time.perf_counter() - t0
    assert int(r.lengths.sum()) == len(prompts) * g * t
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="small,124m")
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=0, help="0 = per config (see SHAPES)")
    ap.add_argument("--repeats", type=int, default=2, help="best of this many runs per side, interleaved")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    temp, top_k, top_p = 1.0, 50, 0.95
    print(f"torch threads {torch.get_num_threads()}; {a.prompts} prompts x G={a.group}, "
          f"T={temp} top_k={top_k} top_p={top_p}, best of {a.repeats} (interleaved)")
    for name in a.models.split(","):
        model = random_model(None, seed=0, **CONFIGS[name]).eval()
        n = sum(p.numel() for p in model.parameters())
        lengths, new_tokens = SHAPES[name]
        new_tokens = a.new_tokens or new_tokens
        prompts = prompts_for(CONFIGS[name]["vocab_size"], lengths, a.prompts)
        tokens = a.prompts * a.group * new_tokens
        for dname in a.dtypes.split(","):
            dtype = torch.bfloat16 if dname == "bfloat16" else torch.float32
            theirs = model if dtype == torch.float32 else copy.deepcopy(model).to(dtype)
            time_sampler(model, prompts[:1], 2, 4, temp, top_k, top_p, dtype)  # warm-up
            time_generate(theirs, prompts[:1], 2, 4, temp, top_k, top_p)
            ours, gen = [], []
            for _ in range(a.repeats):  # interleaved so both sides see the same machine load
                ours.append(time_sampler(model, prompts, a.group, new_tokens, temp, top_k, top_p, dtype))
                gen.append(time_generate(theirs, prompts, a.group, new_tokens, temp, top_k, top_p))
            print(f"{name:>5} ({n / 1e6:.1f}M) {dname:>8} prompt {min(lengths)}-{max(lengths)} +{new_tokens}: "
                  f"sampler {tokens / min(ours):8.1f} tok/s  generate {tokens / min(gen):8.1f} tok/s  "
                  f"ratio {min(gen) / min(ours):5.2f}x  (per-run ratios "
                  f"{', '.join(f'{g_ / o:.2f}' for o, g_ in zip(ours, gen))})", flush=True)


if __name__ == "__main__":
    main()
