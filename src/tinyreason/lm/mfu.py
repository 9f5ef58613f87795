"""Model FLOPs utilisation against a peak that is tabled (known GPUs) or measured once.

FLOPs per token: 6·N for a training forward+backward, 2·N for inference (N = parameters
that do matmul work per token, `model.count_params`); attention-score FLOPs are left out,
as in the usual 6N estimate. The CPU peak is the fastest single repetition of square
matmuls (256 to 2048) in the given dtype, by torch's own matmul or, in fp32, by the oneDNN
GEMM the trainers run (`tinyreason.kernels`, oneDNN where it serves fp32 linears).
The fastest repetition, so other load on the machine does not lower it; measured once per
(CPU, threads, ATen/oneDNN instruction caps, dtype) and cached in
~/.cache/tinyreason/peak_flops.json; delete that file to measure again. A model's matmuls can
exceed that benchmark only by noise; MFU is capped at 1 so a reported figure is never above 100%.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

# Dense (non-sparse) peaks in TFLOP/s from vendor data sheets (SXM parts where both exist).
GPU_PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H200": {"bfloat16": 989.0, "float32": 67.0},
    "H100": {"bfloat16": 989.0, "float32": 67.0},
    "A100": {"bfloat16": 312.0, "float32": 19.5},
    "L40S": {"bfloat16": 362.0, "float32": 91.6},
    "L4": {"bfloat16": 121.0, "float32": 30.3},
    "A10": {"bfloat16": 125.0, "float32": 31.2},
    "RTX 4090": {"bfloat16": 165.0, "float32": 82.6},
    "RTX 3090": {"bfloat16": 71.0, "float32": 35.6},
}


def _cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinyreason" / "peak_flops.json"


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu} x{torch.get_num_threads()} threads"


def measure_peak_flops(device: torch.device, dtype: torch.dtype, seconds_per_size: float = 0.25) -> float:
    """Best FLOP/s of one square matmul (256 to 2048) in `dtype` on `device`, over torch.mm and,
    where the trainers use it (fp32 on CPU), oneDNN's GEMM (`kernels.dnn_linear`).

    The fastest single repetition counts, not the mean: on a shared machine other work only
    ever slows a repetition down. Small sizes matter there: a 512 matmul (a few ms) often
    runs between two preemptions, a 2048 one (a second on one core) never does, and on
    this CPU both reach the same speed when the machine is idle. Draws from its own generator:
    a run that measures (first on a machine) samples exactly as one that reads the cache."""
    from tinyreason import kernels

    best = 0.0
    gen = torch.Generator(device=device).manual_seed(0)
    for n in (256, 512, 1024, 2048):
        a = torch.randn(n, n, device=device, generator=gen).to(dtype)
        b = torch.randn(n, n, device=device, generator=gen).to(dtype)
        for mm in (torch.mm, kernels.dnn_linear) if kernels.choose.onednn_fp32(b) else (torch.mm,):
            mm(a, b)  # warm-up
            reps, t_end = 0, time.perf_counter() + seconds_per_size
            while reps < 3 or time.perf_counter() < t_end:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                t0 = time.perf_counter()
                mm(a, b)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                best = max(best, 2 * n**3 / (time.perf_counter() - t0))
                reps += 1
    return best


def peak_flops(device: torch.device, dtype: torch.dtype) -> tuple[float, str]:
    """(peak FLOP/s, where it comes from) for `device` and `dtype`."""
    name = _device_name(device)
    dname = "bfloat16" if dtype == torch.bfloat16 else "float32"
    if device.type == "cuda":
        for key, peaks in GPU_PEAK_TFLOPS.items():
            if key in name:
                return peaks[dname] * 1e12, f"table:{key}"
    # kernel caps (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA, as `make test-avx2` sets) change the peak
    cap = f"{torch.backends.cpu.get_cpu_capability()}/{os.environ.get('ONEDNN_MAX_CPU_ISA', 'ALL')}"
    key = f"{name}|{cap}|{dname}|best-rep-v4"  # the measuring method is part of the key
    path = _cache_path()
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if key not in cache:
        cache[key] = measure_peak_flops(device, dtype)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            from tinyreason.fileio import atomic_write_json

            atomic_write_json(path, cache)
        except OSError:
            pass
    return float(cache[key]), "measured"


def mfu(flops: float, seconds: float, peak: float) -> float:
    """Achieved / peak FLOP/s, in [0, 1]."""
    if seconds <= 0 or peak <= 0:
        return 0.0
    return min(1.0, flops / seconds / peak)


def peak_memory_mb(device: torch.device) -> float:
    """CUDA max allocated, or the process's peak RSS on CPU, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
