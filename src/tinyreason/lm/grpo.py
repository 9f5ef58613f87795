"""GRPO math as pure tensor functions (advantages, clipped surrogate, KL, loss aggregation).

Formulas follow TRL's `GRPOTrainer` (`_generate_and_score_completions` for advantages,
`_compute_loss` for the loss) so results are comparable:
- advantage = r - mean_group(r), divided by (std + 1e-4) with std from the group
  ("group"), the whole batch ("batch") or not at all ("none"); std is unbiased (torch.std).
- ratio = exp(logp - old_logp); per-token loss = -min(ratio*A, clip(ratio, 1-eps, 1+eps_high)*A)
  + beta * KL, KL by the k3 estimator exp(ref-logp) - (ref-logp) - 1.
- "grpo": mean over each sequence's tokens, then over sequences; "dr_grpo": sum over
  all tokens / (num sequences * max_completion_length); "dapo": sum / number of tokens.
Additions not in TRL: an entropy bonus (aggregated like the loss) and fractional token
weights, used to down-weight (0 < w < 1) or skip (w = 0) groups whose rewards all tie
(their advantage is 0, so only KL and entropy terms remain). A token with weight w adds w
times its term; normalisers count tokens with w > 0 and, as TRL's, all sequences, so with
0/1 weights every loss type is exactly TRL's (truncated completions masked to 0 included).
Normalisers can be passed in (`num_seqs`, `num_tokens`) so that micro-batches summed
together give exactly the loss of the whole batch.
"""

from __future__ import annotations

from typing import Literal

import torch

from tinyreason.lm.token_logprobs import token_logprobs

LossType = Literal["grpo", "dr_grpo", "dapo"]
Scale = Literal["group", "batch", "none"]


def group_advantages(
    rewards: torch.Tensor, group_size: int, scale: Scale = "group", eps: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages (N,) and a zero-std flag per group (N // G,) for rewards (N,), groups adjacent."""
    grouped = rewards.view(-1, group_size)  # (B, G)
    mean = grouped.mean(dim=1).repeat_interleave(group_size)  # (N,)
    std_group = grouped.std(dim=1)  # (B,)
    zero_std = torch.isclose(std_group, torch.zeros_like(std_group))  # (B,)
    adv = rewards - mean  # (N,)
    if scale == "group":
        adv = adv / (std_group.repeat_interleave(group_size) + eps)
    elif scale == "batch":
        adv = adv / (rewards.std() + eps)
    elif scale != "none":
        raise ValueError(f"unknown advantage scale {scale!r}")
    return adv, zero_std


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token KL(pi || ref) estimate, k3 (Schulman): exp(ref-logp) - (ref-logp) - 1 >= 0."""
    d = ref_logp - logp  # (N, T)
    return torch.exp(d) - d - 1


def clipped_surrogate(
    logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, epsilon: float, epsilon_high: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token PPO loss -min(r*A, clip(r)*A) (N, T) and the ratio r (N, T)."""
    ratio = torch.exp(logp - old_logp)  # (N, T)
    clipped = torch.clamp(ratio, 1 - epsilon, 1 + epsilon_high)  # (N, T)
    a = advantages[:, None]  # (N, 1)
    return -torch.min(ratio * a, clipped * a), ratio


def aggregate(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    loss_type: LossType,
    max_completion_length: int,
    num_seqs: float | None = None,
    num_tokens: float | None = None,
) -> torch.Tensor:
    """Reduce (N, T) per-token values with weights `mask` (N, T) to a scalar (see module doc).
    `num_tokens` must count tokens with weight > 0."""
    present = (mask > 0).to(per_token.dtype)  # (N, T) tokens that count in normalisers
    mask = mask.to(per_token.dtype)
    if loss_type == "grpo":
        per_seq = (per_token * mask).sum(-1) / present.sum(-1).clamp(min=1.0)  # (N,)
        return per_seq.sum() / (num_seqs if num_seqs is not None else per_token.shape[0])
    if loss_type == "dr_grpo":
        n = num_seqs if num_seqs is not None else per_token.shape[0]
        return (per_token * mask).sum() / (n * max_completion_length)
    if loss_type == "dapo":
        total = num_tokens if num_tokens is not None else present.sum().clamp(min=1.0)
        return (per_token * mask).sum() / total
    raise ValueError(f"unknown loss type {loss_type!r}")


def grpo_loss(
    logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    old_logp: torch.Tensor | None = None,
    ref_logp: torch.Tensor | None = None,
    beta: float = 0.0,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    loss_type: LossType = "dapo",
    max_completion_length: int | None = None,
    entropy: torch.Tensor | None = None,
    entropy_coef: float = 0.0,
    num_seqs: float | None = None,
    num_tokens: float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Scalar GRPO loss and detached statistics (sums over masked tokens, for logging).

    logp/old_logp/ref_logp/entropy: (N, T); advantages: (N,); mask: (N, T) float weights
    (0/1, or fractional for down-weighted groups). `old_logp` None means the policy that
    sampled is the current one (num_iterations == 1): ratio 1, as TRL's `logp.detach()`.
    """
    eps_high = epsilon if epsilon_high is None else epsilon_high
    max_len = max_completion_length or logp.shape[1]
    old = logp.detach() if old_logp is None else old_logp
    per_token, ratio = clipped_surrogate(logp, old, advantages, epsilon, eps_high)  # (N, T)
    kl = None
    if beta != 0.0:
        if ref_logp is None:
            raise ValueError("beta != 0 needs reference log-probs")
        kl = k3_kl(logp, ref_logp)  # (N, T)
        per_token = per_token + beta * kl
    loss = aggregate(per_token, mask, loss_type, max_len, num_seqs, num_tokens)
    if entropy is not None and entropy_coef != 0.0:
        loss = loss - entropy_coef * aggregate(entropy, mask, loss_type, max_len, num_seqs, num_tokens)
    with torch.no_grad():
        m = (mask > 0).to(logp.dtype)
        a = advantages[:, None]
        low = ((ratio < 1 - epsilon) & (a < 0)).to(logp.dtype)
        high = ((ratio > 1 + eps_high) & (a > 0)).to(logp.dtype)
        stats = {
            "tokens": m.sum(),
            "clip_low": (low * m).sum(),
            "clip_high": (high * m).sum(),
            "kl": (kl.detach() * m).sum() if kl is not None else torch.zeros((), dtype=logp.dtype),
            "entropy": (entropy.detach() * m).sum() if entropy is not None else torch.zeros((), dtype=logp.dtype),
        }
    return loss, stats


def token_weights(
    completion_mask: torch.Tensor,
    truncated: torch.Tensor,
    zero_std: torch.Tensor,
    group_size: int,
    mask_truncated: bool = True,
    zero_std_weight: float = 1.0,
) -> torch.Tensor:
    """Per-token loss weights (N, T): completion mask, 0 for truncated completions when asked
    (as TRL's mask_truncated_completions), `zero_std_weight` for rows of tied groups
    (1 keeps them as TRL does, 0 skips them)."""
    w = completion_mask.float()  # (N, T)
    if mask_truncated:
        w = w * (~truncated).float()[:, None]
    row_w = torch.where(zero_std.repeat_interleave(group_size), zero_std_weight, 1.0)  # (N,)
    return w * row_w[:, None].to(w.dtype)


def logprobs_from_logits(
    logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0,
    with_entropy: bool = False, entropy_grad: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs (N, T) of `targets` (N, T) under logits (N, T, V) divided by `temperature`
    (as TRL), and entropies (N, T) when asked (differentiable only with `entropy_grad`).
    Computed in cache-sized row chunks (`tinyreason.lm.token_logprobs`)."""
    return token_logprobs(logits, targets, temperature, with_entropy, entropy_grad)


def completion_logprobs(
    model, input_ids: torch.Tensor, attention_mask: torch.Tensor, n_completion: int,
    temperature: float = 1.0, with_entropy: bool = False, entropy_grad: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs (N, T) of the last `n_completion` tokens of `input_ids` (N, P+T) by a plain
    forward of every row (TRL's way; the trainer uses `grouped.grouped_logprobs`), and
    their entropies (N, T) when asked.

    Position ids count real tokens, so left-padded prompts get the positions they had
    when sampled (TRL passes no position ids; exact for unpadded prompts only)."""
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # (N, P+T)
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                logits_to_keep=n_completion + 1, use_cache=False)
    return logprobs_from_logits(out.logits[:, :-1], input_ids[:, -n_completion:], temperature,
                                with_entropy, entropy_grad)  # logits (N, T, V)
