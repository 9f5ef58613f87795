"""Resolve a model reference: a local folder/file, `embedded:<name>[/<file>]`, or a Hub repo id.

`embedded:` names the small models and checkpoints shipped inside the package
(`src/tinyreason/embedded/<name>/`), which is how the offline demo and tests load them.

Hub downloads go through `huggingface_hub.snapshot_download` with restricted patterns
(weights, json configs, tokenizer files; never code, so nothing is ever executed). When
the Hub is unreachable (or `HF_HUB_OFFLINE=1`) and the files are not in the local cache,
the error says so in one line instead of a retry loop and a traceback.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tinyreason.errors import UserError

# Weights, configs and tokenizers only; see module docstring.
MODEL_PATTERNS = [
    "*.safetensors",
    "*.bin",
    "*.json",
    "*.txt",  # merges / vocab files
    "*.model",  # sentencepiece
    "tokenizer*",
]
EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"
EMBEDDED_PREFIX = "embedded:"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_repo_id(ref: str) -> bool:
    return bool(_REPO_ID.match(ref)) and not ref.startswith((".", "/"))


def resolve_embedded(ref: str) -> Path:
    """Local path of `embedded:<name>[/<file>]`; UserError listing what is shipped otherwise."""
    rel = ref[len(EMBEDDED_PREFIX) :].strip("/")
    name = rel.split("/", 1)[0]
    if not name or not (EMBEDDED_DIR / name).is_dir():
        have = sorted(p.name for p in EMBEDDED_DIR.iterdir() if p.is_dir()) if EMBEDDED_DIR.is_dir() else []
        raise UserError(f"no embedded model '{name}' (available: {', '.join(have) or 'none'})")
    path = EMBEDDED_DIR / rel
    if not path.exists():
        raise UserError(f"embedded model '{name}' has no '{rel.split('/', 1)[-1]}'")
    return path


def resolve(
    ref: str | os.PathLike,
    allow_patterns: list[str] | None = None,
    revision: str | None = None,
    repo_type: str = "model",
) -> Path:
    """Return a local path for `ref`: the path itself if it exists, else a Hub snapshot folder.

    `ref` may be `repo_id` or `repo_id@revision`. Raises UserError when it is neither an
    existing path nor a reachable/cached repo.
    """
    if str(ref).startswith(EMBEDDED_PREFIX):
        return resolve_embedded(str(ref))
    path = Path(ref).expanduser()
    if path.exists():
        return path
    ref = str(ref)
    if "@" in ref and revision is None:
        ref, revision = ref.split("@", 1)
    if not is_repo_id(ref):
        raise UserError(f"not found: '{ref}' is neither an existing path nor a Hub repo id (owner/name)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    try:
        local = snapshot_download(
            repo_id=ref,
            revision=revision,
            repo_type=repo_type,
            allow_patterns=allow_patterns or MODEL_PATTERNS,
            local_files_only=offline,
        )
    except LocalEntryNotFoundError:
        why = "HF_HUB_OFFLINE is set" if offline else "the Hub is unreachable"
        raise UserError(
            f"cannot load '{ref}': {why} and it is not in the local Hugging Face cache "
            f"(download it once with network, or pass a local folder)"
        ) from None
    except (RepositoryNotFoundError, GatedRepoError) as e:
        raise UserError(f"cannot load '{ref}' from the Hub: {type(e).__name__} (check the name and your token)") from None
    except RevisionNotFoundError:
        raise UserError(f"cannot load '{ref}': revision '{revision}' not found on the Hub") from None
    except OSError as e:  # connection errors surface as OSError subclasses
        raise UserError(f"cannot load '{ref}' from the Hub: {str(e).splitlines()[0]}") from None
    return Path(local)
