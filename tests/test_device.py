import pytest
import torch

from tinyreason.device import autocast, pick_device, pick_dtype
from tinyreason.errors import UserError


def test_dtype_names_and_fp16_refused():
    assert pick_dtype("bf16") is torch.bfloat16 and pick_dtype("float32") is torch.float32
    with pytest.raises(UserError, match="unsupported dtype 'float16'"):
        pick_dtype("float16")


def test_cpu_device_and_fp32_autocast_is_a_no_op():
    assert pick_device("cpu").type == "cpu"
    with autocast(torch.device("cpu"), torch.float32):
        assert not torch.is_autocast_enabled("cpu")
    with autocast(torch.device("cpu"), torch.bfloat16):
        assert torch.is_autocast_enabled("cpu")


@pytest.mark.kernels
def test_slow_bf16_flags_bf16_on_cpus_without_a_bf16_gemm(monkeypatch):
    from tinyreason.device import slow_bf16
    from tinyreason import kernels

    cpu = torch.device("cpu")
    monkeypatch.setitem(kernels.FORCED, "emulate_bf16", True)
    assert slow_bf16(cpu, torch.bfloat16)
    assert not slow_bf16(cpu, torch.float32)
    monkeypatch.setitem(kernels.FORCED, "emulate_bf16", False)
    assert not slow_bf16(cpu, torch.bfloat16)


def test_unknown_device_names_the_allowed_ones():
    for name in ("tpu", "gpu", "cuda:x", "cpu:0 "):
        with pytest.raises(UserError, match=r"unknown device .*auto, cpu, cuda or cuda:N"):
            pick_device(name)
    assert pick_device("cpu") == torch.device("cpu")
