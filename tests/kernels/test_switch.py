"""The one switch (`kernels: auto | off`, `$TINYREASON_KERNELS`) and the private ops' real-call probes."""

import logging

import pytest
import torch
import torch.nn.functional as F

from tinyreason import kernels
from tinyreason.errors import UserError
from tinyreason.kernels import _onednn, _probe, _switch


def test_config_wins_over_the_environment_and_is_undone(monkeypatch):
    monkeypatch.setenv(kernels.ENV, "off")
    assert kernels.mode() == "off"
    with kernels.use("auto"):
        assert kernels.mode() == "auto"
        with kernels.use(None):  # not given explicitly: stays as it is
            assert kernels.mode() == "auto"
    assert kernels.mode() == "off"
    monkeypatch.setenv(kernels.ENV, "fast")
    with pytest.raises(UserError, match="auto or off"):
        kernels.mode()
    with pytest.raises(UserError, match="auto or off"), kernels.use("on"):
        pass


def test_off_puts_every_choice_on_its_plain_path(monkeypatch):
    x = torch.zeros(3, 128)
    with kernels.use("off"):
        assert not kernels.emulate_bf16()
        assert not _switch.decode_step("cpu", torch.float32) and not _switch.decode_linear("cpu")
        assert not _switch.decode_attention(1, "cpu", torch.float32) and not _switch.sample_rows(x)
        assert not _switch.gelu(x) and not _switch.group_attention(x, 2)
        assert not _switch.onednn_fp32(x) and not _switch.onednn_head(x) and not _switch.onednn_pack(x)
        monkeypatch.setitem(kernels.FORCED, "gelu", True)  # a forced choice does not override off
        assert not _switch.gelu(x)
        w = torch.randn(4, 128)
        assert kernels.dnn_pack(w, 8) is w  # dense, `F.linear`
        torch.testing.assert_close(kernels.linear_grad(x, w), F.linear(x, w), atol=0, rtol=0)


def test_gpu_tensors_never_take_a_cpu_kernel():
    meta = torch.zeros(3, 128, device="meta")
    assert not _switch.gelu(meta) and not _switch.group_attention(meta, 2) and not _switch.sample_rows(meta)
    assert not _switch.decode_step("meta", torch.float32) and not _switch.decode_linear("meta")


def test_a_probe_that_fails_falls_back_and_logs_once(monkeypatch, caplog):
    monkeypatch.setattr(_probe, "_RESULTS", {})
    with caplog.at_level(logging.WARNING, logger="tinyreason.kernels"):
        assert not _probe.passes("op.raises", lambda: 1 / 0, lambda: torch.ones(1))
        assert not _probe.passes("op.raises", lambda: 1 / 0, lambda: torch.ones(1))  # cached, no second line
        assert not _probe.passes("op.wrong", lambda: torch.zeros(2), lambda: torch.ones(2))
        assert _probe.passes("op.right", lambda: torch.ones(2), lambda: torch.ones(2))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "op.raises" in lines[0] and "ZeroDivisionError" in lines[0] and "op.wrong" in lines[1]
    assert kernels.probe_results() == {"op.raises": False, "op.wrong": False, "op.right": True}


@pytest.mark.skipif(_onednn._OP is None, reason="this torch build has no oneDNN linear op")
def test_probes_first_called_under_bf16_autocast_still_pass(monkeypatch):
    """The first use of an op is often inside a bf16 autocast region (bf16 SFT and GRPO): the probe
    must compare fp32 with fp32 there. It once compared the op's fp32 result with autocast's bf16
    `F.linear`, failed, and so turned off oneDNN's bf16 packing (bf16 SFT ran 3x slower)."""
    fresh = {}
    monkeypatch.setattr(_probe, "_RESULTS", fresh)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert _onednn.op() is not None and _onednn.reorder() is not None
    assert fresh == {"torch.ops.mkldnn._linear_pointwise": True, "torch.ops.mkldnn._reorder_linear_weight": True}


@pytest.mark.skipif(_onednn._OP is None, reason="this torch build has no oneDNN linear op")
def test_a_wrong_onednn_op_is_not_used(monkeypatch):
    """A private op whose semantics changed (here: it drops the bias) fails its probe: the
    linears take `F.linear`, packing keeps dense weights."""
    real = _onednn._OP
    monkeypatch.setattr(_probe, "_RESULTS", {})
    monkeypatch.setattr(_onednn, "_OP", lambda x, w, b, *a: real(x, w, None, *a))
    monkeypatch.setattr(_onednn, "_BF16", None)
    assert _onednn.op() is None and _onednn.reorder() is None and not kernels.dnn_available()
    assert not _switch.onednn_fp32() and not kernels.emulate_bf16()
    x, w, b = torch.randn(5, 8), torch.randn(3, 8), torch.randn(3)
    torch.testing.assert_close(kernels.linear_grad(x, w, b, head=True), F.linear(x, w, b), atol=0, rtol=0)
    assert kernels.dnn_pack(w, 8) is w


def test_the_flash_attention_backward_probe_and_its_fallback(monkeypatch):
    """`kernels.flash_attention_backward` gives the plain math's gradients whether the private op
    passes its probe or not."""
    from tinyreason.kernels import _group_attention as ga

    q, k, v, bias, g = ga._probe_inputs()
    want = ga._plain_backward(g, q, k, v, bias, 0.5)
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, False, attn_mask=bias,
                                                                         scale=0.5)
    for ok in (True, False):
        monkeypatch.setattr(ga, "flash_backward_ok", lambda ok=ok: ok)
        got = kernels.flash_attention_backward(g, q, k, v, out, lse, bias, 0.5)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_every_lm_command_takes_the_switch():
    import pydantic

    from tinyreason.chess.evaluate import EvalConfig
    from tinyreason.lm.grpo_train import GRPOTrainConfig
    from tinyreason.lm.sft import SFTConfig

    for cfg in (SFTConfig, GRPOTrainConfig, EvalConfig):
        field = cfg.model_fields["kernels"]
        assert field.default is None  # not given: $TINYREASON_KERNELS decides
        adapter = pydantic.TypeAdapter(field.annotation)
        assert adapter.validate_python("off") == "off" and adapter.validate_python(None) is None
        with pytest.raises(pydantic.ValidationError):
            adapter.validate_python("fast")
