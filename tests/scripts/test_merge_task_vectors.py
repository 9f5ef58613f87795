"""scripts/merge_task_vectors.py: base + sum_i w_i (model_i - base), and its refusals."""

from __future__ import annotations

import pytest
import torch

from tinyreason.errors import UserError
from tinyreason.lm.model import load_model, random_model, save_model, train_char_tokenizer

from script_module import load_script

mtv = load_script("scripts/merge_task_vectors.py")

TINY = dict(n_layer=1, n_embd=16, n_head=2, n_positions=32)


def test_merge_is_the_weighted_sum_of_task_vectors():
    base = {"w": torch.tensor([1.0, 2.0]), "b": torch.tensor([0.0])}
    a = {"w": torch.tensor([3.0, 2.0]), "b": torch.tensor([1.0])}
    c = {"w": torch.tensor([1.0, 6.0]), "b": torch.tensor([-1.0])}
    assert torch.equal(mtv.merge(base, [(a, 0.0)])["w"], base["w"])
    assert torch.equal(mtv.merge(base, [(a, 1.0)])["w"], a["w"])
    got = mtv.merge(base, [(a, 0.5), (c, 1.0)])
    assert torch.equal(got["w"], torch.tensor([2.0, 6.0])) and torch.equal(got["b"], torch.tensor([-0.5]))


def test_merge_refuses_another_shape():
    with pytest.raises(UserError, match="architecture"):
        mtv.merge({"w": torch.zeros(2)}, [({"w": torch.zeros(3)}, 1.0)])


def _saved(path, seed, tok, **over):
    save_model(random_model(tok, seed=seed, **{**TINY, **over}), tok, path)
    return path


def test_main_writes_the_merged_model(tmp_path, capsys):
    tok = train_char_tokenizer(["abc def"])
    base, a, c = (_saved(tmp_path / n, s, tok) for n, s in (("base", 0), ("a", 1), ("c", 2)))
    assert mtv.main([str(base), str(tmp_path / "out"), "--add", str(a), "0.75", "--add", str(c), "1",
                     "--dtype", "float32"]) == 0
    out, _ = load_model(tmp_path / "out", device="cpu")
    sds = [load_model(p, device="cpu")[0].state_dict() for p in (base, a, c)]
    for key, got in out.state_dict().items():
        b, x, y = (sd[key] for sd in sds)
        assert torch.allclose(got, b + 0.75 * (x - b) + (y - b), atol=1e-6), key
    assert "0.75 x" in capsys.readouterr().out


def test_main_refuses_another_architecture_with_exit_2(tmp_path, capsys):
    tok = train_char_tokenizer(["abc def"])
    base, wide = _saved(tmp_path / "base", 0, tok), _saved(tmp_path / "wide", 1, tok, n_embd=32)
    assert mtv.main([str(base), str(tmp_path / "out"), "--add", str(wide), "1"]) == 2
    assert "another architecture" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
