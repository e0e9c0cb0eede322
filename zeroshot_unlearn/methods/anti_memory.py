"""``anti_memory``: the project's method. Learned anti-memories, then impair -> repair.

1. Fit the anti-memory generator (recipe ``generator``) against a frozen copy of the
   original model, with kornia augmentation in the loop.
2. Impair: train on retained batches mixed with fresh anti-memories. Anti-memories are
   labelled with their forget class (UNSIR) or pushed to the masked teacher
   (``impair.anti_memory_target``); they pass through BatchNorm in eval mode so
   synthetic statistics never reach the running buffers.
3. Repair: train on the retained subset only (label CE and/or masked distillation).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ..engine import frozen_batchnorm, masked_distillation, train_phase
from ..generators import create_generator, fit_generator
from .base import ForgetContext, Method


class AntiMemory(Method):
    name = "anti_memory"
    needs = frozenset({"retain"})
    description = "learned anti-memory generator, impair on anti-memories + retained, repair on retained"

    def run(self, ctx: ForgetContext) -> None:
        recipe = ctx.recipe
        augment = ctx.augment()
        start = time.perf_counter()
        if ctx.generator is None and recipe.impair.anti_memory_batch > 0:
            generator = create_generator(recipe.generator, num_classes=ctx.num_classes, input_size=ctx.input_size,
                                         mean=ctx.mean, std=ctx.std, forget=ctx.forget)
            fit_generator(generator, ctx.original, ctx.forget, recipe.generator, augment, progress=ctx.progress)
            ctx.generator = generator
        ctx.timings["generator"] = time.perf_counter() - start

        forget_t = ctx.forget_tensor
        retain_aug = augment if recipe.retain_augment else (lambda x: x)

        def phase_loss(cfg, stream, with_anti_memories: bool):
            def loss_fn(_step: int) -> torch.Tensor:
                x, y = next(stream)
                x = retain_aug(x)
                loss = ctx.retained_loss(ctx.student(x), x, y, cfg)
                if with_anti_memories:
                    labels = forget_t[torch.randint(len(forget_t), (cfg.anti_memory_batch,))]
                    with torch.no_grad():
                        samples = augment(ctx.generator.sample(labels))
                    with frozen_batchnorm(ctx.student):
                        if cfg.anti_memory_scope == "head":
                            with torch.no_grad():
                                features = ctx.student.forward_features(samples)
                            logits = ctx.student.forward_head(features)
                        else:
                            logits = ctx.student(samples)
                    if cfg.anti_memory_target == "forget_label":
                        anti = F.cross_entropy(logits, labels)
                    else:
                        with torch.no_grad():
                            teacher = ctx.original(samples)
                        anti = masked_distillation(logits, teacher, forget_t, cfg.distill_temperature)
                    loss = loss + cfg.anti_memory_weight * anti
                return loss
            return loss_fn

        for name, cfg, offset in (("impair", recipe.impair, 1), ("repair", recipe.repair, 2)):
            stream = ctx.retain_stream(cfg, offset)
            use_anti = cfg.anti_memory_batch > 0 and ctx.generator is not None
            stats = train_phase(ctx.student, cfg, stream.steps_for(cfg.epochs), phase_loss(cfg, stream, use_anti),
                                name=name, bn_policy=recipe.bn_policy, progress=ctx.progress)
            ctx.timings[name] = stats.seconds
