"""Which implementation of each op runs: the one place that decides.

The GPT-2 forward (`tinyreason.lm.gpt2`) and HRM's linears ask here, per call or once per
rollout, whether a fast CPU kernel serves an op or the plain PyTorch reference does. The
inputs are the switch (`kernels: auto | off` in a command's config, else the environment
variable `TINYREASON_KERNELS`, else auto), the device, the dtype, the torch thread count,
what this machine offers (a C compiler for the C kernels, the ISA they were compiled for,
private torch ops that pass their real-call probe) and shapes.

With the switch off, or off CPU (GPU), every row below takes its plain path: the reference
the kernels are tested against. `FORCED[name] = True/False` overrides one row (tests and
benchmarks compare the two paths; a forced True still needs the kernel to exist here).

| choice (`FORCED` key) | kernel (switch auto) | when | plain path |
|---|---|---|---|
| `decode_step` | whole decode token in one C call (`decode_step.c`) | CPU, 1 thread, C compiled; fp32, or bf16 with AVX512-BF16 panels (not emulated) | per-op decode (`decode_linear` row) |
| `decode_linear` | C linears on panels (`decode_linear.c`) | CPU, 1 thread, C compiled; fp32, or bf16 emulated or with AVX512-BF16 panels | oneDNN packed weights where the probe passes, else `F.linear` |
| `decode_attention` | shared-prefix decode attention in C (`decode_attention.c`) | CPU fp32 cache, left-padded prompts, C compiled; 1 thread or <= `DECODE_ATTENTION_MAX_KV` K/V values per call | batched matmuls (`SharedPrefix.attend`) |
| `sample_rows` | plain-case draw in one C call (`sample_rows.c`) | CPU fp32 logits, no top-k/top-p, C compiled | cumsum + searchsorted (`_draw`) |
| `gelu` | tanh-GELU forward/backward in C (`gelu.c`) | CPU fp32 tensor, C compiled | `F.gelu(approximate="tanh")` |
| `group_attention` | GRPO completion attention in C (`group_attention.c`) | CPU fp32 stream, head size 64, <= 2 threads, left-padded prompts, C compiled | SDPA over repeated prompt K/V |
| `onednn_fp32` | fp32 linears on oneDNN (`mkldnn._linear_pointwise`) | CPU fp32, no autocast, AVX-512 (MKL wins on AVX2), op probed | `F.linear` (MKL) |
| `onednn_head` | LM-head forward product on oneDNN | CPU fp32, no autocast, op probed (every ISA) | `F.linear` |
| `onednn_pack` | decode weights packed by oneDNN (`mkldnn._reorder_linear_weight`) | CPU, op probed | dense weights, `F.linear` |
| `emulate_bf16` | bf16 GEMMs as widened fp32 GEMMs | CPU bf16 where oneDNN has no bf16 GEMM (AVX2-only), op probed | PyTorch's bf16 kernels |
| `kept_attention` | kept rollout attention, backward by SDPA's CPU flash backward (`aten._scaled_dot_product_flash_attention_for_cpu_backward`) | op probed | autograd through the attention math |
| `memory` | malloc keeps freed memory, huge-page panels, gc frozen in the training loop | switch auto, CPU (glibc, Linux THP) | allocator and collector defaults |

Keeping rollout activations (`keep_rollout_activations`) needs the `decode_step` row; elsewhere
the update recomputes. Every kernel gives the plain path's values up to float rounding
(tests/kernels); with the same rows chosen, results are bit-identical run to run.
"""

from __future__ import annotations

import contextlib
import os

import torch

from tinyreason.errors import UserError

ENV = "TINYREASON_KERNELS"
MODES = ("auto", "off")
DECODE_ATTENTION_MAX_KV = 1 << 21  # K/V values per call up to which the C attention is used with several threads
GROUP_ATTENTION_HEAD = 64  # the C completion attention's head size
FORCED: dict[str, bool] = {}
_MODE: str | None = None  # set by `use` (a command's explicit config); None: the environment decides


def mode() -> str:
    """"auto" or "off": the config's explicit choice (`use`) wins, else `TINYREASON_KERNELS`, else auto."""
    if _MODE is not None:
        return _MODE
    env = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if env not in MODES:
        raise UserError(f"{ENV}={env!r}: expected auto or off")
    return env


@contextlib.contextmanager
def use(choice: str | None):
    """Within the block the switch is `choice` ("auto" | "off"; None leaves it to the
    environment). Commands wrap their run in it with their config's `kernels` value."""
    global _MODE
    if choice is not None and choice not in MODES:
        raise UserError(f"kernels: {choice!r}: expected auto or off")
    old, _MODE = _MODE, choice if choice is not None else _MODE
    try:
        yield
    finally:
        _MODE = old


def on() -> bool:
    """True unless the switch is off."""
    return mode() == "auto"


def _cpu(device) -> bool:
    return (device.type if isinstance(device, torch.device) else torch.device(device).type) == "cpu"


def _c() -> bool:  # the C library compiled and loaded here (compiled on the first question)
    from tinyreason.kernels import _cext

    return _cext.loaded()


def _pick(name: str, auto: bool, can: bool = True) -> bool:
    """FORCED[name] where set (True still needs `can` and the switch on), else `auto`."""
    forced = FORCED.get(name)
    if forced is not None:
        return forced and can and on()
    return auto and on()


def bf16_native() -> bool:
    """The compiled C linears have their AVX512-BF16 kernel (bf16 panels)."""
    from tinyreason.kernels import _cext

    return _c() and _cext.bf16_native()


def emulate_bf16() -> bool:
    """bf16 matmuls on this CPU run as widened fp32 GEMMs (no oneDNN bf16 GEMM). Callers check
    that their tensors are on the CPU."""
    from tinyreason.kernels import _onednn

    return _pick("emulate_bf16", _onednn.op() is not None and not _onednn.bf16_packable())


def decode_step(device, dtype: torch.dtype) -> bool:
    ok = dtype == torch.float32 or (dtype == torch.bfloat16 and bf16_native() and not emulate_bf16())
    return _pick("decode_step", _cpu(device) and ok and torch.get_num_threads() == 1 and _c(), ok and _c())


def decode_linear(device, dtype: torch.dtype = torch.float32) -> bool:
    auto = (_cpu(device) and torch.get_num_threads() == 1 and _c()
            and (dtype == torch.float32 or emulate_bf16() or bf16_native()))
    return _pick("decode_linear", auto, _c())


def decode_attention(kv_values: int, device, dtype: torch.dtype) -> bool:
    """kv_values: rows x heads x (prompt + generated slots) x head size of one call."""
    fits = _cpu(device) and dtype == torch.float32
    small = kv_values <= DECODE_ATTENTION_MAX_KV
    return fits and _pick("decode_attention", (small or torch.get_num_threads() == 1) and _c(), _c())


def sample_rows(logits: torch.Tensor) -> bool:
    fits = logits.device.type == "cpu" and logits.dtype == torch.float32
    return fits and _pick("sample_rows", _c(), _c())


def gelu(x: torch.Tensor) -> bool:
    fits = x.device.type == "cpu" and x.dtype == torch.float32
    return fits and _pick("gelu", _c(), _c())


def group_attention(x: torch.Tensor, n_head: int) -> bool:
    """x: the (tokens, C) fp32 residual stream (bf16 autocast or not)."""
    fits = x.device.type == "cpu" and x.dtype == torch.float32 and x.shape[-1] == GROUP_ATTENTION_HEAD * n_head
    return fits and _pick("group_attention", torch.get_num_threads() <= 2 and _c(), _c())


def onednn_fp32(t: torch.Tensor | None = None) -> bool:
    """`t`'s fp32 linears (dense weights) run on oneDNN; without `t`, the route of fp32 GEMMs."""
    from tinyreason.kernels import _onednn

    fits = t is None or (t.device.type == "cpu" and t.dtype == torch.float32 and not torch.is_autocast_enabled("cpu"))
    return fits and _pick("onednn_fp32", _onednn.avx512() and _onednn.op() is not None, _onednn.op() is not None)


def onednn_head(w: torch.Tensor) -> bool:
    """The LM head's forward product (dense row-major (V, C) weight) runs on oneDNN."""
    from tinyreason.kernels import _onednn

    fits = w.device.type == "cpu" and w.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
    return fits and _pick("onednn_head", _onednn.op() is not None, _onednn.op() is not None)


def onednn_pack(w: torch.Tensor) -> bool:
    from tinyreason.kernels import _onednn

    fits = w.device.type == "cpu" and w.dtype in (torch.float32, torch.bfloat16)
    return fits and _pick("onednn_pack", _onednn.reorder() is not None, _onednn.reorder() is not None)


def kept_attention() -> bool:
    from tinyreason.kernels import _group_attention

    return _group_attention.flash_backward_ok()


def memory() -> bool:
    return _pick("memory", True)
