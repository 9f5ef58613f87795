"""Exponential moving average of the trained weights (TRM `models/ema.py::EMAHelper`).

After every optimizer step `shadow <- (1 - rate) * param + rate * shadow`, over the
parameters that require grad; the shadow starts as a copy of the initial parameters.
Buffers are not averaged, as officially: the sparse puzzle-embedding table (trained by
sign-SGD, a buffer) and the z_H / z_L init vectors keep their live values. With
`ema: true` TRM's `pretrain.py` evaluates and saves an EMA copy of the model, so `step_N`
holds the averaged parameters: `averaged_state_dict` builds that state dict.
"""

from __future__ import annotations

import torch

from tinyreason.errors import UserError


class EMA:
    def __init__(self, model: torch.nn.Module, rate: float):
        self.rate = rate
        self.shadow = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for name, p in model.named_parameters():
            if name in self.shadow:
                self.shadow[name].mul_(self.rate).add_(p.detach() * (1.0 - self.rate))

    def averaged_state_dict(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The model's state dict with every averaged parameter replaced by its shadow (buffers live)."""
        return {k: self.shadow.get(k, v) for k, v in model.state_dict().items()}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, shadow: dict[str, torch.Tensor]) -> None:
        """Restore a saved shadow (resume); names and shapes must match the model's."""
        if shadow.keys() != self.shadow.keys():
            raise UserError(f"EMA state does not match the model (parameters differ: {sorted(shadow.keys() ^ self.shadow.keys())[:3]})")
        for name, value in shadow.items():
            self.shadow[name].copy_(value)
