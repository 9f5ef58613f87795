"""The GRPO/SFT update's own parts against the plain PyTorch route, one run, same tensors (CPU).

- token log-probs + entropy, forward+backward and forward only: the plain formula
  (`logits.float() / T`, `log_softmax`, `gather`, softmax entropy) vs `tinyreason.lm.token_logprobs`
  (row chunks); 124M shape: 672 completion tokens x 50257, bf16 logits as autocast gives them.
- tanh-GELU, fp32, forward and backward: PyTorch's kernels (`F.gelu`, `gelu_backward`) vs the C
  kernel of `tinyreason.lm.gpt2.tanh_gelu` (`gelu.c`), at the small model's GRPO update size
  (1528 tokens x 1024).
- AdamW step on the 124M parameters: torch's default (for-each loop on CPU) vs `fused=True`.

    .venv/bin/python benchmarks/update_kernels.py [--threads 1] [--reps 3]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from linear_kernels import setup, timed  # same folder: shared arguments; one warm-up call, then the mean of `reps`


def plain_logprobs(logits, targets, temperature):
    z = logits.float() / temperature
    logsm = torch.log_softmax(z, -1)
    return logsm.gather(-1, targets[:, None])[:, 0], -(logsm.exp() * logsm).sum(-1).detach()


def report(name: str, plain: float, ours: float) -> None:
    print(f"{name:52s} plain {plain * 1e3:8.1f} ms  ours {ours * 1e3:8.1f} ms  speed-up {plain / ours:5.2f}x", flush=True)


def main() -> None:
    args = setup()
    from tinyreason.lm.token_logprobs import token_logprobs

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    logits = (2 * torch.randn(672, 50257)).bfloat16().requires_grad_()
    targets = torch.randint(0, 50257, (672,))

    def fb(fn):
        def run():
            lp, _ = fn(logits, targets, 1.0)
            lp.sum().backward()
            logits.grad = None
        return run

    ours_fn = lambda x, t, temp: token_logprobs(x, t, temp, with_entropy=True)  # noqa: E731
    report("token log-probs+entropy fwd+bwd, 672 x 50257 bf16", timed(fb(plain_logprobs), args.reps),
           timed(fb(ours_fn), args.reps))
    with torch.no_grad():
        report("token log-probs fwd only (reference pass)", timed(lambda: plain_logprobs(logits, targets, 1.0), args.reps),
               timed(lambda: token_logprobs(logits, targets, 1.0), args.reps))

    from tinyreason import kernels

    x, g = 3 * torch.randn(1528, 1024), torch.randn(1528, 1024)
    if kernels.choose.gelu(x):
        report("tanh-GELU forward, fp32, 1528 x 1024", timed(lambda: F.gelu(x, approximate="tanh"), args.reps * 10),
               timed(lambda: kernels.gelu_tanh(x), args.reps * 10))
        report("tanh-GELU backward, fp32, 1528 x 1024",
               timed(lambda: torch.ops.aten.gelu_backward(g, x, approximate="tanh"), args.reps * 10),
               timed(lambda: kernels.gelu_tanh_backward(g, x), args.reps * 10))
    else:
        print("tanh-GELU: skipped, the C kernels did not compile here (no C compiler?)")

    from tinyreason.lm.model import random_model

    params = list(random_model(None, seed=0).parameters())  # GPT-2 124M config
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    loop, fused = torch.optim.AdamW(params, lr=1e-6), torch.optim.AdamW(params, lr=1e-6, fused=True)
    report("AdamW step, 124M parameters (for-each vs fused)", timed(loop.step, args.reps), timed(fused.step, args.reps))


if __name__ == "__main__":
    main()
