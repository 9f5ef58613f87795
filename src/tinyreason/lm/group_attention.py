"""The completion tokens' attention in a grouped GRPO forward (`grouped.grouped_logprobs`), in C.

Completion token i of row n attends to its group's real prompt keys and to its own row's
completion keys 0..i. The PyTorch route repeats the prompt's keys and values for each of the
G rows, concatenates them with the row's own, builds a (N, 1, T, P + T) mask and runs SDPA's
flash kernel, which computes every masked score; its backward sums the repeats' gradients back.
`group_attention.c` reads q, k and v in place from the c_attn output (tokens, 3C), computes
only the scores a block of queries can see, and writes the gradients of q, k and v (the
prompt's summed over its group) into one (tokens, 3C) gradient. Same math as SDPA's flash
attention forward and backward (log-sum-exp kept for the backward), up to float rounding
(tested). fp32 on CPU (under bf16 autocast `grouped` widens the bf16 q/k/v for it: scores
and softmax in fp32, as SDPA's flash kernel keeps them), head size 64 (every GPT-2's),
left-padded prompts, where the C kernels are compiled; elsewhere `grouped` keeps SDPA.
"""

from __future__ import annotations

import torch

from tinyreason.lm import decode_kernel

ENABLED = True  # tests switch it off to compare with the SDPA route
HEAD_SIZE = 64  # the kernel's head size


def applies(x: torch.Tensor, n_head: int) -> bool:
    """True when the kernel serves attention over x's (tokens, C) activations (the fp32 residual
    stream, bf16 autocast or not): on CPU, head size 64, at most two torch threads, `ENABLED`
    and the C library compiled. The kernel runs on one thread; against SDPA's route on two
    (Zen 4, per layer, GRPO shapes) it was still 1.2-1.65x (small model) and 0.97-1.2x (GPT-2
    124M) as fast, on one 1.5-2.5x."""
    return (ENABLED and x.device.type == "cpu" and x.dtype == torch.float32
            and x.shape[-1] == HEAD_SIZE * n_head and torch.get_num_threads() <= 2 and decode_kernel._loaded())


def completion_attention(qkv: torch.Tensor, starts: torch.Tensor, n_prompt_rows: int, p: int, g: int, t: int,
                         n_head: int, scale: float,
                         kept: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """The completion rows' attention output (N*T, C) for qkv (B*P + N*T, 3C): B*P prompt-token
    rows (prompt b's slot j at b * P + j), then N = B*G completion rows of T tokens; starts (B,)
    from `shared_prefix.prompt_starts`; scale multiplies the scores. kept: the rollout's own
    attention outputs (N, >= T, C) and log-sum-exps (N, >= T, H) for these rows
    (`replay.Activations`), returned instead of computed; the backward is the same either way."""
    if not decode_kernel._loaded():
        raise RuntimeError("group_attention needs the C kernels, which are not compiled here (see `applies`)")
    if not scale > 0:
        raise ValueError(f"attention scale {scale}: the kernel takes a positive one")
    kept_out, kept_lse = kept if kept is not None else (None, None)
    return _GroupAttention.apply(qkv, starts, kept_out, kept_lse, n_prompt_rows, p, g, t, n_head, scale)


class _GroupAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, qkv, starts, kept_out, kept_lse, bp: int, p: int, g: int, t: int, n_head: int, scale: float):
        qkv = qkv.contiguous()  # (B*P + N*T, 3C)
        c = qkv.shape[1] // 3
        n = (qkv.shape[0] - bp) // t
        if n * t != qkv.shape[0] - bp or bp != starts.numel() * p or n != starts.numel() * g:
            raise ValueError(f"qkv {tuple(qkv.shape)} does not hold {starts.numel()} prompts of {p} and their "
                             f"{g} completions of {t} tokens")
        if kept_out is None:
            out, lse = qkv.new_empty(n, t, c), qkv.new_empty(n, t, n_head)  # (N, T, C), (N, T, H)
            if decode_kernel._LIB.group_attention_fwd(qkv.data_ptr(), n, t, n_head, bp, p, g, starts.data_ptr(), scale,
                                                      out.data_ptr(), t * c, lse.data_ptr(), t * n_head):
                raise MemoryError("group_attention_fwd: out of memory")
            y = out.view(n * t, c)
        else:
            out, lse = kept_out[:, :t], kept_lse[:, :t]  # (N, T, C), (N, T, H) views, rows Tk apart
            if out.stride(1) != c or out.stride(2) != 1 or lse.stride(1) != n_head or lse.stride(2) != 1:
                raise ValueError("kept attention outputs are not (N, Tk, C) and (N, Tk, H) row-major")
            y = out.reshape(n * t, c).clone()
        ctx.save_for_backward(qkv, starts, out, lse)
        ctx.dims = (bp, p, g, t, n_head, scale)
        return y  # (N*T, C)

    @staticmethod
    def backward(ctx, gy):  # gy (N*T, C)
        qkv, starts, out, lse = ctx.saved_tensors
        bp, p, g, t, n_head, scale = ctx.dims
        n = (qkv.shape[0] - bp) // t
        gy = gy.contiguous()
        dqkv = torch.zeros_like(qkv)  # (B*P + N*T, 3C); the prompt rows' q gradient stays 0 here
        if decode_kernel._LIB.group_attention_bwd(qkv.data_ptr(), n, t, n_head, bp, p, g, starts.data_ptr(), scale,
                                                  out.data_ptr(), out.stride(0), lse.data_ptr(), lse.stride(0),
                                                  gy.data_ptr(), dqkv.data_ptr()):
            raise MemoryError("group_attention_bwd: out of memory")
        return dqkv, None, None, None, None, None, None, None, None, None
