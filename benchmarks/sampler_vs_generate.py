"""Rollout throughput: tinyreason.lm.sampler.sample vs transformers `model.generate`.

Same model (random weights), prompts, group size and sampling settings (temperature,
top-k, top-p, fixed completion length: no stop token so both produce the same number of
tokens), in one run. `generate` is timed without asking for scores (the sampler also
returns log-probs, so this favours generate). Prints tokens/s and the ratio.

    .venv/bin/python benchmarks/sampler_vs_generate.py [--models small,124m] [--dtypes float32,bfloat16]
"""

from __future__ import annotations

import argparse
import time

import torch

from tinyreason.lm.model import random_model
from tinyreason.lm.sampler import sample

CONFIGS = {
    "small": dict(vocab_size=64, n_layer=4, n_embd=256, n_head=4, n_positions=512),  # ~3.3M, char vocab
    "124m": dict(vocab_size=50257, n_layer=12, n_embd=768, n_head=12, n_positions=1024),
}


def prompts_for(vocab: int, n: int, seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lengths = [48, 56, 60, 64][:n] + [60] * max(0, n - 4)  # RookWorld-like, different lengths (left padding)
    return [torch.randint(3, vocab, (L,), generator=g).tolist() for L in lengths]


def time_generate(model, prompts, g, t, temp, top_k, top_p, dtype) -> float:
    p = max(len(x) for x in prompts)
    ids = torch.tensor([[0] * (p - len(x)) + x for x in prompts])
    mask = torch.tensor([[0] * (p - len(x)) + [1] * len(x) for x in prompts])
    ctx = torch.autocast("cpu", dtype=dtype) if dtype != torch.float32 else torch.inference_mode()
    t0 = time.perf_counter()
    with torch.inference_mode(), ctx:
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
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    temp, top_k, top_p = 1.0, 50, 0.95
    print(f"torch threads {torch.get_num_threads()}; {a.prompts} prompts x G={a.group}, {a.new_tokens} new tokens, "
          f"T={temp} top_k={top_k} top_p={top_p}")
    for name in a.models.split(","):
        model = random_model(None, seed=0, **CONFIGS[name]).eval()
        n = sum(p.numel() for p in model.parameters())
        prompts = prompts_for(CONFIGS[name]["vocab_size"], a.prompts)
        tokens = a.prompts * a.group * a.new_tokens
        for dname in a.dtypes.split(","):
            dtype = torch.bfloat16 if dname == "bfloat16" else torch.float32
            time_sampler(model, prompts[:1], 2, 4, temp, top_k, top_p, dtype)  # warm-up
            time_generate(model, prompts[:1], 2, 4, temp, top_k, top_p, dtype)
            ours = min(time_sampler(model, prompts, a.group, a.new_tokens, temp, top_k, top_p, dtype) for _ in range(a.repeats))
            gen = min(time_generate(model, prompts, a.group, a.new_tokens, temp, top_k, top_p, dtype) for _ in range(a.repeats))
            print(f"{name:>5} ({n / 1e6:.1f}M) {dname:>8}: sampler {tokens / ours:8.1f} tok/s  generate {tokens / gen:8.1f} tok/s"
                  f"  ratio {gen / ours:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
