"""Shared-prefix decode attention for the sampler: one copy of each prompt's K/V per group.

Departure from a plain KV cache (and from `model.generate`), not from the math: the G
completions of a prompt share its keys/values instead of each holding a copy; the
attention output is the same up to float rounding (tests/lm/test_sampler.py).
"""

from __future__ import annotations

import torch

from tinyreason import kernels



def prompt_starts(p_mask: torch.Tensor) -> torch.Tensor | None:
    """Each prompt's first real slot (B,) int64 for a (B, P) mask, or None unless every prompt is
    left-padded (its real slots a suffix of the row): the layout the C attention kernels assume."""
    left_padded = not bool((p_mask[:, 1:] < p_mask[:, :-1]).any())
    return (p_mask.shape[1] - p_mask.sum(-1)).to(torch.int64).contiguous() if left_padded else None


class SharedPrefix:
    """Shared-prefix decode attention: one copy of each prompt's K/V serves its G rows.

    Copying a prompt's cache to its G completions makes every decode step read the prompt
    keys/values G times (for the small RookWorld model that read is most of the step's
    memory traffic). Here the G queries of a group attend to the one copy together,
    (G, D) @ (D, P) per group and head, and to their own generated K/V separately; one
    softmax runs over both parts, so the math is unchanged. After finished rows are
    dropped, active rows are scattered into their group's grid (`slot`) for the prompt part.
    """

    def __init__(self, kv, p_mask: torch.Tensor, g: int):
        self.kv = kv  # per layer (K, V) each (B, H, P, D)
        self.bias = torch.zeros(p_mask.shape, dtype=kv[0][0].dtype, device=p_mask.device)
        self.bias = self.bias.masked_fill_(p_mask == 0, float("-inf"))[:, None, None, :]  # (B, 1, 1, P)
        self.g = g
        self.groups = torch.arange(p_mask.shape[0], device=p_mask.device)  # (B',) original ids of the groups held
        self.slot: torch.Tensor | None = None  # (A,) row index in the (B*G) grid; None = all rows, in order
        # for the C kernel (`tinyreason.kernels`): each row's group among those held, each group's first real
        # prompt slot (prompts are left-padded; None if a mask is not, then only `attend` applies)
        self.row_group = torch.div(torch.arange(p_mask.shape[0] * g, device=p_mask.device), g, rounding_mode="floor")
        self.pstart = prompt_starts(p_mask)  # (B',)
        self.kernel = False  # decode attention in the C kernel (`use_kernel`)
        self.kt: list[torch.Tensor] | None = None  # per layer the prompt keys in the kernel's layout

    def keep(self, active: torch.Tensor) -> None:
        """Rows `active` (original row ids, ascending) remain: drop groups with no active row."""
        grp = torch.div(active, self.g, rounding_mode="floor")  # (A,) original group of each row
        alive, local = torch.unique_consecutive(grp, return_inverse=True)  # (B',), (A,)
        if alive.numel() < self.groups.numel():
            held = torch.searchsorted(self.groups, alive)  # (B',) where those groups are held now
            self.kv = [(k[held], v[held]) for k, v in self.kv]
            self.kt = None if self.kt is None else [k[held] for k in self.kt]
            self.bias, self.groups = self.bias[held], alive
            self.pstart = None if self.pstart is None else self.pstart[held]
        slot = local * self.g + active % self.g  # (A,)
        self.slot = None if slot.numel() == alive.numel() * self.g else slot
        self.row_group = local.contiguous()

    def kernel_pays(self, rows: int, t_cap: int, dtype: torch.dtype, device) -> bool:
        """True when the C kernel serves `rows` rows of up to `t_cap` generated tokens in a `dtype`
        cache on `device` (`kernels.choose.decode_attention`: fp32 CPU, the kernel compiled, one
        torch thread or a small batch) and the prompts are left-padded (the kernel's layout)."""
        if self.pstart is None:
            return False
        _, h, p, d = self.kv[0][0].shape
        return kernels.choose.decode_attention(rows * h * (p + t_cap) * d, device, dtype)

    def use_kernel(self) -> None:
        """Decode with `attend_fused` (or `kernels.Step`) from now on: the prompt keys are
        laid out for the kernel, and the caller's generated-token cache must be too (keys
        in `kernels.key_tiles`' layout). Decided once per rollout, as the cache layout is."""
        self.kernel = True
        self.kt = [kernels.key_tiles(k) for k, _ in self.kv]  # (B, H, P16 / 16, D, 16) per layer

    def kernel_kv(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer the prompt's (keys, values) in `kernels.decode_attention`'s layouts."""
        return [(kt, v) for kt, (_, v) in zip(self.kt, self.kv)]

    def attend_fused(self, i: int, qkv, kc, vc, t: int, scale: float) -> torch.Tensor:
        """`attend` and the cache write in one C call (after `use_kernel`): qkv (A, 3C) of this step,
        kc (A, H, T16 / 16, D, 16) / vc (A, H, Tnew, D) the generated keys (in tiles) and values, the new
        ones written at slot t -> (A, C)."""
        return kernels.decode_attention(qkv, kc, vc, t, self.kt[i], self.kv[i][1], self.row_group, self.pstart,
                                              scale)

    def attend(self, i: int, q, ks, vs, scale: float) -> torch.Tensor:
        """q (A, H, 1, D); ks, vs (A, H, t, D) the K/V of the t tokens generated so far -> (A, H, 1, D)."""
        kp, vp = self.kv[i]  # (B', H, P, D)
        b, h, p, d = kp.shape
        qr = q[:, :, 0]  # (A, H, D)
        if self.slot is not None:
            qr = qr.new_zeros((b * self.g, h, d)).index_copy_(0, self.slot, qr)  # (B'*G, H, D)
        qg = qr.view(b, self.g, h, d).transpose(1, 2)  # (B', H, G, D)
        sp = torch.matmul(qg, kp.transpose(-1, -2)) * scale + self.bias  # (B', H, G, P)
        sp = sp.transpose(1, 2).reshape(b * self.g, h, p)  # (B'*G, H, P)
        if self.slot is not None:
            sp = sp[self.slot]  # (A, H, P)
        ss = torch.matmul(q, ks.transpose(-1, -2))[:, :, 0] * scale  # (A, H, t)
        w = torch.softmax(torch.cat([sp, ss], -1), -1)  # (A, H, P + t)
        wp, ws = w[..., :p], w[..., p:]
        if self.slot is not None:
            wp = wp.new_zeros((b * self.g, h, p)).index_copy_(0, self.slot, wp)  # (B'*G, H, P)
        op = torch.matmul(wp.reshape(b, self.g, h, p).transpose(1, 2), vp)  # (B', H, G, D)
        op = op.transpose(1, 2).reshape(b * self.g, h, d)  # (B'*G, H, D)
        if self.slot is not None:
            op = op[self.slot]
        return (op + torch.matmul(ws[:, :, None], vs)[:, :, 0])[:, :, None]  # (A, H, 1, D)
