"""The C kernels on CPU, loaded with ctypes: the sampler's decode attention as one call per
layer (`decode_attention.c`), its linears at decode batch sizes on packed panels
(`decode_linear.c`), a whole decode step (`decode_step.c`) and its plain draw
(`sample_rows.c`); the trainers' tanh-GELU (`gelu.c`) and the GRPO update's completion
attention (`group_attention.c`, `_group_attention`).

Decoding a small GPT-2 on a CPU core is bound by per-op cost, not arithmetic: one layer's
shared-prefix attention is ~25 PyTorch ops, each a few to a few tens of µs for a few hundred
kFLOP; a decode token's linears stream every weight once. These functions do the same math
as the plain PyTorch ops in fewer calls (figures: docs/benchmarks.md, "Kernels").
The library is compiled with the system C compiler (`$CC`, else `cc`) when first needed, once
per process, into a temporary file loaded with ctypes: no build step, no torch headers,
nothing cached on disk that another CPU could load. It targets the host (`-march=native`);
`$TINYREASON_MARCH` names another target (`make test-avx2` builds for `x86-64-v3` on AVX-512
hosts, so the AVX2 code is tested). Without a compiler, or where compiling fails, `loaded()`
is False and `_switch` keeps every op on its plain path (same results up to float rounding).

Vectors are 16 floats where the compiler targets AVX-512, else 8 (AVX2) or 4; panels are 16
output columns wide on AVX-512, else 8 (`panel_width`). Where the compiler targets
AVX512-BF16 (`bf16_native`), bf16 weights go into bf16 panels read with vdpbf16ps
(`decode_linear_bf16`: each input rounded to bf16, fp32 accumulation, a bf16 GEMM's values up
to summation order).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from tinyreason.kernels._memory import huge_page_empty

_SRCS = [Path(__file__).with_name(n) for n in ("decode_attention.c", "decode_linear.c", "gelu.c", "decode_step.c",
                                                 "sample_rows.c", "group_attention.c")]
_LIB = None  # the compiled library once loaded; False when unavailable
_GELU = {None: 0, "tanh": 1, "none": 2}  # decode_linear's gelu codes: none, tanh approximation, erf



def _compile():
    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None or not all(src.exists() for src in _SRCS):
        return False
    with tempfile.TemporaryDirectory(prefix="tinyreason_", ignore_cleanup_errors=True) as tmp:
        so = Path(tmp) / "decode_kernels.so"
        march = os.environ.get("TINYREASON_MARCH") or "native"
        for arch in ([f"-march={march}"], []):  # -march=native is not known to every compiler
            cmd = [cc, "-O3", *arch, "-ffast-math", "-shared", "-fPIC", *map(str, _SRCS), "-o", str(so), "-lm"]
            if subprocess.run(cmd, capture_output=True).returncode == 0:
                break
        else:
            return False
        lib = ctypes.CDLL(str(so))  # loaded: the file may go (Linux keeps the mapping)
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    lib.decode_attention.restype = ctypes.c_int
    lib.decode_attention.argtypes = [ptr, i64, i64, i64, ptr, i64, ptr, i64, i64, ptr, i64, ptr, i64, ptr, ptr,
                                     ctypes.c_float, ptr, ptr]
    lib.decode_panel_width.restype = ctypes.c_int64
    lib.decode_panel_width.argtypes = []
    lib.decode_linear.restype = None
    lib.decode_linear.argtypes = [ptr, i64, i64, ptr, i64, ptr, ctypes.c_int, ptr]
    lib.decode_linear_bf16.restype = ctypes.c_int
    lib.decode_linear_bf16.argtypes = [ptr, i64, i64, ptr, i64, ptr, ctypes.c_int, ptr]
    lib.decode_bf16_native.restype = ctypes.c_int64
    lib.decode_bf16_native.argtypes = []
    lib.gelu_tanh.restype = lib.gelu_tanh_backward.restype = None
    lib.gelu_tanh.argtypes = [ptr, i64, ptr]
    lib.sample_rows.restype = ctypes.c_int
    lib.sample_rows.argtypes = [ptr, i64, i64, ctypes.c_float, ptr, ptr, ptr]
    lib.decode_step.restype = ctypes.c_int
    lib.decode_step.argtypes = [ptr, ptr, i64, i64, i64, i64, i64, i64, ptr, ptr, ptr, ptr, ctypes.c_float, ctypes.c_int,
                                ptr, i64, ptr, i64, i64, ptr, i64, ptr, i64, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, i64,
                                ctypes.c_int]
    lib.gelu_tanh_backward.argtypes = [ptr, ptr, i64, ptr]
    lib.group_attention_fwd.restype = lib.group_attention_bwd.restype = ctypes.c_int
    lib.group_attention_fwd.argtypes = [ptr, i64, i64, i64, i64, i64, i64, ptr, ctypes.c_float, ptr, i64, ptr, i64]
    lib.group_attention_bwd.argtypes = [ptr, i64, i64, i64, i64, i64, i64, ptr, ctypes.c_float, ptr, i64, ptr, i64,
                                        ptr, ptr]
    return lib


def loaded() -> bool:
    """True when the C library is compiled and loaded here (compiles on the first call); which
    kernel serves which call is `_switch`'s decision."""
    global _LIB
    if _LIB is None:
        _LIB = _compile()
    return bool(_LIB)


def bf16_native() -> bool:
    """True when the compiled `decode_linear.c` has its AVX512-BF16 kernel (bf16 panels)."""
    return loaded() and bool(_LIB.decode_bf16_native())


def sample_rows(logits: torch.Tensor, temperature: float, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
    """One token per row (A,) int64 from softmax(logits / temperature) and its log-prob (A,) fp32, for
    contiguous fp32 CPU logits (A, V) (`sample_rows.c`; the sampler's `_draw` path in one call). Draws
    one uniform per row from `generator`, as `_draw` does."""
    a, v = logits.shape
    u = torch.rand(a, 1, generator=generator, dtype=torch.float32)  # (A, 1) as `_draw` draws them
    tok, lp = torch.empty(a, dtype=torch.int64), torch.empty(a, dtype=torch.float32)
    if _LIB.sample_rows(logits.data_ptr(), a, v, 1.0 / temperature, u.data_ptr(), tok.data_ptr(), lp.data_ptr()):
        raise MemoryError("sample_rows: out of memory")
    return tok, lp


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's tanh-GELU of an fp32 CPU tensor (`gelu.c`; `F.gelu(x, approximate="tanh")`)."""
    x = x.contiguous()
    y = torch.empty_like(x)
    _LIB.gelu_tanh(x.data_ptr(), x.numel(), y.data_ptr())
    return y


def gelu_tanh_backward(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """g * gelu'(x) for fp32 CPU tensors of one shape (`torch.ops.aten.gelu_backward`, tanh)."""
    g, x = g.contiguous(), x.contiguous()
    dx = torch.empty_like(x)
    _LIB.gelu_tanh_backward(g.data_ptr(), x.data_ptr(), x.numel(), dx.data_ptr())
    return dx


def panel_width() -> int:
    """Output columns per `Panels` panel: what the compiled `decode_linear.c` reads (16 where the
    compiler targets AVX-512, 8 for AVX, else 4); 8 where the library is not available."""
    return int(_LIB.decode_panel_width()) if loaded() else 8


class Panels:
    """A linear weight packed for `decode_linear`: (ceil(N/W), K, W) fp32 panels of W = `panel_width()`
    output columns, zero-padded past N. A copy: re-pack after the weight changes; `reuse` (an older
    packing of a weight of the same shape) is overwritten in place instead of allocating anew
    (per-panel copies into the old buffers; packing into fresh zeroed memory through a
    transposed view was far slower for GPT-2's LM head)."""

    def __init__(self, w: torch.Tensor, reuse: "Panels | None" = None, width: int | None = None,
                 bf16: bool = False):
        """bf16: pack the bf16 values of w into bf16 panels for `decode_linear_bf16` ((ceil(N/16),
        K/2, 16, 2): panel p, pair kk, column j, element e = W[16p + j, 2kk + e]); only where
        `bf16_native()` and K is even."""
        n, k = w.shape  # (N, K), any strides, fp32 or bf16 (then the fp32 values of the bf16 ones)
        self.out_features, self.in_features, self.bf16 = n, k, bf16
        if bf16 and k % 2:
            raise ValueError("bf16 panels need an even number of input features")
        # e: input features per panel entry (bf16: pairs); fp32 panels are the e = 1 case, kept 3-d
        pw, e, dtype = (16, 2, torch.bfloat16) if bf16 else (width or panel_width(), 1, torch.float32)
        full, rem = divmod(n, pw)
        shape = (full + (rem > 0), k // e, pw, e)
        shape = shape if bf16 else shape[:3]
        same = reuse is not None and reuse.panels.shape == shape and reuse.panels.dtype == dtype
        self.panels = reuse.panels if same else huge_page_empty(shape, dtype)  # streamed once per token
        panels = self.panels.view(-1, k // e, pw, e)  # (N/W, K/e, W, e)
        w = w.detach()
        if bf16:  # rounded to bf16 row-major first: one strided converting copy was slower (124M: 0.36-0.43 s)
            w = w.to(torch.bfloat16).contiguous()
        elif w.stride(1) != 1 and w.stride(0) != 1:
            w = w.contiguous()
        if w.stride(1) == 1:  # row-major (N, K): each panel is a (W, K) block, transposed
            panels[:full].copy_(w[: full * pw].view(full, pw, k // e, e).transpose(1, 2))
            tail = w[full * pw:].reshape(rem, k // e, e).transpose(0, 1)  # (K/e, rem, e)
        else:  # (N, K) view of a row-major (K, N) tensor (a Conv1D weight): runs of W columns
            panels[:full].copy_(w.t()[:, : full * pw].view(k // e, e, full, pw).permute(2, 0, 3, 1))
            tail = w.t()[:, full * pw:].reshape(k // e, e, rem).permute(0, 2, 1)  # (K/e, rem, e)
        if rem:
            panels[full].zero_()
            panels[full, :, :rem].copy_(tail)


def linear(x: torch.Tensor, w: Panels, b: torch.Tensor | None = None, gelu: str | None = None) -> torch.Tensor:
    """x (..., K) @ W.T + b -> (..., N) on `decode_linear`; `gelu` "tanh" or "none" (erf) applies
    GELU. fp32, or bf16 x (and b): on fp32 panels bf16 emulated as in `onednn.linear` (fp32 math
    on the fp32 values, result rounded to bf16); on bf16 panels x rounded to bf16, fp32
    accumulation, the result rounded to x's dtype (a bf16 GEMM's values up to summation order)."""
    if not loaded():
        raise RuntimeError("the decode kernels are not available here (see kernels._switch.decode_linear)")
    if x.shape[-1] != w.in_features or x.device.type != "cpu":
        raise ValueError("kernels.linear: x must be a CPU tensor (..., in_features)")
    x2 = x.reshape(-1, w.in_features).float().contiguous()  # (M, K)
    b = None if b is None else b.float().contiguous()
    y = torch.empty(x2.shape[0], w.out_features, dtype=torch.float32)  # (M, N)
    args = (x2.data_ptr(), x2.shape[0], w.in_features, w.panels.data_ptr(), w.out_features,
            None if b is None else b.data_ptr(), _GELU[gelu], y.data_ptr())
    if not w.bf16:
        _LIB.decode_linear(*args)
    elif _LIB.decode_linear_bf16(*args):
        raise RuntimeError("decode_linear_bf16 failed (out of memory, or not compiled for AVX512-BF16)")
    return y.view(*x.shape[:-1], -1).to(x.dtype)


def key_slots(t: int) -> int:
    """Slots per row and head of the kernel's key tiles for t keys: t rounded up to 16."""
    return -(-t // 16) * 16


def key_tiles(k: torch.Tensor) -> torch.Tensor:
    """Keys (..., T, D) in the kernel's layout (..., T16 / 16, D, 16): tiles of 16 transposed keys,
    T16 = key_slots(T), zero past key T."""
    *lead, t, d = k.shape
    out = k.new_zeros(*lead, key_slots(t), d)
    out[..., :t, :] = k
    return out.view(*lead, -1, 16, d).transpose(-1, -2).contiguous()


def untiled_keys(kt: torch.Tensor, t: int) -> torch.Tensor:
    """The first t keys (..., t, D) of key tiles (..., T16 / 16, D, 16) (`key_tiles`' inverse)."""
    *lead, nb, d, _ = kt.shape
    return kt.transpose(-1, -2).reshape(*lead, nb * 16, d)[..., :t, :]


def decode_attention(qkv: torch.Tensor, kc: torch.Tensor, vc: torch.Tensor, t: int, kp: torch.Tensor,
                     vp: torch.Tensor, grp: torch.Tensor, pstart: torch.Tensor, scale: float) -> torch.Tensor:
    """Attention output (A, C) of one decode step, all fp32 CPU contiguous tensors:
    qkv (A, 3C) the step's q|k|v; vc (A, H, Tcap, D) and kc (A, H, key_slots(Tcap) / 16, D, 16)
    the generated-token values and keys (in tiles, `key_tiles`), the new v, k written at slot t,
    attending to slots [0, t] (other slots finite); vp (B, H, P, D) and kp (B, H, key_slots(P) / 16,
    D, 16) the prompt values and keys per group; grp (A,) int64 group of each row (ascending);
    pstart (B,) int64 first real (non-padding) prompt slot."""
    if not loaded():
        raise RuntimeError("the decode attention kernel is not available here (see kernels._switch.decode_attention)")
    a, h, tcap, d = vc.shape
    b, _, p, _ = vp.shape
    for x in (qkv, kc, vc, kp, vp):
        if x.dtype != torch.float32 or x.device.type != "cpu" or not x.is_contiguous():
            raise ValueError("decode_attention takes contiguous float32 CPU tensors")
    if (qkv.shape != (a, 3 * h * d) or grp.shape != (a,) or not 0 <= t < tcap
            or kc.shape != (a, h, key_slots(tcap) // 16, d, 16) or kp.shape != (b, h, key_slots(p) // 16, d, 16)):
        raise ValueError("decode_attention: inconsistent shapes")
    grp, pstart = grp.contiguous().to(torch.int64), pstart.contiguous().to(torch.int64)
    out = torch.empty(a, h * d, dtype=torch.float32)  # (A, C)
    rc = _LIB.decode_attention(qkv.data_ptr(), a, h, d, kc.data_ptr(), key_slots(tcap), vc.data_ptr(), tcap, t,
                               kp.data_ptr(), key_slots(p), vp.data_ptr(), p, grp.data_ptr(), pstart.data_ptr(), scale,
                               out.data_ptr(), None)
    if rc:
        raise MemoryError("decode_attention: out of memory")
    return out


# What `decode_step.c` writes for a kept token (its `keep` pointers), per layer in this order -
# c_attn output (3C), attention output (C), its log-sum-exps per head (H), attention c_proj (C),
# c_fc before the activation (F), MLP c_proj (C) - then the LM head's logits (V). The forward's
# `replay.Activations` indexes its stores by this tuple; tests/kernels/test_step_stores.py checks
# each store against the per-op forward.
STEP_STORES = ("qkv", "att", "lse", "proj", "fc", "out")


class Step:
    """A GPT-2's fp32 weights as `decode_step.c` reads them: one decode token through the whole
    network in one call. Holds references to every tensor it points to (the sampler's view of
    the model: parameters, Panels)."""

    def __init__(self, wte, wpe, layers, scales, eps: float, gelu: str, lnf, head: Panels, n_head: int):
        """layers: per block (ln_1 w, b, c_attn Panels, b, c_proj Panels, b, ln_2 w, b, c_fc Panels, b,
        mlp c_proj Panels, b); lnf: (w, b); gelu: the MLP activation, "tanh" or "none" (erf).
        Every Panels fp32, or every one bf16 (`decode_linear_bf16`, and then wte bf16); all other
        tensors fp32."""
        panels = [t for blk in layers for t in blk if isinstance(t, Panels)] + [head]
        self.bf16 = panels[0].bf16
        if any(q.bf16 != self.bf16 for q in panels):
            raise ValueError("kernels.Step: panels all fp32 or all bf16")
        flat = [t.panels if isinstance(t, Panels) else t for blk in layers for t in blk]
        if wte.dtype != (torch.bfloat16 if self.bf16 else torch.float32) or not wte.is_contiguous():
            raise ValueError("kernels.Step: wte must be contiguous, bf16 with bf16 panels, else fp32")
        for t in (wpe, *[t for blk in layers for t in blk if not isinstance(t, Panels)], *lnf):
            if t.dtype != torch.float32 or t.device.type != "cpu" or not t.is_contiguous():
                raise ValueError("kernels.Step takes contiguous float32 CPU tensors besides its panels")
        self._keep = (wte, wpe, flat, lnf, head)
        self.wte, self.wpe, self.lnf, self.head = wte, wpe, lnf, head
        self.ptrs = (ctypes.c_void_p * len(flat))(*[t.data_ptr() for t in flat])
        self.scales = (ctypes.c_float * len(layers))(*scales)
        self.n_layer, self.n_head, self.eps, self.gelu = len(layers), n_head, eps, _GELU[gelu]
        self.d_model, self.d_inner = wte.shape[1], layers[0][8].out_features

    def __call__(self, ids, pos, cache, t: int, kp, grp, pstart, keep=None, rows=None) -> torch.Tensor:
        """Logits (A, V) fp32 of one decode step: ids, pos (A,) int64 the tokens and their position
        ids; cache per layer the generated (K, V), kp per layer the prompt's (K, V), in
        `decode_attention`'s layouts, this step's K/V written at slot t; grp (A,), pstart (B,) as there.
        keep: a `replay.Activations` whose stores get this token's linear outputs, row a at
        [rows[a], t] (rows (A,) int64: each active row's batch row)."""
        ids, pos = ids.contiguous().to(torch.int64), pos.contiguous().to(torch.int64)
        a, n, h, d = ids.shape[0], self.n_layer, self.n_head, self.d_model // self.n_head
        b, tcap, p = pstart.shape[0], cache[0][1].shape[2], kp[0][1].shape[2]
        shapes = ([(a, h, key_slots(tcap) // 16, d, 16), (a, h, tcap, d)] * n
                  + [(b, h, key_slots(p) // 16, d, 16), (b, h, p, d)] * n)
        for z, shape in zip([x for kv in (*cache, *kp) for x in kv], shapes, strict=True):
            if z.dtype != torch.float32 or not z.is_contiguous() or z.shape != shape:
                raise ValueError("kernels.Step: caches must be contiguous float32 in decode_attention's layouts")
        arr = ctypes.c_void_p * n
        kc, vc = arr(*[k.data_ptr() for k, _ in cache]), arr(*[v.data_ptr() for _, v in cache])
        kpp, vpp = arr(*[k.data_ptr() for k, _ in kp]), arr(*[v.data_ptr() for _, v in kp])
        grp, pstart = grp.contiguous().to(torch.int64), pstart.contiguous().to(torch.int64)
        logits = torch.empty(a, self.head.out_features, dtype=torch.float32)  # (A, V)
        keep_ptrs, tkeep = None, 0
        if keep is not None:
            rows = rows.contiguous().to(torch.int64)
            stores = keep.stores()  # STEP_STORES per layer, then the logits
            if len(stores) != len(STEP_STORES) * n + 1 or rows.shape != (a,) or t >= keep.capacity:
                raise ValueError("kernels.Step: activation stores do not fit this model or step")
            keep_ptrs, tkeep = (ctypes.c_void_p * len(stores))(*[z.data_ptr() for z in stores]), keep.capacity
        rc = _LIB.decode_step(ids.data_ptr(), pos.data_ptr(), a, self.d_model, self.n_head, n, self.d_inner,
                              self.head.out_features, self.wte.data_ptr(), self.wpe.data_ptr(), self.ptrs, self.scales,
                              self.eps, self.gelu, kc, key_slots(tcap), vc, tcap, t, kpp, key_slots(p), vpp, p,
                              grp.data_ptr(), pstart.data_ptr(),
                              self.lnf[0].data_ptr(), self.lnf[1].data_ptr(), self.head.panels.data_ptr(),
                              logits.data_ptr(), keep_ptrs, None if keep is None else rows.data_ptr(), tkeep,
                              int(self.bf16))
        if rc:
            raise MemoryError("decode_step: out of memory")
        return logits
