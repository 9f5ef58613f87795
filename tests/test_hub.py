import pytest

from tinyreason.errors import UserError
from tinyreason.hub import is_repo_id, resolve


def test_local_path_is_returned_as_is(tmp_path):
    assert resolve(tmp_path) == tmp_path
    f = tmp_path / "step_1"
    f.write_bytes(b"x")
    assert resolve(str(f)) == f


def test_repo_id_detection():
    assert is_repo_id("jrahn/RookWorld-LM-124M")
    assert not is_repo_id("./local/dir") and not is_repo_id("/abs/path") and not is_repo_id("nofolder")


def test_offline_uncached_repo_gives_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UserError, match="HF_HUB_OFFLINE is set and it is not in the local Hugging Face cache"):
        resolve("jrahn/definitely-not-cached-model")


def test_missing_local_path_that_is_not_a_repo_id():
    with pytest.raises(UserError, match="neither an existing path nor a Hub repo id"):
        resolve("./does/not/exist")


def test_embedded_reference_resolves_inside_the_package(monkeypatch, tmp_path):
    from tinyreason import hub

    (tmp_path / "tiny" / "data").mkdir(parents=True)
    monkeypatch.setattr(hub, "EMBEDDED_DIR", tmp_path)
    assert resolve("embedded:tiny") == tmp_path / "tiny"
    assert resolve("embedded:tiny/data") == tmp_path / "tiny" / "data"
    with pytest.raises(UserError, match=r"no embedded model 'nope' \(available: tiny\)"):
        resolve("embedded:nope")
    with pytest.raises(UserError, match="has no 'step_9'"):
        resolve("embedded:tiny/step_9")
