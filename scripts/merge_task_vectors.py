"""Task arithmetic: write BASE + sum_i w_i * (MODEL_i - BASE) as a new model folder.

    python scripts/merge_task_vectors.py BASE OUT --add MODEL_1 W_1 [--add MODEL_2 W_2 ...] [--dtype bfloat16]

Ilharco et al. (2023), "Editing models with task arithmetic": the change a fine-tuning run made
(its "task vector", fine-tuned minus base weights) can be added to another fine-tuned descendant of
the same base. scripts/build_embedded_rookworld.sh uses it to add the GRPO stage's change (answers
well formed) to the longer SFT run's change (better chess and next-FEN answers), both made from the
stage-2 weights. Every model must have BASE's architecture (config) and tokenizer vocabulary;
the sum is taken in fp32, in the order the terms are given, and stored in `--dtype`.
"""

from __future__ import annotations

import argparse
import sys

import torch

from tinyreason.errors import UserError
from tinyreason.lm.model import load_model, save_model

# config fields that do not change what the weights compute
_IGNORED = {"_name_or_path", "torch_dtype", "dtype", "transformers_version", "architectures"}


def merge(base: dict[str, torch.Tensor], terms: list[tuple[dict[str, torch.Tensor], float]]) -> dict[str, torch.Tensor]:
    """base + sum_i w_i * (sd_i - base), key by key, in fp32. All state dicts must have base's keys and shapes."""
    out = {}
    for key, b in base.items():
        b = b.float()
        acc = b
        for sd, w in terms:
            if key not in sd or sd[key].shape != b.shape:
                raise UserError(f"models differ at '{key}': a task vector needs the base's architecture")
            acc = acc + w * (sd[key].float() - b)
        out[key] = acc
    return out


def _comparable(config) -> dict:
    return {k: v for k, v in config.to_dict().items() if k not in _IGNORED}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base")
    ap.add_argument("out")
    ap.add_argument("--add", nargs=2, action="append", required=True, metavar=("MODEL", "WEIGHT"),
                    help="a model folder and the weight of its task vector (repeatable)")
    ap.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    args = ap.parse_args(argv)
    try:
        base, tok = load_model(args.base, device="cpu", dtype="float32")
        terms = []
        for ref, weight in args.add:
            model, other_tok = load_model(ref, device="cpu", dtype="float32")
            if _comparable(model.config) != _comparable(base.config):
                raise UserError(f"{ref} has another architecture than {args.base}")
            if other_tok.get_vocab() != tok.get_vocab():
                raise UserError(f"{ref} has another tokenizer than {args.base}")
            terms.append((model.state_dict(), float(weight)))
        base.load_state_dict(merge(base.state_dict(), terms))
    except (UserError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    save_model(base.to(getattr(torch, args.dtype)), tok, args.out)
    print(f"wrote {args.out}: {args.base} + " + " + ".join(f"{w} x ({m} - base)" for m, w in args.add))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
