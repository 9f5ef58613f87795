"""The sampler's decode attention as one C function per layer (`decode_attention.c`), on CPU.

Decoding a small GPT-2 on a CPU core is bound by per-op cost, not arithmetic: one layer's
shared-prefix attention is ~25 PyTorch ops (cache writes, four batched matmuls, softmax,
transposes), each a few to a few tens of µs for a few hundred kFLOP. The C function does the
same math in one call (`benchmarks/decode_attention.py` measures both). It is compiled with
the system C compiler (`$CC`, else `cc`) when first needed, once per process, into a
temporary file loaded with ctypes: no build step, no torch headers, nothing cached on disk
that another CPU could load. Without a compiler, or where compiling fails, `available()` is
False and the sampler keeps its PyTorch ops (same results up to float rounding).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

_SRC = Path(__file__).with_name("decode_attention.c")
_FN = None  # the C function once compiled; False when unavailable
ENABLED = True  # tests switch the kernel off to compare it with the PyTorch path


def _compile():
    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None or not _SRC.exists():
        return False
    with tempfile.TemporaryDirectory(prefix="tinyreason_", ignore_cleanup_errors=True) as tmp:
        so = Path(tmp) / "decode_attention.so"
        for arch in (["-march=native"], []):  # -march=native is not known to every compiler
            cmd = [cc, "-O3", *arch, "-ffast-math", "-shared", "-fPIC", str(_SRC), "-o", str(so), "-lm"]
            if subprocess.run(cmd, capture_output=True).returncode == 0:
                break
        else:
            return False
        fn = ctypes.CDLL(str(so)).decode_attention  # loaded: the file may go (Linux keeps the mapping)
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    fn.restype = ctypes.c_int
    fn.argtypes = [ptr, i64, i64, i64, ptr, ptr, i64, i64, ptr, ptr, i64, ptr, ptr, ctypes.c_float, ptr]
    return fn


def available() -> bool:
    """True when the C function is compiled and loaded here (compiles it on the first call)."""
    global _FN
    if _FN is None:
        _FN = _compile()
    return ENABLED and bool(_FN)


def decode_attention(qkv: torch.Tensor, kc: torch.Tensor, vc: torch.Tensor, t: int, kp: torch.Tensor,
                     vp: torch.Tensor, grp: torch.Tensor, pstart: torch.Tensor, scale: float) -> torch.Tensor:
    """Attention output (A, C) of one decode step, all fp32 CPU contiguous tensors:
    qkv (A, 3C) the step's q|k|v; kc, vc (A, H, Tcap, D) generated-token caches, the new k, v
    written at slot t, attending to slots [0, t]; kp, vp (B, H, P, D) prompt K/V per group;
    grp (A,) int64 group of each row; pstart (B,) int64 first real (non-padding) prompt slot."""
    if _FN is None:
        available()  # compiles it
    if not _FN:
        raise RuntimeError("the decode attention kernel is not available here (see decode_kernel.available)")
    a, h, tcap, d = kc.shape
    for x in (qkv, kc, vc, kp, vp):
        if x.dtype != torch.float32 or x.device.type != "cpu" or not x.is_contiguous():
            raise ValueError("decode_attention takes contiguous float32 CPU tensors")
    if qkv.shape != (a, 3 * h * d) or grp.shape != (a,) or not 0 <= t < tcap:
        raise ValueError("decode_attention: inconsistent shapes")
    grp, pstart = grp.contiguous().to(torch.int64), pstart.contiguous().to(torch.int64)
    out = torch.empty(a, h * d, dtype=torch.float32)  # (A, C)
    rc = _FN(qkv.data_ptr(), a, h, d, kc.data_ptr(), vc.data_ptr(), tcap, t, kp.data_ptr(), vp.data_ptr(),
             kp.shape[2], grp.data_ptr(), pstart.data_ptr(), scale, out.data_ptr())
    if rc:
        raise MemoryError("decode_attention: out of memory")
    return out
