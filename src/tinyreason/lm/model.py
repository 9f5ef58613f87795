"""GPT-2 models and tokenizers: load, save, random init, character-level tokenizer.

Models are plain `transformers.GPT2LMHeadModel`s with the tokenizer saved beside them,
so every checkpoint loads in plain transformers and can be pushed to the Hub. Loading
never executes repository code (`trust_remote_code` is never set) and prefers
safetensors weights.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from tinyreason.device import pick_device, pick_dtype
from tinyreason.errors import UserError
from tinyreason.hub import resolve

from transformers.utils import logging as _hf_logging

_hf_logging.disable_progress_bar()  # per-shard bars on every checkpoint are noise in training logs

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"


def resolve_model_dir(ref: str | os.PathLike) -> Path:
    """Local folder for `ref`: a folder, `embedded:<name>` (shipped with the package) or a Hub id."""
    path = resolve(ref)
    if not path.is_dir():
        raise UserError(f"model reference '{ref}' is a file; pass the folder holding config.json")
    return path


def load_model(
    ref: str | os.PathLike, device: str = "auto", dtype: str = "float32"
) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerFast]:
    """Load (model, tokenizer) from a folder, `embedded:<name>` or a Hub id.

    `dtype` is the dtype of the weights: trainers keep fp32 weights and use bf16 autocast
    (`tinyreason.device.autocast`); bf16 weights are for inference only.
    """
    path = resolve_model_dir(ref)
    if not (path / "config.json").is_file():
        raise UserError(f"{path} has no config.json (not a Hugging Face model folder)")
    torch_dtype = pick_dtype(dtype)
    has_st = any(path.glob("*.safetensors"))
    try:
        model = GPT2LMHeadModel.from_pretrained(
            path, dtype=torch_dtype, use_safetensors=has_st, trust_remote_code=False
        )
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load model from {path}: {str(e).splitlines()[0]}") from None
    model.to(pick_device(device))
    return model, load_tokenizer(path)


def load_tokenizer(ref: str | os.PathLike) -> PreTrainedTokenizerFast:
    """The fast tokenizer saved with a model (a pad token is set to EOS when missing, as for GPT-2)."""
    path = resolve_model_dir(ref)
    try:
        tok = AutoTokenizer.from_pretrained(path, use_fast=True, trust_remote_code=False)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load tokenizer from {path}: {str(e).splitlines()[0]}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def save_model(
    model: GPT2LMHeadModel,
    tokenizer: PreTrainedTokenizerFast,
    out_dir: str | os.PathLike,
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Save model (safetensors) and tokenizer with `save_pretrained`, atomically.

    Everything is written to a temporary sibling folder which is then renamed onto
    `out_dir`, so a kill never leaves a half-written checkpoint under the final name.
    `extra(folder)` may add files (e.g. the training state) before the rename.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        # a loading flag (set by transformers under HF_HUB_OFFLINE), not a property of the tokenizer
        tokenizer.init_kwargs.pop("local_files_only", None)
        tokenizer.save_pretrained(tmp)
        if extra is not None:
            extra(tmp)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _replace_dir(src: Path, dst: Path) -> None:
    """Rename `src` onto `dst` (an existing `dst` is moved aside first, then removed)."""
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dst, old)
        os.replace(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dst)


def random_model(
    tokenizer: PreTrainedTokenizerFast | None = None, seed: int = 0, **config: int | float | str
) -> GPT2LMHeadModel:
    """A randomly initialised GPT-2 (GPT2Config defaults = the 124M model unless overridden).

    With a tokenizer, vocab size and special ids follow it.
    """
    if tokenizer is not None:
        config.setdefault("vocab_size", len(tokenizer))
        config.setdefault("bos_token_id", tokenizer.eos_token_id)
        config.setdefault("eos_token_id", tokenizer.eos_token_id)
        if tokenizer.pad_token_id is not None:
            config.setdefault("pad_token_id", tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPT2LMHeadModel(GPT2Config(**config))


def train_char_tokenizer(texts: Iterable[str], extra_chars: str = "\n") -> PreTrainedTokenizerFast:
    """A character-level tokenizer over the characters of `texts` plus `extra_chars` (newline:
    it ends every RookWorld sample and stops generation).

    Built with the `tokenizers` library (WordLevel over single characters, no
    normalisation), with `<|endoftext|>` as BOS/EOS, `<pad>` and `<unk>`. `save_pretrained`
    writes it as `tokenizer.json`, which `AutoTokenizer` loads back.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    chars = sorted(set("".join(texts)) | set(extra_chars))
    if not chars:
        raise UserError("cannot train a character tokenizer on empty text")
    vocab = {EOS_TOKEN: 0, PAD_TOKEN: 1, UNK_TOKEN: 2}
    for ch in chars:
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([EOS_TOKEN, PAD_TOKEN, UNK_TOKEN])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=EOS_TOKEN, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN, unk_token=UNK_TOKEN
    )


def count_params(model: torch.nn.Module, exclude_position_embeddings: bool = True) -> int:
    """Parameters that cost matmul FLOPs per token (for MFU): all but GPT-2's position table.

    The tied token embedding is counted once: it is the LM-head matmul.
    """
    n = sum(p.numel() for p in model.parameters())
    wpe = getattr(getattr(model, "transformer", None), "wpe", None)
    if exclude_position_embeddings and wpe is not None:
        n -= wpe.weight.numel()
    return n
