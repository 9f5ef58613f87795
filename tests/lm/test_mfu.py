import torch

from tinyreason import kernels
from tinyreason.lm import mfu


def test_cpu_fp32_peak_includes_the_onednn_gemm(monkeypatch):
    """The trainers' fp32 linears run on oneDNN, faster than torch.mm (MKL) on some CPUs: the
    peak must be measured on it too, or MFU would overstate the use of the machine."""
    calls = []
    real = kernels.dnn_linear

    def spy(*a, **k):
        calls.append(a[0].shape)
        return real(*a, **k)

    monkeypatch.setattr(kernels, "dnn_linear", spy)
    rng = torch.get_rng_state()
    peak = mfu.measure_peak_flops(torch.device("cpu"), torch.float32, seconds_per_size=0.0)
    assert peak > 0
    assert bool(calls) == kernels.choose.onednn_fp32(torch.zeros(1))
    # measuring (first run on a machine) must not move the run's RNG, or that run would sample
    # differently from every later one that reads the cached peak
    assert torch.equal(torch.get_rng_state(), rng)


def test_mfu_is_a_capped_ratio():
    assert mfu.mfu(6e9, 1.0, 12e9) == 0.5
    assert mfu.mfu(6e9, 1.0, 1e9) == 1.0  # never above 100%
    assert mfu.mfu(6e9, 0.0, 1e9) == 0.0
