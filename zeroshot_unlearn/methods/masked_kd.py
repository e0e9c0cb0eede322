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


from .. import seeds
from ..sections import FineTuneSettings, MaskedKDSettings, RetrainSettings
from ..surgery import reset_weights
from .base import ForgetContext, Method, MethodOutput
from .registry import register_method


class RetainedOnly(Method):
    """Train the student on the retained subset with the loss its settings give."""

    needs = frozenset({"retain"})

    def run(self, ctx: ForgetContext) -> MethodOutput:
        stats = ctx.train_on_retained(self.settings_in(ctx.recipe), offset=seeds.RETAINED_ONLY, name=self.name)
        return MethodOutput(ctx.student, timings={self.name: stats.seconds})


@register_method
class MaskedKD(RetainedOnly):
    name = "masked_kd"
    summary = "distillation from the masked teacher"
    settings = MaskedKDSettings


@register_method
class FineTune(RetainedOnly):
    name = "finetune"
    summary = "baseline"
    settings = FineTuneSettings


@register_method
class Retrain(RetainedOnly):
    """The gold standard: a fresh copy of the architecture (re-initialised, seeded) trained with
    cross-entropy on the retained data it is given (recipe section ``retrain``). Meant for the full
    retained training set of a small model (the ``digits`` suite); with a few % of the data it is a
    weak model, not a reference. ``bench`` uses a retrain checkpoint (``--reference``) where one exists."""

    name = "retrain"
    summary = "re-initialise and train on the retained data"
    settings = RetrainSettings

    def run(self, ctx: ForgetContext) -> MethodOutput:
        reset_weights(ctx.student, ctx.seed + seeds.RETRAIN_INIT)
        return super().run(ctx)
