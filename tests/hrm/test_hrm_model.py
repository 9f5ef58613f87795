"""HRM ACT v1 architecture: official outputs, names, shapes, training-mode behaviour, configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hrm_test_utils import FIXTURE_NAMES, assert_bf16_predictions, reference, tiny_config

from tinyreason.errors import UserError
from tinyreason.hrm.checkpoint import load_checkpoint
from tinyreason.hrm.config import HRMArchConfig, load_arch_config, make_config
from tinyreason.hrm.model import HRMACT, count_parameters
from tinyreason.hrm.validation import expected_param_counts, expected_shapes

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "hrm"


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_act_step_matches_official_reference(fixtures, name):
    """Step-by-step through the ACT wrapper in eval mode, as the official evaluation loop."""
    loaded = load_checkpoint(fixtures / "hrm_official" / name)
    ref = reference(fixtures, name)
    batch = {k: torch.from_numpy(ref[k]) for k in ("inputs", "labels", "puzzle_identifiers")}
    model = loaded.model
    with torch.inference_mode():
        carry = model.initial_carry(batch)
        for step in range(loaded.config.halt_max_steps):
            carry, out = model(carry, batch)
            logits = out["logits"].float().numpy()
            if loaded.config.forward_dtype == "float32":
                np.testing.assert_allclose(logits, ref["logits"][step], atol=1e-4, rtol=0)
                np.testing.assert_allclose(out["q_halt_logits"].numpy(), ref["q_halt_logits"][step], atol=1e-4, rtol=0)
                np.testing.assert_allclose(out["q_continue_logits"].numpy(), ref["q_continue_logits"][step], atol=1e-4, rtol=0)
            else:
                assert_bf16_predictions(logits.argmax(-1), ref["logits"][step])
                assert np.abs(out["q_halt_logits"].numpy() - ref["q_halt_logits"][step]).max() <= 0.05
                assert np.abs(out["q_continue_logits"].numpy() - ref["q_continue_logits"][step]).max() <= 0.05
        assert bool(carry.halted.all()) and carry.steps.tolist() == [loaded.config.halt_max_steps] * len(ref["inputs"])


def test_parameter_names_and_shapes_match_official_state_dict(fixtures):
    raw = torch.load(fixtures / "hrm_official" / "learned_bf16" / "step_1234", weights_only=True)
    official = {k.removeprefix("_orig_mod.model."): tuple(v.shape) for k, v in raw.items()}
    cfg = load_checkpoint(fixtures / "hrm_official" / "learned_bf16").config
    ours = {k: tuple(v.shape) for k, v in HRMACT(cfg).state_dict().items()}
    assert ours == official == expected_shapes(cfg)


def test_config_inference_from_state_dict(fixtures):
    rope = load_checkpoint(fixtures / "hrm_official" / "rope_f32").config
    assert (rope.vocab_size, rope.num_puzzle_identifiers, rope.seq_len, rope.batch_size) == (11, 7, None, 6)
    learned = load_checkpoint(fixtures / "hrm_official" / "learned_bf16").config
    assert (learned.vocab_size, learned.num_puzzle_identifiers, learned.seq_len, learned.batch_size) == (12, 13, 100, 4)
    assert learned.swiglu_width == 256 and learned.puzzle_emb_len == 1  # expansion 2.5 * 96 * 2/3 = 160 -> 256


def test_init_follows_official_scheme():
    torch.manual_seed(0)
    m = HRMACT(tiny_config(hidden_size=64, num_heads=4, puzzle_emb_ndim=40))
    inner = m.inner
    assert torch.all(inner.q_head.weight == 0) and torch.all(inner.q_head.bias == -5)
    assert torch.all(inner.puzzle_emb.weights == 0)
    w = inner.H_level.layers[0].mlp.gate_up_proj.weight  # LeCun: std 1/sqrt(fan_in), truncated at 2 std
    assert abs(w.std().item() - 64**-0.5) < 0.01 and w.abs().max() <= 2 * 1.14 * 64**-0.5
    assert inner.puzzle_emb_len == 1  # ceil(40 / 64), zero-padded to hidden


def test_rope_without_seq_len_equals_with_seq_len():
    torch.manual_seed(0)
    a = HRMACT(tiny_config(seq_len=None))
    b = HRMACT(tiny_config(seq_len=9))
    b.load_state_dict(a.state_dict())
    batch = {"inputs": torch.randint(0, 7, (2, 9)), "puzzle_identifiers": torch.tensor([1, 3])}
    with torch.inference_mode():
        ca, oa = a.eval()(a.initial_carry(batch), batch)
        cb, ob = b.eval()(b.initial_carry(batch), batch)
    assert torch.equal(oa["logits"], ob["logits"])


def test_training_mode_halting_exploration_and_one_step_gradient():
    torch.manual_seed(0)
    m = HRMACT(tiny_config(halt_exploration_prob=0.5)).train()
    batch = {"inputs": torch.randint(0, 7, (4, 9)), "labels": torch.randint(0, 7, (4, 9)), "puzzle_identifiers": torch.tensor([0, 1, 2, 3])}
    carry = m.initial_carry(batch)
    carry, out = m(carry, batch)
    assert set(out) == {"logits", "q_halt_logits", "q_continue_logits", "target_q_continue"}
    assert out["target_q_continue"].shape == (4,) and bool(((out["target_q_continue"] > 0) & (out["target_q_continue"] < 1)).all())
    assert not carry.inner_carry.z_H.requires_grad
    (out["logits"].sum() + out["q_halt_logits"].sum()).backward()
    assert m.inner.L_level.layers[0].self_attn.qkv_proj.weight.grad is not None
    assert m.inner.puzzle_emb.local_weights.grad is not None  # sparse embedding gets its gradient locally
    assert m.inner.puzzle_emb.local_ids.tolist() == [0, 1, 2, 3]


def test_bf16_forward_on_cpu():
    m = HRMACT(tiny_config(forward_dtype="bfloat16")).eval()
    batch = {"inputs": torch.randint(0, 7, (2, 9)), "puzzle_identifiers": torch.tensor([0, 4])}
    with torch.inference_mode():
        _, out = m(m.initial_carry(batch), batch)
    assert out["logits"].dtype == torch.bfloat16 and out["q_halt_logits"].dtype == torch.float32
    assert m.inner.embed_tokens.embedding_weight.dtype == torch.float32  # weights stay fp32


@pytest.mark.parametrize(
    "file,total,puzzle",
    [("hrm_deployment_notes.yaml", 27_990_018, 24_574_976), ("hrm_official_default.yaml", 27_276_802, 512)],
)
def test_shipped_config_parameter_counts(file, total, puzzle):
    cfg = load_arch_config(CONFIGS / file)
    counts = expected_param_counts(cfg)
    assert counts["total"] == total and counts["puzzle_embedding"] == puzzle
    if file.startswith("hrm_deployment"):  # "~28M parameters of which ~88% puzzle embeddings"
        assert abs(total - 28e6) < 0.05e6 and round(puzzle / total, 2) == 0.88
        assert (cfg.hidden_size, cfg.H_layers, cfg.L_layers, cfg.vocab_size, cfg.num_puzzle_identifiers) == (256, 2, 2, 12, 95_996)
    else:
        assert (cfg.hidden_size, cfg.H_layers, cfg.L_layers, cfg.num_heads) == (512, 4, 4, 8)
    with torch.device("meta"):
        assert count_parameters(HRMACT(cfg)) == counts


def test_config_errors_are_one_line_user_errors():
    with pytest.raises(UserError, match="unknown key 'bogus'"):
        make_config({**tiny_config().model_dump(), "bogus": 1})
    with pytest.raises(UserError, match="not divisible"):
        make_config({**tiny_config().model_dump(), "num_heads": 3})
    with pytest.raises(UserError, match="unsupported architecture"):
        make_config({**tiny_config().model_dump(), "name": "hrm.hrm_act_v2@HierarchicalReasoningModel_ACTV2"})
    with pytest.raises(UserError, match="learned needs seq_len"):
        make_config({**tiny_config().model_dump(), "pos_encodings": "learned", "seq_len": None})
    assert HRMArchConfig.model_fields["forward_dtype"].default == "bfloat16"


def test_casted_linear_emulates_bf16_without_a_bf16_gemm(monkeypatch):
    """AVX2-only CPUs: bf16 linears run as fp32 GEMMs on bf16 values, the values (and
    gradients) of PyTorch's bf16 GEMM up to summation order."""
    from tinyreason.hrm import layers
    from tinyreason import kernels

    torch.manual_seed(0)
    lin = layers.CastedLinear(32, 24, bias=True)
    torch.nn.init.normal_(lin.bias)
    x0 = torch.randn(5, 32, dtype=torch.bfloat16)
    out = []
    for emulate in (True, False):
        monkeypatch.setitem(kernels.FORCED, "emulate_bf16", emulate)
        x = x0.clone().requires_grad_()
        y = lin(x)
        y.float().square().sum().backward()
        out.append((y.detach(), x.grad, lin.weight.grad.clone()))
        lin.zero_grad()
    for a, e in zip(*out):
        assert a.dtype == e.dtype
        torch.testing.assert_close(a.float(), e.float(), atol=2e-2, rtol=2e-2)
