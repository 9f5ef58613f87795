"""`tinyreason hrm convert SRC OUT`: official HRM layout <-> JSONL, decided by what SRC is.

JSONL form: `OUT/{split}.jsonl`, one example per line,

    {"puzzle_id": "<name from identifiers.json>", "input_sequence": [...], "target_sequence": [...],
     "puzzle_identifier": 3, "puzzle_index": 7, "group_index": 2, "example_index": 12}

plus `OUT/metadata.json` ({"identifiers": [...], "<split>": dataset.json contents}). Lines that
share `puzzle_index` form one puzzle and lines that share `group_index` one group; lines
without them are one puzzle and one group each. Without metadata.json the metadata is
inferred (pad/ignore/blank ids 0, vocab = largest token + 1).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from pydantic import Field, ValidationError

from tinyreason.config import StrictModel, parse_command
from tinyreason.errors import UserError
from tinyreason.fileio import atomic_write_json, atomic_write_text, read_json, read_text
from tinyreason.puzzles.dataset import PuzzleDatasetMetadata, example_names, open_split, read_identifiers, write_identifiers, write_split
from tinyreason.runlog import RunDir, console

SPLITS = ("train", "test")


class ConvertConfig(StrictModel):
    """Convert an HRM dataset folder to JSONL files, or a JSONL folder/file back to the layout."""

    src: Path
    out: Path
    vocab_size: int | None = Field(None, description="JSONL -> layout without metadata.json: override the inferred vocab")


def main(argv: list[str]) -> int:
    cfg = parse_command(ConvertConfig, argv, positional=("src", "out"), prog="tinyreason hrm convert")
    if cfg.src.resolve() == cfg.out.resolve():
        raise UserError(f"{cfg.out}: the output folder must differ from the source")
    if any((cfg.src / s / "dataset.json").is_file() for s in SPLITS):
        n = to_jsonl(cfg.src, cfg.out)
        console.print(f"wrote {n} examples as JSONL to {cfg.out}")
    elif cfg.src.suffix == ".jsonl" or (cfg.src.is_dir() and any(cfg.src.glob("*.jsonl"))):
        n = from_jsonl(cfg.src, cfg.out, cfg.vocab_size)
        console.print(f"wrote {n} examples in the HRM layout to {cfg.out}")
    else:
        raise UserError(f"{cfg.src}: neither an HRM dataset folder (train/dataset.json) nor JSONL")
    RunDir(cfg.out).write_config(cfg)
    return 0


def to_jsonl(src: Path, out: Path) -> int:
    identifiers = read_identifiers(src)
    meta: dict = {"identifiers": identifiers}
    total = 0
    for split in SPLITS:
        if not (src / split / "dataset.json").is_file():
            continue
        d = open_split(src, split)
        meta[split] = json.loads(d.metadata.to_json())  # as dataset.json: TRM's total_puzzles only where set
        names = example_names(d, identifiers)
        puzzles = d.example_puzzles(np.arange(len(d)))
        groups = np.searchsorted(d.group_indices, puzzles, side="right") - 1
        lines = []
        for i in range(len(d)):
            rec = {
                "puzzle_id": names[i],
                "input_sequence": d.inputs[i].tolist(),
                "target_sequence": d.labels[i].tolist(),
                "puzzle_identifier": int(d.puzzle_identifiers[puzzles[i]]),
                "puzzle_index": int(puzzles[i]),
                "group_index": int(groups[i]),
                "example_index": i,
            }
            lines.append(json.dumps(rec, separators=(",", ":")))
        atomic_write_text(out / f"{split}.jsonl", "".join(line + "\n" for line in lines))
        total += len(d)
    atomic_write_json(out / "metadata.json", meta)
    return total


def _read_lines(path: Path) -> list[dict]:
    recs = []
    for n, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path} line {n}: not JSON ({e.msg})") from None
        if not isinstance(rec, dict):
            raise UserError(f"{path} line {n}: expected a JSON object, got {type(rec).__name__}")
        for key in ("input_sequence", "target_sequence"):
            if not isinstance(rec.get(key), list) or not all(_is_int(v) and v >= 0 for v in rec[key]):
                raise UserError(f"{path} line {n}: '{key}' must be a list of non-negative integers")
        if "puzzle_identifier" in rec and not (_is_int(rec["puzzle_identifier"]) and rec["puzzle_identifier"] >= 0):
            raise UserError(f"{path} line {n}: 'puzzle_identifier' must be a non-negative integer")
        if not rec["input_sequence"] or len(rec["input_sequence"]) != len(rec["target_sequence"]):
            raise UserError(f"{path} line {n}: input_sequence and target_sequence must be non-empty and of the same length")
        rec["_where"] = f"{path} line {n}"
        recs.append(rec)
    if not recs:
        raise UserError(f"{path}: no examples")
    return recs


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _read_metadata(path: Path) -> dict:
    if not path.is_file():
        return {}
    stored = read_json(path)
    if not isinstance(stored, dict) or not isinstance(stored.get("identifiers", []), list):
        raise UserError(f"{path}: expected {{\"identifiers\": [...], \"<split>\": {{dataset.json fields}}}}")
    return stored


def _same(a: dict, b: dict, key: str) -> bool:
    return key in a and key in b and a[key] == b[key]


def from_jsonl(src: Path, out: Path, vocab_size: int | None = None) -> int:
    files = {src.stem: src} if src.is_file() else {p.stem: p for p in sorted(src.glob("*.jsonl"))}
    meta_path = (src.parent if src.is_file() else src) / "metadata.json"
    stored = _read_metadata(meta_path)
    identifiers: list[str] = list(stored.get("identifiers", ["<blank>"]))
    by_name = {name: i for i, name in enumerate(identifiers)}
    split_recs = {split: _read_lines(path) for split, path in files.items()}
    for recs in split_recs.values():  # give unknown names new identifiers, in order of appearance
        for rec in recs:
            if "puzzle_identifier" not in rec:
                name = str(rec.get("puzzle_id", "<blank>"))
                rec["puzzle_identifier"] = by_name.setdefault(name, len(by_name))
                if rec["puzzle_identifier"] == len(identifiers):
                    identifiers.append(name)
    total = 0
    for split, recs in split_recs.items():
        seq_len = len(recs[0]["input_sequence"])
        for rec in recs:
            if len(rec["input_sequence"]) != seq_len:
                raise UserError(f"{rec['_where']}: sequence length {len(rec['input_sequence'])}, expected {seq_len} as the first line")
        inputs = np.array([r["input_sequence"] for r in recs], dtype=np.int64)
        labels = np.array([r["target_sequence"] for r in recs], dtype=np.int64)
        p_idx, g_idx, ids = [0], [0], []
        for i, rec in enumerate(recs):
            nxt = recs[i + 1] if i + 1 < len(recs) else {}
            if not _same(rec, nxt, "puzzle_index"):  # the puzzle ends here
                p_idx.append(i + 1)
                ids.append(int(rec["puzzle_identifier"]))
                if not _same(rec, nxt, "group_index"):
                    g_idx.append(len(ids))
        vocab = int(max(inputs.max(), labels.max())) + 1
        if split in stored:
            try:
                meta = PuzzleDatasetMetadata.model_validate(stored[split])
            except ValidationError as e:
                raise UserError(f"{meta_path}: invalid '{split}' metadata ({str(e).splitlines()[0]})") from None
        else:
            meta = PuzzleDatasetMetadata(
                pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=vocab_size or vocab, seq_len=seq_len,
                num_puzzle_identifiers=len(identifiers), total_groups=len(g_idx) - 1,
                mean_puzzle_examples=len(recs) / len(ids), sets=["all"],
            )
        if meta.vocab_size < vocab:
            bad = next(r for r in recs if max(r["input_sequence"] + r["target_sequence"]) >= meta.vocab_size)
            raise UserError(f"{bad['_where']}: tokens outside 0..{meta.vocab_size - 1} (vocab_size)")
        bad_id = next((r for r in recs if r["puzzle_identifier"] >= meta.num_puzzle_identifiers), None)
        if bad_id is not None:
            raise UserError(f"{bad_id['_where']}: puzzle_identifier {bad_id['puzzle_identifier']} is outside 0..{meta.num_puzzle_identifiers - 1} (num_puzzle_identifiers)")
        dtype = np.uint8 if meta.vocab_size <= 256 else np.int32
        arrays = {
            "inputs": inputs.astype(dtype), "labels": labels.astype(dtype), "puzzle_identifiers": np.array(ids, dtype=np.int32),
            "puzzle_indices": np.array(p_idx, dtype=np.int32), "group_indices": np.array(g_idx, dtype=np.int32),
        }
        write_split(out, split, arrays, meta)
        total += len(recs)
    write_identifiers(out, identifiers)
    return total


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
