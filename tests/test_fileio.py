import json

import pytest
import torch

from tinyreason.fileio import atomic_torch_save, atomic_write, atomic_write_json, atomic_write_text


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    p = tmp_path / "a" / "f.txt"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two"
    assert [x.name for x in p.parent.iterdir()] == ["f.txt"]


def test_failed_write_keeps_old_file(tmp_path):
    p = tmp_path / "f.txt"
    atomic_write_text(p, "old")

    def boom(tmp):
        tmp.write_text("partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(p, boom)
    assert p.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_json_handles_numpy_and_torch(tmp_path):
    import numpy as np

    p = atomic_write_json(tmp_path / "m.json", {"a": np.float32(0.5), "b": torch.tensor([1, 2]), "c": np.int64(3)})
    assert json.loads(p.read_text()) == {"a": 0.5, "b": [1, 2], "c": 3}


def test_torch_save_loads_weights_only(tmp_path):
    p = atomic_torch_save({"w": torch.ones(2)}, tmp_path / "s.pt")
    assert torch.equal(torch.load(p, weights_only=True)["w"], torch.ones(2))
