"""Training MFU of the GPT-2 124M config on this machine, fp32 and bf16 autocast.

One `chess sft` step (its loss, `causal.lm_loss_sum`, its fused AdamW and its malloc setting) on random tokens
(batch x seq_len, dropout 0.1 as GPT-2's config), 6·N·tokens FLOPs (N = `count_params`, position
table excluded) against the matmul peak measured by tinyreason.lm.mfu for the same dtype. Prints
tokens/s, achieved TFLOP/s, peak and MFU, for our forward and, in the same run, for the same loss
through Hugging Face's GPT-2 forward (`--sides`), and the ratio of their step times.

    .venv/bin/python benchmarks/train_mfu.py [--batch 4] [--seq-len 256] [--steps 3] [--threads N] [--sides ours,hf]
"""

from __future__ import annotations

import argparse
import time

import torch

from tinyreason import kernels
from tinyreason.device import autocast
from tinyreason.lm import mfu
from tinyreason.lm.optim import adamw
from tinyreason.lm.causal import lm_loss_sum
from tinyreason.lm.model import count_params, random_model
from tinyreason.lm.token_logprobs import token_logprobs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--sides", default="ours,hf", help="our forward (`causal.lm_loss_sum`) and/or HF's")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device("cpu")
    kernels.keep_freed_memory()  # as `chess sft` on CPU
    model = random_model(None, seed=0, n_positions=1024).train()
    n = count_params(model)
    opt = adamw(model.parameters(), lr=1e-5)
    ids = torch.randint(0, model.config.vocab_size, (a.batch, a.seq_len))
    attn, mask = torch.ones_like(ids), torch.ones(ids.shape)
    tokens = ids.numel()
    print(f"GPT-2 124M config: N={n / 1e6:.1f}M (matmul params), batch {a.batch} x {a.seq_len}, "
          f"torch threads {torch.get_num_threads()}")
    flops = 6 * n * tokens

    def step_time(loss_fn, dtype) -> float:
        times = []
        for i in range(a.steps + 1):
            t0 = time.perf_counter()
            with autocast(device, dtype):
                loss_sum, n_targets = loss_fn(model, ids, attn, mask)
            (loss_sum / n_targets).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if i:  # step 0 is warm-up
                times.append(time.perf_counter() - t0)
        return sum(times) / len(times)

    for dname in a.dtypes.split(","):
        dtype = torch.bfloat16 if dname == "bfloat16" else torch.float32
        peak, src = mfu.peak_flops(device, dtype)
        dt = {}
        for side, fn in (("ours", lm_loss_sum), ("hf", hf_loss_sum)):
            if side in a.sides.split(","):
                dt[side] = step_time(fn, dtype)
                print(f"{dname:>8} {side:>4}: {tokens / dt[side]:7.1f} tok/s  {flops / dt[side] / 1e12:6.3f} TFLOP/s  peak "
                      f"{peak / 1e12:6.3f} TFLOP/s ({src})  MFU {100 * mfu.mfu(flops, dt[side], peak):5.1f}%", flush=True)
        if len(dt) == 2:
            print(f"{dname:>8}: step {dt['ours']:.2f} s vs {dt['hf']:.2f} s on HF's forward, speed-up {dt['hf'] / dt['ours']:.2f}x")


def hf_loss_sum(model, ids, attn, loss_mask):
    """The same loss through Hugging Face's GPT-2 forward (what `chess sft` ran before `causal`)."""
    logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1]  # (B, L-1, V)
    targets, weights = ids[:, 1:], loss_mask[:, 1:] * attn[:, 1:]  # (B, L-1)
    return (-token_logprobs(logits, targets)[0] * weights).sum(), weights.sum()


if __name__ == "__main__":
    main()
