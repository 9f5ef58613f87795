"""Loading RookWorld samples: text files, JSONL/Parquet with a `text` column, folders, Hub datasets.

Every line is split into (task, prompt, completion) and checked for structure, so a
truncated or foreign file fails with a one-line error naming the file and line instead of
feeding half a sample to training. FENs are checked by shape only; legality is left to the
rewards (building a board per line would triple the load time of a 7M-line dataset).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tinyreason.chess.formats import is_fen_shaped, parse_env, parse_policy
from tinyreason.errors import UserError
from tinyreason.hub import is_repo_id, resolve

DATA_SUFFIXES = (".txt", ".jsonl", ".parquet")
HUB_PATTERNS = ["*.parquet", "*.jsonl"]  # data files only (fnmatch: `*` spans folders)


@dataclass(frozen=True)
class Sample:
    """One RookWorld sample. Policy prompt: everything before `M:`; env prompt: `A: fen+move+history+`."""

    task: Literal["policy", "env"]
    prompt: str
    completion: str

    @property
    def text(self) -> str:
        return self.prompt + self.completion


def split_text(text: str) -> Sample:
    """Split a policy (`P: …M: …`) or environment (`A: …+…+…+…`) text; UserError otherwise."""
    text = text.rstrip("\r\n")
    if text.startswith("P:"):
        cut = text.find("M:")
        if cut < 0:
            raise UserError(f"policy sample without 'M:': {text[:100]!r}")
        return Sample("policy", text[:cut], text[cut:])
    if text.startswith("A:"):
        parts = text.split("+", 3)
        if len(parts) < 4:
            raise UserError(f"environment sample without 'fen+move+history+': {text[:100]!r}")
        return Sample("env", "+".join(parts[:3]) + "+", parts[3])
    raise UserError(f"neither a policy ('P: ') nor an environment ('A: ') sample: {text[:100]!r}")


def check_sample(sample: Sample) -> str | None:
    """Why a sample is structurally broken (truncated, malformed FEN), or None when it is complete."""
    if sample.task == "policy":
        if not is_fen_shaped(sample.prompt[2:].strip()):
            return "malformed FEN in policy prompt"
        parsed = parse_policy(sample.completion)
        if not (parsed.in_order and parsed.moves_well_formed and parsed.evals_well_formed and parsed.best_ok):
            return "incomplete or malformed policy sample (needs M: moves, E: evals, B: move)"
        return None
    parsed = parse_env(sample.prompt, sample.completion)
    if not is_fen_shaped(parsed.prompt.fen):
        return "malformed FEN in environment prompt"
    if len(parsed.fields) != 4 or parsed.reward is None or None in (parsed.terminated, parsed.truncated):
        return "incomplete or malformed environment sample (needs fen+reward+terminated+truncated)"
    if not is_fen_shaped(parsed.fen):
        return "malformed FEN in environment completion"
    return None


def _sample(text: object, where: str) -> Sample:
    if not isinstance(text, str):
        raise UserError(f"{where}: 'text' is not a string ({type(text).__name__})")
    try:
        sample = split_text(text)
    except UserError as e:
        raise UserError(f"{where}: {e}") from None
    problem = check_sample(sample)
    if problem:
        raise UserError(f"{where}: {problem}: {text[:100]!r}")
    return sample


def _texts(path: Path) -> Iterator[tuple[str, object]]:
    """(location, text) for every record of one file."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
            if "text" not in pf.schema_arrow.names:
                raise UserError(f"{path}: no 'text' column (columns: {', '.join(pf.schema_arrow.names)})")
            row = 0
            for batch in pf.iter_batches(columns=["text"], batch_size=8192):
                for text in batch.column(0).to_pylist():
                    row += 1
                    yield f"{path}:row {row}", text
        except (pa.ArrowException, OSError) as e:
            raise UserError(f"{path}: unreadable Parquet file: {str(e).splitlines()[0]}") from None
        return
    try:
        handle = open(path, encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None
    with handle:
        try:
            for n, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                if suffix == ".jsonl":
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise UserError(f"{path}:{n}: invalid JSON ({e.msg}); truncated file?") from None
                    if not isinstance(record, dict) or "text" not in record:
                        raise UserError(f"{path}:{n}: JSON record without a 'text' field")
                    yield f"{path}:{n}", record["text"]
                else:
                    yield f"{path}:{n}", line
        except UnicodeDecodeError:
            raise UserError(f"{path}: not UTF-8 text") from None


def data_files(folder: Path, split: str | None) -> list[Path]:
    """Data files under `folder`; with `split`, those whose name or folder starts with it
    (`data/train-00000-of-00002.parquet`, `test.jsonl`, `train/part0.txt`)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in DATA_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if split is not None:
        files = [p for p in files if any(part.startswith(split) for part in p.relative_to(folder).parts)]
    return files


def load_samples(ref: str | Path, split: str | None = None, limit: int | None = None) -> list[Sample]:
    """Samples from a .txt/.jsonl/.parquet file, a folder of them, or a Hub dataset id."""
    path = Path(ref).expanduser()
    if not path.exists():
        if not is_repo_id(str(ref).split("@", 1)[0]):  # `owner/name` or `owner/name@revision`
            raise UserError(f"data not found: '{ref}' is neither a file/folder nor a Hub dataset id")
        path = resolve(str(ref), allow_patterns=HUB_PATTERNS, repo_type="dataset")
    if path.is_dir():
        files = data_files(path, split)
        if not files:
            what = f" for split '{split}'" if split else ""
            raise UserError(f"no .txt/.jsonl/.parquet data files{what} in {path}")
    else:
        if path.suffix.lower() not in DATA_SUFFIXES:
            raise UserError(f"{path}: unsupported data file (use .txt, .jsonl or .parquet)")
        files = [path]
    samples: list[Sample] = []
    for file in files:
        before = len(samples)
        for where, text in _texts(file):
            if limit is not None and len(samples) >= limit:
                return samples
            samples.append(_sample(text, where))
        if len(samples) == before:
            raise UserError(f"{file}: no samples (empty file)")
    return samples
