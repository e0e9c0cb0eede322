"""``masked_kd``: distil the original into a copy on retained images, forget logits removed from the teacher.

No generator and no synthetic data: the reference of ``../shared/MEASUREMENTS.md`` ("masked
distillation, gentle": T 8, SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 128, 4 epochs,
horizontal flips). It reaches Df 0 at output level; what it leaves in the representation is
what the anti-memory generator has to beat. Settings: the recipe's ``masked_kd`` section.
"""

from __future__ import annotations

from ..engine import train_phase
from .base import ForgetContext, Method


class MaskedKD(Method):
    name = "masked_kd"
    needs = frozenset({"retain"})
    description = "distillation on retained images from the original with the forget logits masked"

    def run(self, ctx: ForgetContext) -> None:
        cfg = ctx.recipe.masked_kd
        stream = ctx.retain_stream(cfg, offset=3)
        augment = ctx.augment() if ctx.recipe.retain_augment else (lambda x: x)

        def loss_fn(_step: int):
            x, y = next(stream)
            x = augment(x)
            return ctx.retained_loss(ctx.student(x), x, y, cfg)

        stats = train_phase(ctx.student, cfg, stream.steps_for(cfg.epochs), loss_fn, name="masked_kd",
                            bn_policy=ctx.recipe.bn_policy, progress=ctx.progress)
        ctx.timings["masked_kd"] = stats.seconds
