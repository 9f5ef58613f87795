"""The fast CPU kernels, fenced off: everything here only makes things faster, never different.

The GPT-2 forward (`tinyreason.lm.gpt2`) runs a small set of ops (linear, attention, GELU,
norm, the sampler's draw); each has a plain PyTorch implementation - the reference, and the
path on GPU - and, on CPU, the kernels of this package: C functions compiled at first use and
loaded with ctypes (`*.c`, `attn_vec.h`), oneDNN's GEMM and weight packing through private
torch ops (each probed by a real call at first use, plain fallback), bf16 emulated by fp32 GEMMs
where the CPU has no bf16 GEMM, and the training loops' memory settings (malloc, huge pages,
gc). Which implementation runs is decided in one place, `choose` (a table in its docstring),
from the switch `kernels: auto | off` (a command's config; else `$TINYREASON_KERNELS`; else
auto), the device, dtype, thread count, what this machine offers and shapes.

Public API (nothing outside this package imports its underscore modules):
- the switch: `use`, `mode`, `ENV`, `FORCED`, `choose` (one function per row of the table),
  `emulate_bf16`, `bf16_native`, `probe_results`;
- C kernels: `Panels`, `panel_linear`, `panel_width`, `Step`, `STEP_STORES`, `decode_attention`,
  `key_slots`, `key_tiles`, `untiled_keys`, `sample_rows`, `gelu_tanh`, `gelu_tanh_backward`,
  `completion_attention`, `c_library`, `compiled`;
- oneDNN: `dnn_pack`, `dnn_linear`, `linear_grad`, `linear_backward`, `gemm`, `Bf16Linear`, `bf16_packable`,
  `dnn_available`;
- attention backward for kept outputs: `flash_attention_backward`;
- memory: `huge_page_empty`, `keep_freed_memory`, `frozen_gc`.
"""

from __future__ import annotations

from tinyreason.kernels import _switch as choose
from tinyreason.kernels._cext import (
    STEP_STORES,
    Panels,
    Step,
    decode_attention,
    gelu_tanh,
    gelu_tanh_backward,
    key_slots,
    key_tiles,
    panel_width,
    sample_rows,
    untiled_keys,
)
from tinyreason.kernels._cext import linear as panel_linear
from tinyreason.kernels._group_attention import completion_attention, flash_attention_backward
from tinyreason.kernels._memory import frozen_gc, huge_page_empty, keep_freed_memory
from tinyreason.kernels._onednn import Bf16Linear, bf16_packable, gemm, linear_backward, linear_grad
from tinyreason.kernels._onednn import linear as dnn_linear
from tinyreason.kernels._onednn import pack as dnn_pack
from tinyreason.kernels._probe import results as probe_results
from tinyreason.kernels._switch import ENV, FORCED, bf16_native, emulate_bf16, mode, use


HELP = (f"fast CPU kernels: auto (where they apply) or off (plain PyTorch, the reference); "
        f"default: ${ENV}, else auto")


def c_library():
    """The loaded C library (ctypes), or None where no compiler built it: for benchmarks that
    time a kernel's raw call."""
    from tinyreason.kernels import _cext

    return _cext._LIB if _cext.loaded() else None


def compiled() -> bool:
    """True when the C kernels are compiled and loaded here (compiles on the first call), switch aside."""
    from tinyreason.kernels import _cext

    return _cext.loaded()


def dnn_available() -> bool:
    """True when oneDNN's linear op exists here and passes its probe (switch aside)."""
    from tinyreason.kernels import _onednn

    return _onednn.op() is not None


__all__ = [
    "ENV", "FORCED", "HELP", "Bf16Linear", "STEP_STORES", "Panels", "Step", "bf16_native", "bf16_packable",
    "c_library", "choose",
    "compiled", "completion_attention", "decode_attention", "dnn_available", "dnn_linear", "dnn_pack", "emulate_bf16",
    "flash_attention_backward", "frozen_gc", "gelu_tanh", "gelu_tanh_backward", "gemm", "huge_page_empty",
    "keep_freed_memory", "key_slots", "key_tiles", "linear_backward", "linear_grad", "mode", "panel_linear",
    "panel_width", "probe_results", "sample_rows", "untiled_keys", "use",
]
