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


def test_written_files_get_the_usual_permissions(tmp_path):
    """Not the 0600 of the temp file: what open(path, "w") would give under the process umask."""
    from tinyreason import fileio

    p = atomic_write_text(tmp_path / "f.txt", "x")
    assert p.stat().st_mode & 0o777 == 0o666 & ~fileio._UMASK


def test_npz_round_trip_and_one_line_errors(tmp_path):
    import numpy as np

    from tinyreason.errors import UserError
    from tinyreason.fileio import atomic_write_npy, atomic_write_npz, read_npz

    p = atomic_write_npz(tmp_path / "a.npz", {"x": np.arange(3), "y": np.ones((2, 2))})
    got = read_npz(p, required=("x",))
    assert p.name == "a.npz" and np.array_equal(got["x"], np.arange(3)) and got["y"].shape == (2, 2)
    assert np.array_equal(np.load(atomic_write_npy(tmp_path / "b.npy", np.arange(4))), np.arange(4))
    (tmp_path / "junk.npz").write_bytes(b"junk")
    (tmp_path / "cut.npz").write_bytes(p.read_bytes()[:100])
    np.savez(tmp_path / "obj.npz", o=np.array([{"a": 1}], dtype=object))
    cases = {
        "junk.npz": "not a zip archive",
        "cut.npz": "not a readable .npz",
        "b.npy": "a single .npy array",
        "obj.npz": "Object arrays cannot be loaded",
        "none.npz": "file not found",
    }
    for name, msg in cases.items():
        with pytest.raises(UserError, match=msg):
            read_npz(tmp_path / name)
    with pytest.raises(UserError, match="has no 'z' array"):
        read_npz(p, required=("z",))


def test_read_json_one_line_errors(tmp_path):
    from tinyreason.errors import UserError
    from tinyreason.fileio import read_json

    assert read_json(atomic_write_json(tmp_path / "ok.json", {"a": [1]})) == {"a": [1]}
    (tmp_path / "bad.json").write_text('{"a": ')
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    for name, msg in (("bad.json", "not valid JSON .* at line 1"), ("bin.json", "not UTF-8"), ("none.json", "file not found")):
        with pytest.raises(UserError, match=msg):
            read_json(tmp_path / name)


def test_write_errors_name_the_target_not_the_temp_file(tmp_path):
    from tinyreason.errors import UserError

    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match=r"cannot write .*file/out.json: .*file is a file, not a folder"):
        atomic_write_json(tmp_path / "file" / "out.json", {})
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(UserError, match=r"cannot write .*folder.json: Is a directory"):
        atomic_write_json(tmp_path / "folder.json", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder.json"]  # no temp file left


def test_torn_torch_files_and_non_utf8_text_are_one_line_errors(tmp_path):
    from tinyreason.errors import UserError
    from tinyreason.fileio import read_text, read_torch, utf8_lines

    p = atomic_torch_save({"w": torch.ones(64)}, tmp_path / "s.pt")
    assert torch.equal(read_torch(p)["w"], torch.ones(64))
    data = p.read_bytes()
    for torn in (data[: len(data) // 2], b"", b"not a torch file"):
        p.write_bytes(torn)
        with pytest.raises(UserError, match=r"s.pt is truncated or corrupt") as err:
            read_torch(p)
        assert "\n" not in str(err.value)
    t = tmp_path / "t.txt"
    t.write_bytes(b"ok\n\xff\xfe\n")
    with pytest.raises(UserError, match="t.txt: not UTF-8 text"):
        read_text(t)
    with open(t, encoding="utf-8") as f, pytest.raises(UserError, match="t.txt: not UTF-8 text"):
        list(utf8_lines(f, t))


def test_a_read_only_folder_is_a_one_line_error(tmp_path, monkeypatch):
    """Fault injection (root ignores folder permissions): the OS refuses the temp file."""
    import errno
    import tempfile

    from tinyreason.errors import UserError

    def refuse(*a, dir=None, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(dir))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(UserError, match=r"cannot write .*ro.json: Permission denied"):
        atomic_write_json(tmp_path / "ro.json", {})
