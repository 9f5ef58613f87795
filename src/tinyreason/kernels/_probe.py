"""Real-call probes of the private torch ops the kernels use, once per process.

A private op (`torch.ops.mkldnn._linear_pointwise`, `_reorder_linear_weight`,
`aten._scaled_dot_product_flash_attention_for_cpu_backward`) may be missing, renamed or
change its signature or semantics between torch releases without notice. Each is tried
on tiny tensors the first time it is needed and its result checked against the plain
PyTorch computation of the same thing; an op that raises or disagrees is not used (the
caller takes its plain path) and one log line says so. Probes run outside autocast and
autograd, whatever the caller's context: the first use is often inside a bf16 autocast
region, where the plain side would be computed in bf16 and the real one in fp32.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

log = logging.getLogger("tinyreason.kernels")
_RESULTS: dict[str, bool] = {}


def passes(name: str, real: Callable[[], torch.Tensor | tuple], plain: Callable[[], torch.Tensor | tuple],
           rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """True when `real()` runs and matches `plain()` (every tensor, allclose); cached by `name`.
    A failure is logged once (warning on the `tinyreason.kernels` logger) and cached as False."""
    if name not in _RESULTS:
        try:
            with torch.autocast("cpu", enabled=False), torch.no_grad():
                got, want = real(), plain()
            got = got if isinstance(got, tuple) else (got,)
            want = want if isinstance(want, tuple) else (want,)
            ok = len(got) == len(want) and all(
                torch.allclose(g.float(), w.float(), rtol=rtol, atol=atol) for g, w in zip(got, want))
            why = "its result differs from the plain computation"
        except Exception as e:  # noqa: BLE001 - any failure of a private op means: do not use it
            ok, why = False, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        if not ok:
            log.warning("tinyreason.kernels: %s is not used (%s); the plain PyTorch path runs instead", name, why)
        _RESULTS[name] = ok
    return _RESULTS[name]


def results() -> dict[str, bool]:
    """The probes run so far and whether each passed."""
    return dict(_RESULTS)
