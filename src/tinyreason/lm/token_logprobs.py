"""Log-probs and entropies of chosen tokens from (M, V) logits, computed in row chunks.

The plain formula (`logits.float() / T`, `logsumexp`, `gather`, softmax for the entropy)
makes autograd keep and re-read several full (M, V) float32 tensors: at GPT-2's 50257-entry
vocabulary and a 672-token GRPO batch each is 135 MB, so those passes go to memory and
cost about as much as the LM head's GEMMs. Here forward and backward walk the logits in
chunks of rows small enough to stay in cache, save only the logits as they came (bf16
under autocast) and one float per row, and write the gradient of the logits in their own
dtype, ready for the LM head's backward. The math is the plain formula's (tested against
it); float32 inside.
"""

from __future__ import annotations

import torch

CHUNK_ELEMENTS = 1 << 19  # ~2 MB of float32 per chunk: stays in a CPU core's cache
CHUNK_ELEMENTS_GPU = 1 << 26  # GPUs stream memory fast; fewer, larger kernels there


def _rows(logits: torch.Tensor) -> int:
    per = CHUNK_ELEMENTS if logits.device.type == "cpu" else CHUNK_ELEMENTS_GPU
    return max(1, per // logits.shape[-1])


def _scaled(logits: torch.Tensor, inv_t: float) -> torch.Tensor:
    z = logits.float()  # (c, V) a copy when logits are bf16
    if inv_t != 1.0:
        z = z * inv_t if z.data_ptr() == logits.data_ptr() else z.mul_(inv_t)
    return z


class _TokenLogprobs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, targets, inv_t: float, with_entropy: bool, entropy_grad: bool):
        m = logits.shape[0]  # logits (M, V), targets (M,)
        rows = _rows(logits)
        lse = logits.new_empty(m, dtype=torch.float32)  # (M,)
        logp = torch.empty_like(lse)  # (M,)
        ent = torch.empty_like(lse) if with_entropy else lse.new_empty(0)  # (M,)
        for s in range(0, m, rows):
            e = min(m, s + rows)
            z = _scaled(logits[s:e], inv_t)  # (c, V)
            mx = z.amax(-1, keepdim=True)  # (c, 1)
            p = (z - mx).exp_()  # (c, V) unnormalised softmax
            tot = p.sum(-1)  # (c,)
            lse[s:e] = mx[:, 0] + tot.log()
            logp[s:e] = z.gather(-1, targets[s:e, None])[:, 0] - lse[s:e]
            if with_entropy:  # H = lse - E_p[z]
                ent[s:e] = lse[s:e] - (p * z).sum(-1) / tot
        ctx.inv_t, ctx.entropy_grad = inv_t, with_entropy and entropy_grad
        ctx.save_for_backward(logits, targets, lse, ent if ctx.entropy_grad else None)
        if not ctx.entropy_grad:
            ctx.mark_non_differentiable(ent)
        return logp, ent

    @staticmethod
    def backward(ctx, g_logp, g_ent):  # (M,), (M,) or None
        logits, targets, lse, ent = ctx.saved_tensors
        m, rows = logits.shape[0], _rows(logits)
        grad = torch.empty_like(logits)  # (M, V) in the logits' dtype
        if g_logp is None:
            g_logp = lse.new_zeros(m)
        use_ent = ctx.entropy_grad and g_ent is not None
        for s in range(0, m, rows):
            e = min(m, s + rows)
            z = _scaled(logits[s:e], ctx.inv_t)  # (c, V)
            p = (z - lse[s:e, None]).exp_()  # (c, V) softmax
            if use_ent:  # dH/dz = -p (z - E_p[z]);  d logp/dz = onehot - p
                coef = (z - (lse[s:e] - ent[s:e])[:, None]).mul_(-g_ent[s:e, None]).sub_(g_logp[s:e, None])
                gz = p.mul_(coef)  # (c, V)
            else:
                gz = p.mul_(-g_logp[s:e, None])  # (c, V)
            gz.scatter_add_(-1, targets[s:e, None], g_logp[s:e, None])
            if ctx.inv_t != 1.0:
                gz.mul_(ctx.inv_t)
            grad[s:e] = gz
        return grad, None, None, None, None


def token_logprobs(
    logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0,
    with_entropy: bool = False, entropy_grad: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs (...,) of `targets` (...,) under softmax(logits / temperature), logits (..., V),
    and the entropies (...,) of those distributions when asked (differentiable only with
    `entropy_grad`). Temperature <= 0 means none (greedy decoding's log-probs). float32 out."""
    v = logits.shape[-1]
    inv_t = 1.0 / temperature if temperature > 0 else 1.0
    logp, ent = _TokenLogprobs.apply(logits.reshape(-1, v), targets.reshape(-1), inv_t, with_entropy, entropy_grad)
    return logp.view(targets.shape), ent.view(targets.shape) if with_entropy else None
