"""``anti_memory``: the project's method. Learned anti-memories, then impair -> repair.

1. Fit the anti-memory generator (recipe ``generator``) against a frozen copy of the
   original model, with kornia augmentation in the loop.
2. Impair: train on retained batches mixed with fresh anti-memories. Anti-memories are
   labelled with their forget class (UNSIR) or pushed to the masked teacher
   (``impair.anti_memory_target``); they pass through BatchNorm in eval mode so
   synthetic statistics never reach the running buffers.
3. Repair: train on the retained subset only (label CE and/or masked distillation).

Each phase's loss is the sum of the terms its settings build (:mod:`.terms`).
"""

from __future__ import annotations

import math
import time
from typing import ClassVar

import torch
import torch.nn as nn

from ... import seeds
from ...data.datasets import iter_batches
from ...generators import create_generator, fit_generator
from ...surgery import recalibrate_batchnorm, shrink_perturb
from ..base import ForgetContext, Method, MethodOutput
from ..registry import register_method
from .channels import forget_channel_indices
from .terms import feature_targets, phase_step, phase_terms


@register_method
class AntiMemory(Method):
    name = "anti_memory"
    summary = "default: anti-memory generator, impair, repair"
    needs = frozenset({"retain"})
    uses_phases = True
    uses_generator = True

    data_free_variant: ClassVar[str | None] = "anti_memory_data_free"
    """The method ``forget_classes`` switches to when called with ``retain=None``."""

    def generator_classes(self, ctx: ForgetContext) -> list[int]:
        """The classes the generator must synthesise (fitted per request for the forget classes)."""
        return ctx.forget

    def generator_config(self, ctx: ForgetContext):
        return ctx.recipe.generator

    def head_memories_per_class(self, ctx: ForgetContext) -> int | None:
        """Head-only runs without retained images: memories to fit per retained class (None: it has images)."""
        return None

    def retained_batches(self, ctx: ForgetContext, cfg, offset: int, augment, generator: nn.Module | None):
        """(next-batch callable, steps, synthetic?) of the retained objective of one phase."""
        stream = ctx.retain_stream(cfg, offset)
        retain_aug = augment if ctx.recipe.retain_augment else (lambda x: x)

        def next_batch():
            x, y = next(stream)
            return retain_aug(x), y
        steps = stream.steps_for(cfg.epochs, ctx.recipe.min_epoch_images, ctx.recipe.max_epoch_images)
        return next_batch, steps, False

    def fitted_generator(self, ctx: ForgetContext, augment) -> nn.Module:
        """A generator of :meth:`generator_classes`, fitted against the original (once: under torchrun
        rank 0 fits it and the other ranks receive it)."""
        classes = self.generator_classes(ctx)
        generator = create_generator(ctx.recipe.generator, num_classes=ctx.num_classes, input_size=ctx.input_size,
                                     mean=ctx.mean, std=ctx.std, forget=classes).to(ctx.device)
        if ctx.runtime.is_main:
            fit_generator(generator, ctx.original, classes, self.generator_config(ctx), augment, progress=ctx.progress)
        ctx.runtime.broadcast_module(generator)
        return generator

    def run(self, ctx: ForgetContext) -> MethodOutput:
        recipe = ctx.recipe
        if recipe.train_scope == "head":
            from .head_only import run_on_head

            return run_on_head(ctx, impair_scale, self.head_memories_per_class(ctx))
        augment = ctx.augment()
        timings: dict[str, float] = {}
        start = time.perf_counter()
        phases = (("impair", recipe.impair, seeds.IMPAIR), ("repair", recipe.repair, seeds.REPAIR))
        ranks_channels = any(cfg.ranks_channels() for _, cfg, _ in phases)
        generator = ctx.generator
        if generator is None and (recipe.impair.anti_memory_batch > 0 or ranks_channels):
            generator = self.fitted_generator(ctx, augment)
        timings["generator"] = time.perf_counter() - start

        needs_features = any(cfg.retained_feature_terms() for _, cfg, _ in phases)
        targets = feature_targets(ctx, [cfg for _, cfg, _ in phases]) if needs_features else None

        for name, cfg, offset in phases:
            next_batch, steps, synthetic = self.retained_batches(ctx, cfg, offset, augment, generator)
            if name == "impair":
                steps = math.ceil(steps * impair_scale(recipe.impair_scaling, len(ctx.forget), len(ctx.retained)))
            rows = forget_channel_indices(ctx, cfg, generator) if cfg.ranks_channels() else None
            shrink_perturb(ctx.student, cfg.perturb_scope, cfg.shrink, cfg.perturb, ctx.seed + offset, rows=rows)
            terms = phase_terms(ctx, cfg, augment=augment, targets=targets, generator=generator)

            def loss_fn(_step: int, cfg=cfg, next_batch=next_batch, synthetic=synthetic, terms=terms) -> torch.Tensor:
                x, y = next_batch()
                step = phase_step(ctx, x, y, synthetic=synthetic, with_original=bool(cfg.retain_feature_weight))
                loss = terms[0](step)
                for term in terms[1:]:
                    loss = loss + term(step)
                return loss

            stats = ctx.train(cfg, steps, loss_fn, name=name)
            if cfg.recalibrate_bn and steps and not synthetic:
                recalibrate_batchnorm(ctx.student, (ctx.runtime.to_device(x) for x, _ in iter_batches(ctx.retain, 256)))
            timings[name] = stats.seconds
        return MethodOutput(ctx.student, generator=generator, timings=timings)


def impair_scale(scaling: str, forget: int, retained: int) -> float:
    """The factor on the impair's steps (recipe key ``impair_scaling``)."""
    if scaling == "none" or forget <= retained:
        return 1.0
    return math.sqrt(forget / retained)
