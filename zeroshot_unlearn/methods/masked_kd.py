"""Retained-data-only baselines: one loop, the recipe section named after the method sets the loss.

``masked_kd``: distil the original into a copy on retained images with the forget logits removed
from the teacher. No generator, no synthetic data: the reference of ``../shared/MEASUREMENTS.md``
("masked distillation, gentle": T 8, SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 128,
4 epochs). It reaches Df 0 at output level; what it leaves in the representation is what the
anti-memory generator has to beat.

``finetune``: cross-entropy on retained images only, relying on catastrophic forgetting (the
"Fine-tune" baseline of Golatkar et al., CVPR 2020, and Kurmanji et al., NeurIPS 2023 (SCRUB)).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import seeds
from ..sections import RetainedPhase
from ..surgery import reset_weights
from .base import ForgetContext, Method
from .registry import register_method


@dataclass(frozen=True)
class MaskedKDSettings(RetainedPhase):
    """``masked_kd``: MEASUREMENTS.md's gentle masked distillation (T 8, SGD lr 0.01, 4 epochs)."""

    epochs: float = 4.0
    ce_weight: float = 0.0
    distill_weight: float = 1.0
    distill_temperature: float = 8.0


@dataclass(frozen=True)
class FineTuneSettings(RetainedPhase):
    """``finetune``: cross-entropy on retained images, the same budget as ``masked_kd``."""

    epochs: float = 4.0
    lr: float = 0.02


@dataclass(frozen=True)
class RetrainSettings(RetainedPhase):
    """``retrain``: from scratch on the retained data given."""

    epochs: float = 30.0
    lr: float = 0.05


class RetainedOnly(Method):
    """Train the student on the retained subset with the loss its settings give."""

    needs = frozenset({"retain"})

    def run(self, ctx: ForgetContext) -> None:
        stats = ctx.train_on_retained(self.settings_in(ctx.recipe), offset=seeds.RETAINED_ONLY, name=self.name)
        ctx.timings[self.name] = stats.seconds


@register_method
class MaskedKD(RetainedOnly):
    name = "masked_kd"
    settings = MaskedKDSettings


@register_method
class FineTune(RetainedOnly):
    name = "finetune"
    settings = FineTuneSettings


@register_method
class Retrain(RetainedOnly):
    """The gold standard: a fresh copy of the architecture (re-initialised, seeded) trained with
    cross-entropy on the retained data it is given (recipe section ``retrain``). Meant for the full
    retained training set of a small model (the ``digits`` suite); with a few % of the data it is a
    weak model, not a reference. ``bench`` uses a retrain checkpoint (``--reference``) where one exists."""

    name = "retrain"
    settings = RetrainSettings

    def run(self, ctx: ForgetContext) -> None:
        reset_weights(ctx.student, ctx.seed + seeds.RETRAIN_INIT)
        super().run(ctx)
