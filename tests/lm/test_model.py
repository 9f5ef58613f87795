"""Model and tokenizer loading/saving, random init, embedded references."""

import pytest
import torch

from tinyreason import hub
from tinyreason.errors import UserError
from tinyreason.lm.model import load_model, random_model, save_model, train_char_tokenizer


def test_char_tokenizer_roundtrip_and_reload(tmp_path):
    text = "P: 8/8/R7/7p w - - 0 56   M: a4a5\n"
    tok = train_char_tokenizer([text])
    ids = tok(text).input_ids
    assert len(ids) == len(text) and tok.decode(ids) == text
    assert tok.eos_token == "<|endoftext|>" and tok.pad_token_id != tok.eos_token_id
    m = random_model(tok, n_layer=1, n_embd=16, n_head=2, n_positions=32)
    save_model(m, tok, tmp_path / "m")
    assert (tmp_path / "m" / "tokenizer.json").is_file() and (tmp_path / "m" / "model.safetensors").is_file()
    m2, tok2 = load_model(tmp_path / "m", device="cpu")
    assert tok2(text).input_ids == ids
    for a, b in zip(m.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    save_model(m2, tok2, tmp_path / "m")  # overwrite in place, atomically
    assert not list(tmp_path.glob(".m.*"))


def test_embedded_and_missing_refs(tmp_path, monkeypatch):
    tok = train_char_tokenizer(["abc"])
    save_model(random_model(tok, n_layer=1, n_embd=16, n_head=2, n_positions=16), tok, tmp_path / "emb" / "tiny")
    monkeypatch.setattr(hub, "EMBEDDED_DIR", tmp_path / "emb")
    model, tok2 = load_model("embedded:tiny", device="cpu")
    assert model.config.n_layer == 1 and len(tok2) == len(tok)
    with pytest.raises(UserError, match="no embedded model 'nope'"):
        load_model("embedded:nope")
    with pytest.raises(UserError):
        load_model(tmp_path / "does-not-exist")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="config.json"):
        load_model(tmp_path / "empty")
