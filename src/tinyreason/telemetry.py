"""`report_to`: the numeric fields of every metrics.jsonl record, also sent to TensorBoard or W&B.

`chess sft`, `chess grpo` and `hrm train` take `report_to: none | tensorboard | wandb`; the
run folder (`runlog.RunDir.report_to`) opens the writer on rank 0 and forwards each record
it logs, so what a tracker shows is what metrics.jsonl holds: each int/float field (nested
dicts flattened with `/`; null, NaN, text and lists left out) at the record's `step`.
Records without a step are not sent.

- tensorboard: `torch.utils.tensorboard.SummaryWriter` into `<run>/tensorboard`, flushed
  after each record so a killed run keeps what it logged. A resumed run purges the events
  past its checkpoint step, as `RunDir.truncate_after` does for metrics.jsonl.
- wandb: one W&B run per process under `<run>/wandb`, offline (no network, no login) unless
  `WANDB_MODE` says otherwise; `wandb sync <run>/wandb/offline-run-*` uploads it later.
  Its console capture is off (rich's progress bars write to the terminal directly).

Both packages are optional extras (`pip install 'tinyreason[tensorboard]'` / `[wandb]`);
asking for a missing one is a one-line UserError naming the extra.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Any, Literal

from tinyreason.errors import UserError

ReportTo = Literal["none", "tensorboard", "wandb"]
REPORT_TO_HELP = "also log metrics to TensorBoard (<run>/tensorboard) or W&B (<run>/wandb, offline unless WANDB_MODE is set)"


def scalars(record: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The record's finite numbers by flattened name (`a/b` for nested dicts), without `step` and `time`."""
    out: dict[str, float] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(scalars(value, name + "/"))
        elif (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
              and name not in ("step", "time")):
            out[name] = float(value)
    return out


class TensorBoardWriter:
    def __init__(self, folder: Path, purge_step: int | None):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError("report_to: tensorboard needs the tensorboard package: pip install 'tinyreason[tensorboard]'") from None
        self.writer = SummaryWriter(str(folder / "tensorboard"), purge_step=purge_step)

    def log(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbWriter:
    def __init__(self, folder: Path, config: dict[str, Any], project: str | None, name: str | None):
        try:
            import wandb
        except ImportError:
            raise UserError("report_to: wandb needs the wandb package: pip install 'tinyreason[wandb]'") from None
        try:
            self.run = wandb.init(project=project or "tinyreason", name=name or folder.name, dir=str(folder),
                                  config=config, mode=os.environ.get("WANDB_MODE") or "offline", reinit="create_new",
                                  settings=wandb.Settings(console="off"))
        except wandb.Error as e:  # e.g. WANDB_MODE=online without a login
            raise UserError(f"report_to: wandb could not start a run: {str(e).splitlines()[0] if str(e) else e!r}") from None

    def log(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)  # a second record at the same step joins that step's row

    def close(self) -> None:
        self.run.finish()


def open_writer(report_to: ReportTo, folder: Path, config: dict[str, Any], project: str | None = None,
                name: str | None = None, resumed_at: int | None = None) -> TensorBoardWriter | WandbWriter | None:
    """The writer `report_to` asks for (None for "none"); `resumed_at`: the checkpoint step a resumed run continues from."""
    if report_to == "tensorboard":
        return TensorBoardWriter(folder, None if resumed_at is None else resumed_at + 1)
    if report_to == "wandb":
        return WandbWriter(folder, config, project, name)
    return None
