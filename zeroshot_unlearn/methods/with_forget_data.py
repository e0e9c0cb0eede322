"""Baselines that read forget-class images. They exist to be compared against, in ``bench`` and
research code; ``forget_classes`` runs them only when handed ``forget_data`` explicitly.

Each step pairs a retained batch (cross-entropy) with a batch of forget images; the recipe
section named after the method (:class:`ForgetDataSettings`) sets the schedule, ``forget_batch``
and ``forget_weight``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import seeds
from ..sections import ForgetDataSettings
from .base import ForgetContext, Method, MethodOutput
from .registry import register_method


class _ForgetDataBaseline(Method):
    needs = frozenset({"retain", "forget"})
    settings = ForgetDataSettings

    def forget_term(self, ctx: ForgetContext, logits: torch.Tensor, y: torch.Tensor,
                    rng: torch.Generator) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def run(self, ctx: ForgetContext) -> MethodOutput:
        cfg = self.settings_in(ctx.recipe)
        retained = ctx.retain_stream(cfg, offset=seeds.FORGET_BASELINE_RETAINED)
        forget = ctx.forget_stream(cfg.forget_batch, offset=seeds.FORGET_BASELINE_FORGET)
        augment = ctx.retained_augment()
        rng = torch.Generator().manual_seed(ctx.seed)

        def loss_fn(_step: int) -> torch.Tensor:
            x, y = next(retained)
            loss = F.cross_entropy(ctx.student(augment(x)), y)
            xf, yf = next(forget)
            return loss + cfg.forget_weight * self.forget_term(ctx, ctx.student(augment(xf)), yf, rng)

        stats = ctx.train(cfg, retained.steps_for(cfg.epochs), loss_fn, name=self.name)
        return MethodOutput(ctx.student, timings={self.name: stats.seconds})


@register_method
class GradientAscent(_ForgetDataBaseline):
    """Gradient ascent on forget images alongside descent on retained ones ("NegGrad+", as compared in
    Kurmanji et al., NeurIPS 2023). The forget loss is ascended only up to twice the loss of a
    uniform guess (2 ln K): past that its gradient is cut, so the term cannot diverge."""

    name = "gradient_ascent"
    summary = "baseline"

    def forget_term(self, ctx, logits, y, rng):
        return -F.cross_entropy(logits, y).clamp(max=2 * math.log(ctx.num_classes))


@register_method
class RandomLabel(_ForgetDataBaseline):
    """Forget images relabelled with a random retained class, trained with the retained data
    (the relabelling baseline of Graves et al., "Amnesiac Machine Learning", AAAI 2021)."""

    name = "random_label"
    summary = "baseline"

    def forget_term(self, ctx, logits, y, rng):
        retained = torch.tensor(ctx.retained)
        labels = retained[torch.randint(len(retained), (len(y),), generator=rng)].to(ctx.device)
        return F.cross_entropy(logits, labels)
