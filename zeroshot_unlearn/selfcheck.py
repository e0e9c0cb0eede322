"""The run checks its own forgetting before it returns, without any forget-class image.

A run that did not forget must never look like success. The original model is inverted into
class impressions of each forget class (:func:`~zeroshot_unlearn.audit.images.invert_classes`:
pixels optimised until the original calls them that class, under shifts and a smoothness and
BatchNorm-statistics prior; nothing of the anti-memory generator, which the new model was trained
against). The impressions the original assigns to their class with high confidence are shown to the
new model: if it still calls many of them a forget class, the classes were not forgotten.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import torch
import torch.nn as nn

from .recipes import SelfCheckConfig


@dataclass(frozen=True)
class SelfCheck:
    """What the check measured. Rates are percent of the original's confident impressions."""

    impressions: int
    """Impressions the original assigns to their forget class with at least ``min_confidence``."""
    original_forget_rate: float
    """How many of them the original calls a forget class (100 by construction, unless none qualified)."""
    forget_rate: float
    """How many of them the new model calls a forget class."""
    max_forget_rate: float
    passed: bool | None
    """None: inconclusive, the original recognised none of its own impressions (raise ``self_check.steps``)."""
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else round(v, 3) if isinstance(v, float) else v)
                for k, v in asdict(self).items()}

    def describe(self) -> str:
        if self.passed is None:
            return ("inconclusive: the original model assigned none of its class impressions to a forget class "
                    "with the required confidence (raise self_check.steps)")
        return (f"the new model still calls {self.forget_rate:.1f}% of {self.impressions} class impressions of the "
                f"forget classes a forget class (the original: {self.original_forget_rate:.1f}%; allowed: "
                f"{self.max_forget_rate:g}%)")


def impressions_of(original: nn.Module, classes: Sequence[int], cfg: SelfCheckConfig, input_size, mean, std, *,
                   seed: int) -> torch.Tensor:
    """Impressions of ``classes`` that ``original`` assigns to their class with ``cfg.min_confidence``,
    normalised for the model."""
    from .audit.images import invert_classes

    pixels = invert_classes(original, list(classes), input_size, mean, std, per_class=cfg.impressions_per_class,
                            steps=cfg.steps, seed=seed)
    device = next(original.parameters()).device
    x = ((pixels - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)).to(device)
    labels = torch.tensor([c for c in classes for _ in range(cfg.impressions_per_class)], device=device)
    with torch.no_grad():
        confidence = original(x).softmax(1).gather(1, labels[:, None]).squeeze(1)
    return x[confidence >= cfg.min_confidence]


def _forget_rate(model: nn.Module, x: torch.Tensor, forget: torch.Tensor) -> float:
    if len(x) == 0:
        return math.nan
    with torch.no_grad():
        predicted = model(x).argmax(1)
    return float(torch.isin(predicted, forget).float().mean() * 100)


def check_forgetting(original: nn.Module, unlearned: nn.Module, forget: Sequence[int], cfg: SelfCheckConfig,
                     input_size, mean, std, *, seed: int) -> SelfCheck:
    """Run the check (both models in eval mode; neither is modified). When no impression is confident
    enough the check is inconclusive (``passed`` None, rates NaN): it says nothing either way."""
    import time

    start = time.perf_counter()
    modes = [m.training for m in unlearned.modules()]
    unlearned.eval()
    try:
        x = impressions_of(original, forget, cfg, input_size, mean, std, seed=seed)
        forget_t = torch.as_tensor(list(forget), device=x.device)
        before = _forget_rate(original, x, forget_t)
        after = _forget_rate(unlearned, x, forget_t)
    finally:
        for module, mode in zip(unlearned.modules(), modes):
            module.training = mode
    passed = None if math.isnan(after) else after <= cfg.max_forget_rate
    return SelfCheck(len(x), before, after, cfg.max_forget_rate, passed, time.perf_counter() - start)


__all__ = ["SelfCheck", "check_forgetting", "impressions_of"]
