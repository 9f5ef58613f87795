"""Loaders: RookWorld text, JSONL, Parquet, folders with splits, Hub layout; clear errors on bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tinyreason.chess.data import Sample, load_samples, split_text
from tinyreason.errors import UserError
from tinyreason.hub import resolve

ROOKWORLD = Path(__file__).parents[1] / "fixtures" / "rookworld"
ENV_LINE = ("A: rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1+e2e4+e2e4+"
            "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1+0.001+0+0")


def _policy_lines(n: int) -> list[str]:
    return (ROOKWORLD / "rook_val_400.txt").read_text(encoding="utf-8").splitlines()[:n]


def test_split_text_policy_and_env():
    line = _policy_lines(1)[0]
    s = split_text(line + "\n")
    assert s.task == "policy" and s.prompt == line[:92] and s.completion.startswith("M: ") and s.text == line
    e = split_text(ENV_LINE)
    assert e.task == "env" and e.prompt.endswith("+e2e4+e2e4+") and e.completion.endswith("+0.001+0+0")
    assert e.text == ENV_LINE
    for bad in ["hello", "P: fen without moves", "A: fen+e2e4"]:
        with pytest.raises(UserError):
            split_text(bad)


def test_load_rookworld_text_file_and_limit():
    samples = load_samples(ROOKWORLD / "rook_val_400.txt")
    assert len(samples) == 400 and all(isinstance(s, Sample) and s.task == "policy" for s in samples)
    assert len(load_samples(str(ROOKWORLD / "rook_val_400.txt"), limit=7)) == 7


def test_jsonl_parquet_and_folder_splits(tmp_path):
    lines = _policy_lines(6) + [ENV_LINE]
    root = tmp_path / "ds"
    (root / "data").mkdir(parents=True)
    pq.write_table(pa.table({"text": lines[:4]}), root / "data" / "train-00000-of-00001.parquet")
    (root / "data" / "test-00000-of-00001.jsonl").write_text(
        "".join(json.dumps({"text": t, "other": 1}) + "\n" for t in lines[4:]), encoding="utf-8")
    (root / ".cache").mkdir()
    (root / ".cache" / "junk.txt").write_text("not a sample\n")
    train = load_samples(root, split="train")
    test = load_samples(root, split="test")
    assert [s.text for s in train] == lines[:4] and [s.text for s in test] == lines[4:]
    assert test[-1].task == "env"
    assert len(load_samples(root)) == 7
    with pytest.raises(UserError, match="no .txt/.jsonl/.parquet data files for split 'validation'"):
        load_samples(root, split="validation")


def test_hub_dataset_id_read_offline_from_the_hf_cache(tmp_path, monkeypatch):
    # A snapshot laid out as huggingface_hub caches `jrahn/rookworld_7m` (HF_HUB_OFFLINE=1 in conftest):
    # the real hub.resolve -> snapshot_download(repo_type="dataset") path finds it without network.
    import huggingface_hub.constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    store = tmp_path / "hub" / "datasets--jrahn--rookworld_7m"
    snap = store / "snapshots" / commit
    (snap / "data").mkdir(parents=True)
    (store / "refs").mkdir()
    (store / "refs" / "main").write_text(commit)
    pq.write_table(pa.table({"text": _policy_lines(3)}), snap / "data" / "train-00000-of-00002.parquet")
    pq.write_table(pa.table({"text": [ENV_LINE]}), snap / "data" / "test-00000-of-00001.parquet")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert len(load_samples("jrahn/rookworld_7m", split="train")) == 3
    assert load_samples("jrahn/rookworld_7m@main", split="test")[0].task == "env"
    with pytest.raises(UserError, match="HF_HUB_OFFLINE"):  # a model repo of that name is not cached
        resolve("jrahn/rookworld_7m")


def test_hub_offline_and_not_cached_is_a_user_error():
    with pytest.raises(UserError, match="HF_HUB_OFFLINE"):
        load_samples("nobody-xyz/no-such-dataset-tinyreason")
    with pytest.raises(UserError, match="HF_HUB_OFFLINE"):  # a pinned revision is a Hub id too
        load_samples("nobody-xyz/no-such-dataset-tinyreason@v1")
    with pytest.raises(UserError, match="neither a file/folder nor a Hub dataset id"):
        load_samples("./missing/file.txt")


def test_empty_truncated_and_malformed_files_name_file_and_line(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(UserError, match=r"empty\.txt: no samples"):
        load_samples(empty)
    lines = _policy_lines(3)
    truncated = tmp_path / "cut.txt"
    truncated.write_text("\n".join(lines[:2]) + "\n" + lines[2][:120])  # killed mid-write
    with pytest.raises(UserError, match=r"cut\.txt:3: incomplete or malformed policy sample"):
        load_samples(truncated)
    cut_env = tmp_path / "env.txt"
    cut_env.write_text(ENV_LINE + "\n" + ENV_LINE[:-4] + "\n")
    with pytest.raises(UserError, match=r"env\.txt:2: incomplete or malformed environment sample"):
        load_samples(cut_env)
    badjson = tmp_path / "x.jsonl"
    badjson.write_text(json.dumps({"text": lines[0]}) + "\n" + '{"text": "P: ab')
    with pytest.raises(UserError, match=r"x\.jsonl:2: invalid JSON"):
        load_samples(badjson)
    nocol = tmp_path / "x.parquet"
    pq.write_table(pa.table({"prompt": ["a"]}), nocol)
    with pytest.raises(UserError, match="no 'text' column"):
        load_samples(nocol)
    garbage = tmp_path / "g.parquet"
    garbage.write_bytes(b"PAR1 not really")
    with pytest.raises(UserError, match="unreadable Parquet"):
        load_samples(garbage)
    bad_fen = tmp_path / "fen.txt"
    bad_fen.write_text(lines[0] + "\n" + lines[1].replace("/", "/9", 1) + "\n")
    with pytest.raises(UserError, match=r"fen\.txt:2: malformed FEN in policy prompt"):
        load_samples(bad_fen)
    bad_env_fen = tmp_path / "envfen.txt"
    bad_env_fen.write_text(ENV_LINE.replace(" w KQkq", " x KQkq", 1) + "\n")
    with pytest.raises(UserError, match=r"envfen\.txt:1: malformed FEN in environment prompt"):
        load_samples(bad_env_fen)
    bad_env_out = tmp_path / "envout.txt"
    bad_env_out.write_text(ENV_LINE.replace(" b KQkq - 0 1+", " b KQkq - 0+", 1) + "\n")
    with pytest.raises(UserError, match=r"envout\.txt:1: malformed FEN in environment completion"):
        load_samples(bad_env_out)
    foreign = tmp_path / "f.txt"
    foreign.write_text("hello world\n")
    with pytest.raises(UserError, match=r"f\.txt:1: neither a policy"):
        load_samples(foreign)
    csv = tmp_path / "y.csv"
    csv.write_text("text\n")
    with pytest.raises(UserError, match="unsupported data file"):
        load_samples(csv)
