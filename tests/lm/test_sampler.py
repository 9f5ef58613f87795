"""Sampler exactness: log-probs equal a full forward pass; shared prefill equals per-row prefill."""

import pytest
import torch

from tinyreason import kernels
from tinyreason.lm.model import random_model, train_char_tokenizer
from tinyreason.lm.cached_gpt2 import CachedGPT2
from tinyreason.lm.sampler import decode_completions, sample, stop_token_ids


@pytest.fixture(scope="module")
def tiny():
    tok = train_char_tokenizer(["P: rnbqkbnr/pppppppp/8 w KQkq - 0 1 M: e2e4 E: 0.3 B: e2e4", "A: +e2e4+"])
    model = random_model(tok, seed=1, n_layer=2, n_embd=32, n_head=4, n_positions=128).eval()
    return model, tok


def _full_logprobs(model, roll, temperature):
    ids = torch.cat([roll.prompt_ids, roll.completion_ids], 1)
    mask = torch.cat([roll.prompt_mask, roll.completion_mask], 1)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits
    p = roll.prompt_ids.shape[1]
    logits = logits[:, p - 1:-1]
    if temperature > 0:
        logits = logits / temperature
    return torch.log_softmax(logits, -1).gather(-1, roll.completion_ids[..., None])[..., 0]


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, 0, 1.0), (0.7, 5, 0.9), (0.0, 0, 1.0)])
def test_logprobs_match_full_forward_with_left_padding(tiny, temperature, top_k, top_p):
    model, tok = tiny
    prompts = [tok("P: rnbq").input_ids, tok("A: +e2e4+").input_ids, tok("P").input_ids]
    torch.manual_seed(0)
    roll = sample(model, prompts, 3, 12, temperature, top_k, top_p, stop_ids=stop_token_ids(tok, ["\n"]),
                  pad_id=tok.pad_token_id)
    assert roll.completion_ids.shape == (9, roll.completion_mask.shape[1]) and roll.prompt_ids.shape[0] == 9
    ref = _full_logprobs(model, roll, temperature)
    m = roll.completion_mask.bool()
    assert torch.allclose(roll.logprobs[m], ref[m], atol=1e-5)
    assert (roll.logprobs[~m] == 0).all()


def test_greedy_matches_generate(tiny):
    model, tok = tiny
    ids = tok("P: rnbqkb").input_ids
    roll = sample(model, [ids], 1, 10, temperature=0.0, pad_id=tok.pad_token_id)
    ref = model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=10, min_new_tokens=10,
                         pad_token_id=tok.pad_token_id, eos_token_id=None)
    assert roll.completion_ids[0].tolist() == ref[0, len(ids):].tolist()


def test_shared_prefill_equals_per_row_prefill(tiny):
    model, tok = tiny
    prompts = [tok("P: rnbqkbnr").input_ids, tok("A: +").input_ids]
    torch.manual_seed(3)
    a = sample(model, prompts, 4, 10, pad_id=tok.pad_token_id, share_prefix=True)
    torch.manual_seed(3)
    b = sample(model, prompts, 4, 10, pad_id=tok.pad_token_id, share_prefix=False)
    assert torch.equal(a.completion_ids, b.completion_ids)
    assert torch.allclose(a.logprobs, b.logprobs, atol=1e-5)


def test_shared_prefix_attention_with_dropped_rows_equals_per_row_cache(tiny):
    """Shared-prefix decode (one prompt K/V copy per group) with rows and whole groups dropped
    mid-generation gives the per-row-cache result: same tokens, same log-probs."""
    model, tok = tiny
    stops = stop_token_ids(tok, ["e", "4"])
    prompts = [tok(p).input_ids for p in ("P: rnbqkbnr", "A: +", "P: 8/8 w", "A: k+e2")]  # left padding
    runs = []
    for share in (True, False):
        torch.manual_seed(7)
        runs.append(sample(model, prompts, 3, 15, 1.0, stop_ids=stops, pad_id=tok.pad_token_id,
                           share_prefix=share, compact_fraction=0.01))
    a, b = runs
    assert len(set(a.lengths.tolist())) > 2  # rows finished at different steps: groups were split
    assert torch.equal(a.completion_ids, b.completion_ids) and torch.equal(a.truncated, b.truncated)
    assert torch.allclose(a.logprobs, b.logprobs, atol=1e-5)
    m = a.completion_mask.bool()
    assert torch.allclose(a.logprobs[m], _full_logprobs(model, a, 1.0)[m], atol=1e-5)


def test_stop_tokens_masks_and_truncation(tiny):
    model, tok = tiny
    # every token stops: each completion is exactly one token long and complete
    stops = list(range(len(tok)))
    roll = sample(model, [tok("P: ").input_ids], 3, 5, pad_id=tok.pad_token_id, stop_ids=stops)
    assert roll.lengths.tolist() == [1, 1, 1] and not roll.truncated.any()
    assert (roll.completion_ids[:, 1:] == tok.pad_token_id).all()
    # no stop token: every completion runs to the limit and is truncated
    roll = sample(model, [tok("P: ").input_ids], 2, 5, pad_id=tok.pad_token_id, stop_ids=[])
    assert roll.lengths.tolist() == [5, 5] and roll.truncated.all()


def test_finished_rows_are_dropped_without_changing_results(tiny):
    model, tok = tiny
    stops = stop_token_ids(tok, ["e", "4"])  # frequent stops: rows finish at different steps
    prompts = [tok(p).input_ids for p in ("P: rnbq", "A: +e2", "P: 8/8", "A: k", "P: q", "P: 1 w")]
    # greedy: the tokens cannot depend on how the batch is compacted
    a = sample(model, prompts, 1, 15, 0.0, stop_ids=stops, pad_id=tok.pad_token_id, compact_fraction=0.01)
    b = sample(model, prompts, 1, 15, 0.0, stop_ids=stops, pad_id=tok.pad_token_id, compact_fraction=2.0)
    assert torch.equal(a.completion_ids, b.completion_ids) and torch.equal(a.truncated, b.truncated)
    assert torch.allclose(a.logprobs, b.logprobs, atol=1e-5)
    # sampling with compaction: log-probs still exact
    torch.manual_seed(5)
    c = sample(model, prompts, 3, 15, stop_ids=stops, pad_id=tok.pad_token_id, compact_fraction=0.01)
    assert len(set(c.lengths.tolist())) > 1
    m = c.completion_mask.bool()
    assert torch.allclose(c.logprobs[m], _full_logprobs(model, c, 1.0)[m], atol=1e-5)
    texts = decode_completions(tok, c, ["e", "4"])
    assert all("e" not in t and "4" not in t for t in texts)


def test_bf16_sampler_close_to_fp32(tiny):
    model, tok = tiny
    roll = sample(model, [tok("P: rnbq").input_ids], 2, 8, temperature=0.0, pad_id=tok.pad_token_id, dtype=torch.bfloat16)
    ref = _full_logprobs(model, roll, 0.0)
    assert torch.allclose(roll.logprobs, ref, atol=0.1)


@pytest.mark.kernels
def test_bf16_sampler_without_onednn_bf16_gemm(tiny, monkeypatch):
    """On AVX2-only CPUs oneDNN cannot pack bf16: the sampler packs fp32 copies of the bf16
    weights and emulates bf16 (`kernels.emulate_bf16`), with the values of dense bf16 weights."""
    from tinyreason.lm import cached_gpt2

    monkeypatch.setitem(kernels.FORCED, "emulate_bf16", True)
    monkeypatch.setitem(kernels.FORCED, "decode_linear", False)  # oneDNN's linears (the C ones: tests/kernels/test_cext.py)
    model, tok = tiny
    rolls = []
    for emulate in (True, False):
        monkeypatch.setattr(cached_gpt2, "_CASTS", type(cached_gpt2._CASTS)())  # no view packed under another setting
        if not emulate:  # reference: dense bf16 weights through F.linear
            monkeypatch.setattr(kernels, "dnn_pack", lambda w, rows: w)
        rolls.append(sample(model, [tok("P: rnbq").input_ids], 2, 8, temperature=0.0, pad_id=tok.pad_token_id,
                            dtype=torch.bfloat16))
        if emulate:
            net = CachedGPT2.for_model(model, torch.bfloat16, 2)
            assert net.head.dtype == net.layers[0].qkv[0].dtype == torch.float32  # fp32 copies of bf16 values
            assert net.head.is_mkldnn == kernels.choose.onednn_pack(torch.zeros(1))
            w_shape = model.transformer.h[0].attn.c_attn.weight.t().shape  # (3C, C): no other tensor has it
            assert not any(c.shape == w_shape for c in net._copies)  # no bf16 copy beside the fp32 one
    emulated, dense = rolls
    assert torch.equal(emulated.completion_ids, dense.completion_ids)
    assert torch.allclose(emulated.logprobs, dense.logprobs, atol=2e-2)
    assert torch.allclose(emulated.logprobs, _full_logprobs(model, emulated, 0.0), atol=0.1)


def test_prompt_too_long_is_a_user_error(tiny):
    from tinyreason.errors import UserError

    model, tok = tiny
    with pytest.raises(UserError, match="positions"):
        sample(model, [[3] * 120], 1, 20)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("path", ["onednn", "c_linear", "step"])
def test_cached_packed_weights_follow_parameter_updates(tiny, dtype, path, monkeypatch):
    model, tok = tiny
    c_linear = path != "onednn"
    if c_linear and not kernels.compiled():
        pytest.skip("no C compiler: the decode kernels are not built here")
    if c_linear and kernels.mode() == "off":
        pytest.skip("TINYREASON_KERNELS=off: the fast kernels are switched off (make test-plain)")
    if path == "step" and dtype != torch.float32 and (not kernels.bf16_native() or kernels.emulate_bf16()):
        pytest.skip("the one-call decode step in bf16 needs the C kernels' AVX512-BF16 panels")
    monkeypatch.setitem(kernels.FORCED, "decode_linear", c_linear)  # oneDNN's packing or the C linears' panels
    monkeypatch.setitem(kernels.FORCED, "decode_step", path == "step")  # ... per op, or in one call per token
    ids = [tok("P: rnbq").input_ids]
    a = sample(model, ids, 1, 6, temperature=0.0, pad_id=tok.pad_token_id, dtype=dtype)
    before = [t.data_ptr() for t in CachedGPT2.for_model(model, dtype, 1)._copies]
    panels = [w.panels.data_ptr() for w in CachedGPT2.for_model(model, dtype, 1)._panels]
    assert bool(panels) == c_linear
    fc = model.transformer.h[0].mlp.c_fc.weight  # a packed linear weight
    with torch.no_grad():  # an optimizer step changes weights in place
        model.transformer.ln_f.bias.add_(1.0)
        fc.mul_(3.0)
    try:
        b = sample(model, ids, 1, 6, temperature=0.0, pad_id=tok.pad_token_id, dtype=dtype)
        assert [t.data_ptr() for t in CachedGPT2.for_model(model, dtype, 1)._copies] == before  # bf16: refreshed in place
        assert [w.panels.data_ptr() for w in CachedGPT2.for_model(model, dtype, 1)._panels] == panels  # re-packed in place
        assert (CachedGPT2.for_model(model, dtype, 1).step is not None) == (path == "step")
        ref = _full_logprobs(model, b, 0.0)
        tol = 1e-4 if dtype == torch.float32 else 0.1
        assert torch.allclose(b.logprobs, ref, atol=tol) and not torch.allclose(a.logprobs, b.logprobs, atol=tol)
    finally:
        with torch.no_grad():
            model.transformer.ln_f.bias.sub_(1.0)
            fc.div_(3.0)


def test_draw_follows_the_distribution_and_skips_zero_mass():
    from tinyreason.lm.sampler import _draw

    probs = torch.tensor([[0.5, 0.0, 0.3, 0.2, 0.0], [0.0, 0.0, 0.0, 1.0, 0.0]]).repeat(10000, 1)  # (20000, 5)
    tok = _draw(probs, torch.Generator().manual_seed(0))
    first, second = tok[0::2], tok[1::2]
    freq = torch.bincount(first, minlength=5).float() / first.numel()
    assert torch.allclose(freq, probs[0], atol=0.015)
    assert (second == 3).all()
    ones = torch.zeros(3, 5)
    ones[:, 2] = 1.0  # a draw of u that rounds u * total up to the total still lands on the last token with mass
    assert (_draw(ones * 1e-30, torch.Generator().manual_seed(1)) == 2).all()


def test_draw_at_the_top_of_the_cdf_takes_the_last_token_with_mass(monkeypatch):
    from tinyreason.lm import sampler

    monkeypatch.setattr(sampler.torch, "rand", lambda *a, **k: torch.ones(2, 1))  # u * total == total
    probs = torch.tensor([[0.2, 0.8, 0.0, 0.0], [0.1, 0.2, 0.3, 0.4]])
    assert sampler._draw(probs, None).tolist() == [1, 3]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_sampler_follows_a_fused_adamw_step(dtype):
    """The fused AdamW kernel writes parameters without bumping their version counters; the
    trainers' `adamw` bumps them, so the sampler's packed/bf16 copies follow every step (a stale
    copy sampled GRPO rollouts from the step-0 policy)."""
    from tinyreason.lm.optim import adamw

    tok = train_char_tokenizer(["P: rnbqkbnr/pppppppp/8 w KQkq - 0 1 M: e2e4 E: 0.3 B: e2e4"])
    model = random_model(tok, seed=2, n_layer=2, n_embd=32, n_head=4, n_positions=64).eval()
    opt = adamw(model.parameters(), lr=0.05)
    ids = [tok("P: rnbq").input_ids]
    for _ in range(2):
        roll = sample(model, ids, 2, 6, temperature=0.0, pad_id=tok.pad_token_id, dtype=dtype)
        tol = 1e-4 if dtype == torch.float32 else 0.1
        assert torch.allclose(roll.logprobs, _full_logprobs(model, roll, 0.0), atol=tol)
        model.zero_grad()
        model(input_ids=torch.tensor(ids), labels=torch.tensor(ids)).loss.backward()
        versions = [p._version for p in model.parameters()]
        opt.step()
        assert all(p._version > v for p, v in zip(model.parameters(), versions))
