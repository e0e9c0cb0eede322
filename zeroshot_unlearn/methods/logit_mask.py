"""``logit_mask``: hide the forget classes at the output, change no weight. A sanity baseline.

It scores Df = 0 and Dr at the ceiling, so it shows which metrics only look at the output:
rebound, relearn time, probe-Df and membership inference measure the weights under the
mask (``LogitMask.unmasked``), as an attacker holding the weights would.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from ..evaluation import mask_logits
from .base import ForgetContext, Method, MethodOutput
from .registry import register_method


class LogitMask(nn.Module):
    def __init__(self, model: nn.Module, forget: Sequence[int]):
        super().__init__()
        self.unmasked = model
        self.forget = list(forget)
        self.pretrained_cfg = getattr(model, "pretrained_cfg", {})
        # A new Module starts in training mode; take the wrapped model's, or the first
        # ``wrapper.train(was_training)`` would switch the wrapped model to training mode.
        self.training = model.training

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mask_logits(self.unmasked(x), self.forget)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.unmasked.forward_features(x)

    def forward_head(self, features: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.unmasked.forward_head(features, **kwargs)


@register_method
class LogitMaskMethod(Method):
    name = "logit_mask"
    summary = "hides the classes at the output only"
    needs = frozenset()

    def run(self, ctx: ForgetContext) -> MethodOutput:
        return MethodOutput(LogitMask(ctx.student, ctx.forget))
