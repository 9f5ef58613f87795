"""Run folders and output files: one writer at a time, no silent reuse, nothing left half made.

The contract every training command and file generator follows:

- `start_run(folder, resume, overwrite)`: a fresh run in a folder that already holds a run
  (metrics, samples or checkpoints) is refused with one line naming `--resume` and
  `--overwrite`; `--overwrite` empties the folder first. The folder's advisory lock is held
  for the life of the run, temporary files left by a killed save are removed at the start,
  and a run that fails before it logged anything removes the folder it created.
- `hold(lock_file)`: an `fcntl.flock` lock; a second process gets one line naming the holder
  (pid, host, command, start time, written into the lock file). Locks are advisory: they keep
  tinyreason processes apart, not other programs. Only rank 0 of a torchrun job locks.
- `output_file(out)`: the same lock for an output file (`.NAME.lock` beside it); a failure that
  leaves it empty removes it. `new_output_folder(folder)`: a folder the command creates goes
  again when it fails.
- `refuse_same(out, ...)`: an output path equal to an input (resolved, or the same inode
  through a link) is refused before anything is written.
- `prune_steps`: old `step_N` checkpoints go by step number, never the newest.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tinyreason.errors import UserError
from tinyreason.fileio import write_error

LOCK_NAME = ".lock"
RUN_LOGS = ("metrics.jsonl", "samples.jsonl")  # a run's per-step logs
_STEP = re.compile(r"^step_(\d+)$")
_RUN_STEP = re.compile(r"^step_\d+")  # official `step_N` files and our `step_0000010` folders
# temporaries of fileio.atomic_write (`.name.XXXXXXXX.tmp`), lm.model.save_model (`.name.XXXXXXXX/`)
# and its replace step (`.name.old`): dot-prefixed, eight random characters from tempfile
_TEMP = re.compile(r"^\..+\.([a-z0-9_]{8}(\.tmp)?|old)$")


def is_main_rank() -> bool:
    """Rank 0 (or no torchrun): the process that owns a run folder's files and lock."""
    return os.environ.get("RANK", "0") == "0"


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when two paths name one file: equal once resolved, or one inode (hard link)."""
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    if pa.resolve() == pb.resolve():
        return True
    try:
        return os.path.samefile(pa, pb)
    except OSError:  # one of them does not exist yet
        return False


def refuse_same(out: str | os.PathLike | None, flag: str, inputs: dict[str, str | os.PathLike | None]) -> None:
    """UserError when output `out` (given as `flag`) is one of `inputs` (name -> path; None skipped)."""
    if out is None:
        return
    for name, path in inputs.items():
        if path is not None and same_file(out, path):
            raise UserError(f"{flag} {out} is the same file as {name}: writing it would destroy the input; choose another output")


def _holder(lock_file: Path) -> str:
    try:
        info = json.loads(lock_file.read_text(encoding="utf-8"))
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(info["started"]))
        return f"pid {info['pid']} on {info['host']}, started {started}: {info['command']}"
    except (OSError, ValueError, KeyError, TypeError):  # the holder has not written its line yet
        return "another process"


@contextlib.contextmanager
def hold(lock_file: str | os.PathLike, what: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive advisory lock on `lock_file` (created; removed on release).

    A second holder gets a UserError naming the first. After the lock is taken the file is
    checked to still be the one on disk (a releasing holder unlinks it), so two processes can
    never both believe they hold it."""
    lock_file = Path(lock_file)
    while True:
        try:
            lock_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:  # a read-only folder, a parent that is a file
            raise write_error(Path(what), e) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError(f"{what} is in use by {_holder(lock_file)}; wait for it to end or use another path") from None
        try:
            if os.fstat(fd).st_ino == os.stat(lock_file).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # the previous holder removed the file between our open and flock: take the new one
    command = " ".join(shlex.quote(a) for a in ["tinyreason", *sys.argv[1:]]).replace("\n", " ")[:300]
    info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command, "started": time.time()}
    os.ftruncate(fd, 0)
    os.write(fd, (json.dumps(info) + "\n").encode())
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock_file.unlink()
        os.close(fd)


def output_lock(out: str | os.PathLike) -> Path:
    """The lock file of an output file: `.NAME.lock` beside it."""
    out = Path(out)
    return out.with_name(f".{out.name}.lock")


def holds_run(folder: str | os.PathLike) -> bool:
    """True when `folder` holds a run's results: non-empty metrics/samples, or checkpoints."""
    folder = Path(folder)
    if not folder.is_dir():
        return False
    for p in folder.iterdir():
        if p.name in RUN_LOGS and p.is_file() and p.stat().st_size > 0:
            return True
        if p.name in ("checkpoints", "train_state.pt") or _RUN_STEP.match(p.name):
            return True
    return False


def drop_run_logs(folder: str | os.PathLike) -> None:
    """Remove a dead run's per-step logs (`RUN_LOGS`): a resume that finds no complete checkpoint
    starts from step 0, and the old lines would repeat the steps it logs again."""
    for name in RUN_LOGS:
        (Path(folder) / name).unlink(missing_ok=True)


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files/folders a killed save leaves (in `folder` and `folder/checkpoints`)."""
    removed = []
    for d in (Path(folder), Path(folder) / "checkpoints"):
        if not d.is_dir():
            continue
        for p in d.iterdir():
            if _TEMP.match(p.name):
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
                removed.append(p)
    return removed


def clear_folder(folder: Path) -> None:
    """Remove everything in `folder` but its lock file (`--overwrite`). Refused for a folder that
    holds the working directory (`run_dir=.` would empty the user's project)."""
    if Path.cwd().resolve().is_relative_to(folder.resolve()):
        raise UserError(f"--overwrite would empty {folder}, which holds the current folder; give the run its own folder")
    for p in folder.iterdir():
        if p.name != LOCK_NAME:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


@contextlib.contextmanager
def start_run(folder: str | os.PathLike, resume: bool, overwrite: bool) -> Iterator[None]:
    """The run-folder contract for a training run (see the module docstring); rank 0 only.

    `overwrite` wins over `resume`. What a resume without a complete checkpoint does is the
    trainer's part (it starts clean and drops the dead run's metrics)."""
    folder = Path(folder)
    if not is_main_rank():
        yield
        return
    if folder.exists() and not folder.is_dir():
        raise UserError(f"run folder {folder} is a file")
    existed = folder.exists()
    with hold(folder / LOCK_NAME, folder):
        if overwrite and holds_run(folder):
            clear_folder(folder)
        elif not resume and holds_run(folder):
            raise UserError(f"{folder} already holds a run: pass --resume to continue it or --overwrite to start over")
        remove_stale_temps(folder)
        try:
            yield
        except BaseException:
            if not existed and not holds_run(folder):  # failed before logging anything: leave no empty folder
                shutil.rmtree(folder, ignore_errors=True)
            raise


def step_number(path: Path) -> int | None:
    m = _STEP.match(path.name)
    return int(m.group(1)) if m else None


def prune_steps(root: Path, keep: int, newest: Path) -> None:
    """Keep `newest` and the `keep - 1` highest-numbered `step_N` folders below it; remove the rest
    (also any numbered above `newest`: left by a run this one resumed before, now superseded)."""
    top = step_number(newest)
    if top is None:
        raise ValueError(f"not a step_N checkpoint: {newest}")
    older = sorted((n, p) for p in root.iterdir() if p.is_dir() and (n := step_number(p)) is not None and n != top)
    below = [p for n, p in older if n < top]
    above = [p for n, p in older if n > top]
    for p in below[: max(len(below) - (keep - 1), 0)] + above:
        shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def output_file(out: str | os.PathLike, sidecars: tuple[str | os.PathLike, ...] = ()) -> Iterator[None]:
    """Hold `out`'s lock (`.NAME.lock` beside it) while it is written; a run that fails leaving
    it empty removes it and its `sidecars` (state, config), so no empty output stays behind."""
    out = Path(out)
    with hold(output_lock(out), out):
        try:
            yield
        except BaseException:
            if out.is_file() and out.stat().st_size == 0:
                for p in (out, *map(Path, sidecars)):
                    p.unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def new_output_folder(folder: str | os.PathLike) -> Iterator[None]:
    """An output folder this command creates (a dataset) is removed again if the command fails,
    so a failure leaves no empty or half-built folder; an existing folder is left as it is."""
    folder = Path(folder)
    existed = folder.exists()
    try:
        yield
    except BaseException:
        if not existed and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
        raise
