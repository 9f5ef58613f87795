"""Atomic writes: write to a temp file in the same folder, fsync, then rename over the target.

A reader (or a resumed run) never sees a half-written file, even after a kill. Files get
the permissions a plain `open(path, "w")` would give (0666 minus the umask), not the
private 0600 of the temp file. Also: numpy array files (.npy/.npz) written the same way,
and .npz / JSON / torch state files read back with one-line errors (never unpickling).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)` then rename tmp_path onto `path` (same directory, so atomic).

    An OSError on the way (read-only folder, a parent that is a file, a target that is a
    folder, a full disk) becomes a one-line UserError naming `path`, not the temp file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise write_error(path, e) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        write(tmp_path)
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except OSError as e:
        tmp_path.unlink(missing_ok=True)
        raise write_error(path, e) from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def write_error(path: Path, e: OSError) -> Exception:
    """The UserError for an OSError while writing `path` (the original error when it has no errno)."""
    from tinyreason.errors import UserError

    if e.errno is None:
        return e
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return UserError(f"cannot write {path}: {parent} is a file, not a folder")
            break
    return UserError(f"cannot write {path}: {e.strerror}")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda p: p.write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    """JSON for numpy/torch scalars and paths, which metrics often are."""
    if isinstance(o, os.PathLike):
        return str(o)
    if hasattr(o, "tolist"):  # numpy arrays/scalars and tensors (0-d gives a plain scalar)
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    import torch

    return atomic_write(path, lambda p: torch.save(obj, p))


def atomic_write_npy(path: str | os.PathLike, array: Any) -> Path:
    """np.save through a file object (np.save on a path would append ".npy" to the temp name)."""
    import numpy as np

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array)

    return atomic_write(path, write)


def atomic_write_npz(path: str | os.PathLike, arrays: dict[str, Any]) -> Path:
    """np.savez (uncompressed) of named arrays, atomically."""
    import numpy as np

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    return atomic_write(path, write)


def read_npz(path: str | os.PathLike, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """All arrays of an .npz (no pickles), or UserError naming the file and what is wrong."""
    import zipfile

    import numpy as np

    from tinyreason.errors import UserError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    with open(path, "rb") as f:
        magic = f.read(6)
    try:
        if magic == b"\x93NUMPY":
            raise ValueError("a single .npy array, not an .npz archive")
        if not magic.startswith(b"PK"):
            raise ValueError("not a zip archive")
        z = np.load(path, allow_pickle=False)
        with z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as e:
        why = str(e).strip().splitlines()[0].split(". ")[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path} is not a readable .npz file ({why})") from None
    missing = [k for k in required if k not in arrays]
    if missing:
        raise UserError(f"{path} has no '{missing[0]}' array (found: {', '.join(arrays) or 'nothing'})")
    return arrays


def read_text(path: str | os.PathLike) -> str:
    """A UTF-8 text file's content, or UserError naming the file when its bytes are not UTF-8."""
    from tinyreason.errors import UserError

    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start})") from None


def utf8_lines(handle: Iterable[str], path: str | os.PathLike) -> Iterator[str]:
    """The lines of a file opened with encoding="utf-8", with a UserError naming `path` at the
    first bytes that are not UTF-8 (streams large files, e.g. into csv.reader)."""
    from tinyreason.errors import UserError

    try:
        yield from handle
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None


def read_torch(path: str | os.PathLike, what: str = "state file") -> Any:
    """`torch.load(weights_only=True)` on CPU, or UserError naming the file when it is missing,
    truncated, torn or not a torch file (e.g. a training state after a kill or a bad copy)."""
    import pickle
    import zipfile

    import torch

    from tinyreason.errors import UserError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, ValueError, KeyError, IndexError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        why = str(e).strip().splitlines()[0].split(". ")[0][:200] if str(e).strip() else type(e).__name__
        raise UserError(f"{what} {path} is truncated or corrupt ({why})") from None


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file's content, or UserError naming the file (missing, unreadable text, bad JSON)."""
    from tinyreason.errors import UserError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{path}: not valid JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
