"""`tinyreason` command line: `tinyreason chess …` and `tinyreason hrm …`.

Each subcommand lives in its own module as `main(argv) -> int | None`, imported only when
called (so `tinyreason hrm show` does not import transformers). Bad input raises
`UserError`; it is printed on one line and the exit code is 2.

This is the one place where errors about the user's files and environment become that line:
besides UserError (raised where a user's file is read or written, naming it), an OSError that
names a file (a read-only folder, a parent that is a file, a folder where a file should be,
a full disk) is reported the same way. Nothing else is caught: a bug keeps its traceback.
"""

from __future__ import annotations

import importlib
import sys

from tinyreason import __version__
from tinyreason.errors import UserError

COMMANDS: dict[str, dict[str, tuple[str, str]]] = {
    "chess": {
        "datagen": ("tinyreason.chess.datagen", "generate policy/environment samples with Stockfish"),
        "eval": ("tinyreason.chess.evaluate", "evaluate a model on policy, environment and mate-in-one sets"),
        "sft": ("tinyreason.chess.sft", "supervised (causal LM) training on RookWorld text"),
        "grpo": ("tinyreason.chess.grpo", "GRPO fine-tuning with verifiable chess rewards"),
    },
    "hrm": {
        "predict": ("tinyreason.hrm.predict", "run a checkpoint on an .npz of inputs"),
        "validate": ("tinyreason.hrm.validate", "check a checkpoint against its config"),
        "analyze": ("tinyreason.hrm.analyze", "analyse all step_* checkpoints of a run"),
        "build": ("tinyreason.puzzles.build", "build a dataset in the official HRM layout"),
        "show": ("tinyreason.puzzles.show", "render puzzles (and predictions) as text or PNG"),
        "convert": ("tinyreason.puzzles.jsonl", "convert a dataset between the official layout and JSONL"),
        "eval": ("tinyreason.hrm.evaluate", "evaluate a checkpoint on a dataset with puzzle verification"),
        "ensemble": ("tinyreason.hrm.ensemble", "evaluate an ensemble of checkpoints"),
        "compare": ("tinyreason.hrm.compare", "compare N checkpoints on a dataset"),
        "train": ("tinyreason.hrm.train", "train an HRM (official loss and layout)"),
    },
}


def _usage() -> str:
    lines = [f"tinyreason {__version__}", "usage: tinyreason GROUP COMMAND [options]  (COMMAND --help for options)", ""]
    for group, cmds in COMMANDS.items():
        for name, (_, desc) in cmds.items():
            lines.append(f"  {group + ' ' + name:<16} {desc}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        print(__version__)
        return 0
    group, rest = argv[0], argv[1:]
    if group not in COMMANDS:
        print(f"error: unknown command group '{group}' (chess or hrm)", file=sys.stderr)
        return 2
    if not rest or rest[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if rest[0] not in COMMANDS[group]:
        print(f"error: unknown command '{group} {rest[0]}' (one of: {', '.join(COMMANDS[group])})", file=sys.stderr)
        return 2
    module_name, _ = COMMANDS[group][rest[0]]
    try:
        module = importlib.import_module(module_name)
        return int(module.main(rest[1:]) or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tinyreason ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0
    except OSError as e:
        if e.filename is None or e.errno is None:  # not about a path: not the user's file, keep the traceback
            raise
        print(f"error: {os_error_line(e)}", file=sys.stderr)
        return 2


def os_error_line(e: OSError) -> str:
    """`path: reason` for an OSError about a file (both paths for a rename or link)."""
    paths = f"{e.filename}" + (f" -> {e.filename2}" if e.filename2 is not None else "")
    return f"{paths}: {e.strerror or e}"


if __name__ == "__main__":
    sys.exit(main())
