from __future__ import annotations

import json

import numpy as np
import pytest

from puzzle_paths import DATASETS, HRM_DATASETS, TRM_DATASETS
from tinyreason.cli import main
from tinyreason.puzzles.dataset import open_split, read_identifiers


@pytest.mark.parametrize("name", DATASETS)
def test_layout_to_jsonl_and_back_is_identical(name, tmp_path):
    src = HRM_DATASETS / name
    assert main(["hrm", "convert", str(src), str(tmp_path / "jsonl")]) == 0
    first = json.loads((tmp_path / "jsonl" / "test.jsonl").read_text().splitlines()[0])
    assert {"puzzle_id", "input_sequence", "target_sequence"} <= set(first)
    assert main(["hrm", "convert", str(tmp_path / "jsonl"), str(tmp_path / "back")]) == 0
    assert read_identifiers(tmp_path / "back") == read_identifiers(src)
    for split in ("train", "test"):
        a, b = open_split(tmp_path / "back", split), open_split(src, split)
        assert a.metadata == b.metadata
        for field in ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), field


@pytest.mark.parametrize("root", [TRM_DATASETS / "arc-trm-aug3", HRM_DATASETS / "arc-aug3"])
def test_dataset_json_round_trips_with_and_without_trm_total_puzzles(root, tmp_path):
    assert main(["hrm", "convert", str(root), str(tmp_path / "jsonl")]) == 0
    assert main(["hrm", "convert", str(tmp_path / "jsonl"), str(tmp_path / "back")]) == 0
    for split in ("train", "test"):
        assert (tmp_path / "back" / split / "dataset.json").read_bytes() == (root / split / "dataset.json").read_bytes()
        assert np.array_equal(open_split(tmp_path / "back", split).labels, open_split(root, split).labels)


def test_plain_jsonl_without_metadata(tmp_path, capsys):
    lines = [
        {"puzzle_id": "a", "input_sequence": [1, 2, 3], "target_sequence": [1, 2, 4]},
        {"puzzle_id": "b", "input_sequence": [1, 1, 3], "target_sequence": [1, 5, 4]},
        {"puzzle_id": "a", "input_sequence": [3, 2, 1], "target_sequence": [4, 2, 1]},
    ]
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert main(["hrm", "convert", str(tmp_path / "test.jsonl"), str(tmp_path / "out")]) == 0
    d = open_split(tmp_path / "out", "test")
    assert read_identifiers(tmp_path / "out") == ["<blank>", "a", "b"]
    assert d.puzzle_identifiers.tolist() == [1, 2, 1] and d.metadata.vocab_size == 6
    assert d.metadata.total_groups == 3 and d.metadata.seq_len == 3
    (tmp_path / "test.jsonl").write_text(json.dumps(lines[0]) + "\n" + '{"input_sequence": [1]}\n')
    assert main(["hrm", "convert", str(tmp_path / "test.jsonl"), str(tmp_path / "out2")]) == 2
    assert "test.jsonl line 2" in capsys.readouterr().err


@pytest.mark.parametrize(
    "line,msg",
    [
        ("[1, 2]", "line 2: expected a JSON object, got list"),
        ('{"input_sequence": [1, true], "target_sequence": [1, 2]}', "line 2: 'input_sequence' must be a list of non-negative integers"),
        ('{"input_sequence": [1, 2], "target_sequence": [1, -2]}', "line 2: 'target_sequence' must be a list of non-negative integers"),
        ('{"input_sequence": [], "target_sequence": []}', "line 2: input_sequence and target_sequence must be non-empty"),
        ('{"input_sequence": [1, 2], "target_sequence": [1, 2], "puzzle_identifier": 9}', "line 2: puzzle_identifier 9 is outside 0..1"),
    ],
)
def test_bad_jsonl_lines_exit_2_naming_the_line(tmp_path, capsys, line, msg):
    good = json.dumps({"puzzle_id": "a", "input_sequence": [1, 2], "target_sequence": [1, 3]})
    (tmp_path / "test.jsonl").write_text(good + "\n" + line + "\n")
    assert main(["hrm", "convert", str(tmp_path / "test.jsonl"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"test.jsonl {msg}" in err and "Traceback" not in err


def test_broken_metadata_json_and_vocab_override(tmp_path, capsys):
    (tmp_path / "test.jsonl").write_text(json.dumps({"input_sequence": [1, 5], "target_sequence": [1, 2]}) + "\n")
    assert main(["hrm", "convert", str(tmp_path / "test.jsonl"), str(tmp_path / "out"), "--vocab-size", "4"]) == 2
    assert "test.jsonl line 1: tokens outside 0..3" in capsys.readouterr().err
    (tmp_path / "metadata.json").write_text("{oops")
    assert main(["hrm", "convert", str(tmp_path / "test.jsonl"), str(tmp_path / "out")]) == 2
    assert "metadata.json: not valid JSON" in capsys.readouterr().err
