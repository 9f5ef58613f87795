"""The sampler's GPT-2: the one GPT-2 forward (`tinyreason.lm.gpt2.blocks`) over a static,
preallocated KV cache, on the sampler's own view of a `GPT2LMHeadModel`'s weights (fp32 views,
or bf16 copies refreshed in place; on CPU the linears packed once per update for the decode
batch). Prefill uses fused SDPA with a boolean mask; decoding attends with batched matmuls, to
the shared prompt K/V of its group where `tinyreason.lm.shared_prefix` is used, or runs each
token through the whole network in one C call (`kernels.Step`). Which path runs is
`tinyreason.kernels.choose`'s decision. `tinyreason.lm.sampler` drives it.
"""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F

from tinyreason import kernels
from tinyreason.errors import UserError
from tinyreason.lm import gpt2
from tinyreason.lm.shared_prefix import SharedPrefix

_CASTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> ((dtype, rows, paths, versions), CachedGPT2)


class CachedGPT2:
    """GPT-2 forward over a static KV cache, reading the weights of a GPT2LMHeadModel.

    fp32 reads the model's own parameters (transposed views of the Conv1D weights); other
    dtypes (bf16) keep a copy of every weight in that dtype, refreshed in place (one strided
    copy, no allocation) when a parameter changed (an optimizer step bumps its version
    counter). On CPU the linear weights, LM head included, are then packed for the decode batch
    (`kernels.dnn_pack`, oneDNN's blocked layout; or `kernels.Panels` for the C linears, re-packed
    in place into the previous view's buffers; where the CPU has no bf16 GEMM, fp32 copies of the
    bf16 values, bf16 emulated, and then no bf16 copy of the block weights is kept beside them):
    decoding reads each weight once per token; re-packing is paid once per update.
    """

    def __init__(self, model, dtype: torch.dtype, rows: int, reuse: "CachedGPT2 | None" = None, c_linear: bool = False,
                 step: bool = False):
        cfg = model.config
        if getattr(cfg, "add_cross_attention", False):
            raise UserError("the sampler supports decoder-only GPT-2 models (no cross-attention)")
        tr = model.transformer
        views = dtype == torch.float32 and tr.wte.weight.dtype == torch.float32
        olds = iter(reuse._copies) if reuse is not None else None
        old_panels = iter(reuse._panels) if reuse is not None and c_linear else None
        self._copies: list[torch.Tensor] = []
        self._panels: list[kernels.Panels] = []

        def own(t: torch.Tensor, transpose: bool = False) -> torch.Tensor:
            src = t.detach().t() if transpose else t.detach()
            if views:
                return src
            dst = next(olds) if olds is not None else torch.empty(src.shape, dtype=dtype, device=src.device)
            self._copies.append(dst.copy_(src))
            return dst

        emulated = dtype == torch.bfloat16 and tr.wte.weight.device.type == "cpu" and kernels.emulate_bf16()
        native = dtype == torch.bfloat16 and not emulated and kernels.bf16_native()  # bf16 panels

        # C decode linears (`kernels.Panels`, one thread) or oneDNN's packed layout (or dense)
        def pack(w: torch.Tensor):
            if not c_linear:
                return kernels.dnn_pack(w, rows)
            old = next(old_panels, None) if old_panels is not None else None
            self._panels.append(kernels.Panels(w, old, bf16=native and w.shape[1] % 2 == 0))
            return self._panels[-1]

        def lin(conv) -> tuple[torch.Tensor, torch.Tensor]:  # Conv1D (in, out) -> packed (out, in), bias
            if emulated or c_linear:  # the packed copy of the (bf16) values is all that is kept
                return pack(conv.weight.detach().t().to(dtype)), own(conv.bias)
            return pack(own(conv.weight, True)), own(conv.bias)

        self.wte, self.wpe = own(tr.wte.weight), own(tr.wpe.weight)
        head = model.lm_head.weight  # (V, C), tied to wte in GPT-2
        self.head = pack(self.wte if head is tr.wte.weight else own(head))
        self.eps = cfg.layer_norm_epsilon
        self.n_head = cfg.n_head
        self.n_pos = cfg.n_positions
        self.d_model = cfg.n_embd
        act = cfg.activation_function  # GELU is fused into the MLP's first linear; others run after it
        self.gelu = "tanh" if act in gpt2.TANH_GELUS else "none" if act == "gelu" else None
        self.act = tr.h[0].mlp.act
        self.layers = [gpt2.Layer((own(blk.ln_1.weight), own(blk.ln_1.bias)), lin(blk.attn.c_attn),
                                  lin(blk.attn.c_proj), (own(blk.ln_2.weight), own(blk.ln_2.bias)), lin(blk.mlp.c_fc),
                                  lin(blk.mlp.c_proj), gpt2.attn_scale(cfg, i))
                       for i, blk in enumerate(tr.h)]
        self.lnf = (own(tr.ln_f.weight), own(tr.ln_f.bias))
        self.dtype = dtype
        self.step = None  # whole decode steps in one C call (`kernels.Step`) where it applies
        bf16_step = native and all(q.bf16 for q in self._panels)  # bf16 panels, fp32 everything else
        if (step and c_linear and (views or bf16_step) and self.gelu is not None
                and getattr(model.lm_head, "bias", None) is None):
            def f32(t):  # the step's own fp32 copies of bf16 position embeddings, norms and biases
                return t if isinstance(t, kernels.Panels) else t.float().contiguous()

            self.step = kernels.Step(
                self.wte, f32(self.wpe),
                [tuple(f32(t) for t in (*ly.ln1, *ly.qkv, *ly.proj, *ly.ln2, *ly.fc, *ly.out)) for ly in self.layers],
                [ly.scale for ly in self.layers], self.eps, self.gelu, tuple(map(f32, self.lnf)), self.head,
                self.n_head)

    @staticmethod
    def linear(x: torch.Tensor, w, b: torch.Tensor | None = None, gelu: str | None = None) -> torch.Tensor:
        """x (..., in) @ w.T + b -> (..., out), w packed by `kernels.Panels` or `kernels.dnn_pack`."""
        if isinstance(w, kernels.Panels):
            return kernels.panel_linear(x, w, b, gelu)
        return kernels.dnn_linear(x, w, b, gelu)

    @staticmethod
    def for_model(model, dtype: torch.dtype, rows: int) -> "CachedGPT2":
        """The sampler view of `model` in `dtype`, packed for `rows` decode rows; cached until a
        parameter changes (bf16 copies are then refreshed in place) or `rows` does (the packed
        layout depends on it, and with it the rounding: same calls, same results, as on resume).
        Writers that skip version counters (torch's fused AdamW) must bump them
        (`torch.autograd.graph.increment_version`, as `tinyreason.lm.optim.adamw` does)."""
        device = model.transformer.wte.weight.device
        step = kernels.choose.decode_step(device, dtype)
        c_linear = step or kernels.choose.decode_linear(device, dtype)
        key = (dtype, rows, (c_linear, step), tuple((p.data_ptr(), p._version) for p in model.parameters()))
        cached = _CASTS.get(model)
        if cached is None or cached[0] != key:
            reuse = cached[1] if cached is not None and cached[0][::2] == key[::2] else None
            cached = _CASTS[model] = (key, CachedGPT2(model, dtype, rows, reuse, c_linear, step))
        return cached[1]

    def kv_dtype(self, device) -> torch.dtype:
        """The K/V caches' dtype: on CPU float32 even for bf16 weights (the small batched
        attention matmuls are faster in fp32 there)."""
        return torch.float32 if torch.device(device).type == "cpu" else self.dtype

    def new_cache(self, n: int, length: int, device, kernel: bool = False) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Zeroed K/V buffers (N, H, Tmax, D) per layer; `kernel`: the keys in the C decode
        attention's layout instead, tiles of 16 transposed keys (`kernels.key_tiles`)."""
        h, d = self.n_head, self.d_model // self.n_head
        kv_dtype = self.kv_dtype(device)
        k_shape = (n, h, kernels.key_slots(length) // 16, d, 16) if kernel else (n, h, length, d)
        return [(torch.zeros(k_shape, dtype=kv_dtype, device=device),
                 torch.zeros((n, h, length, d), dtype=kv_dtype, device=device)) for _ in self.layers]

    def forward(self, ids, pos, cache, start: int, key_ok, prefix: SharedPrefix | None = None, keep=None,
                rows=None) -> torch.Tensor:
        """Logits (N, V) float32 of the last position; writes K/V of slots [start, start+S).
        keep, rows: a decode step on `step` also writes its linear outputs there (`Step`).

        Decoding (S = 1) attends over the whole buffer, slots not yet written masked out:
        a contiguous (N, H, Tmax, D) operand takes the fast batched-matmul path, a
        [:start+1] slice of it does not (measured slower overall).
        With `prefix` (decode only), `cache` holds only the generated tokens' K/V and
        each row also attends to its group's one copy of the prompt K/V (`SharedPrefix`)."""
        n, s = ids.shape  # ids, pos: (N, S); key_ok: (N, Tmax) bool, False on padding and unwritten slots
        if s == 1 and self.step is not None and prefix is not None and prefix.kernel:
            return self.step(ids[:, 0], pos[:, 0], cache, start, prefix.kernel_kv(), prefix.row_group, prefix.pstart,
                             keep, rows)  # (N, V)
        end = start + s
        c = self.d_model
        kv_dtype = cache[0][0].dtype
        x = F.embedding(ids, self.wte) + F.embedding(pos, self.wpe)  # (N, S, C)
        if s > 1:  # prefill: fused SDPA with a boolean mask
            q_at = torch.arange(start, end, device=ids.device)[:, None]  # (S, 1)
            k_at = torch.arange(end, device=ids.device)[None, :]  # (1, end)
            # causal & not padding; a query always sees itself so padded rows never get an empty softmax
            mask = (key_ok[:, None, None, :end] & (k_at <= q_at)) | (k_at == q_at)  # (N, 1, S, end)
        elif prefix is not None:
            pass  # generated K/V are read as [:end] slices: no mask, every row has `end` tokens so far
        else:  # decode: plain matmuls, an additive mask built once per step for all layers
            ok = key_ok.clone()
            ok[:, end:] = False  # (N, Tmax) slots after this token are not written yet
            bias = torch.zeros(ok.shape, dtype=kv_dtype, device=ids.device).masked_fill_(~ok, float("-inf"))
            bias = bias[:, None, None, :]  # (N, 1, 1, Tmax)
        fused = s == 1 and prefix is not None and prefix.kernel  # decode attention in one C call

        def attend(i, qkv, scale):  # qkv (N, S, 3C) -> (N, S, C); writes the cache
            kc, vc = cache[i]
            qkv = qkv.to(kv_dtype)
            if fused:  # cache write and shared-prefix attention
                return prefix.attend_fused(i, qkv.view(n, 3 * c), kc, vc, start, scale).view(n, s, c).to(self.dtype)
            q, k, v = (t.view(n, s, self.n_head, -1).transpose(1, 2) for t in qkv.split(c, dim=-1))  # (N, H, S, D)
            kc[:, :, start:end] = k
            vc[:, :, start:end] = v
            if s > 1:
                a = F.scaled_dot_product_attention(q, kc[:, :, :end], vc[:, :, :end], attn_mask=mask, scale=scale)
            elif prefix is not None:
                a = prefix.attend(i, q, kc[:, :, :end], vc[:, :, :end], scale)  # (N, H, 1, D)
            else:
                att = torch.matmul(q, kc.transpose(-1, -2)) * scale + bias  # (N, H, 1, Tmax)
                a = torch.matmul(torch.softmax(att, -1), vc)  # (N, H, 1, D)
            return a.transpose(1, 2).reshape(n, s, c).to(self.dtype)  # (N, S, C)

        def mlp_in(h, wb, i):
            return self.linear(h, *wb, gelu=self.gelu) if self.gelu else self.act(self.linear(h, *wb))

        x = gpt2.blocks(x, self.layers, self.eps, attend, lambda h, wb, i, name: self.linear(h, *wb), mlp_in)
        x = F.layer_norm(x[:, -1], (c,), *self.lnf, self.eps)  # (N, C)
        return self.linear(x, self.head).float()  # (N, V)
