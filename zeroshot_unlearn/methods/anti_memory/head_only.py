"""The project's method with only the classifier head trained (recipe ``train_scope: head``).

At ``depth="output"`` a run changes what the head makes of the backbone's features; where the backbone
stays the original's, every image's features are the same before and after, so they are computed once
(through a DataLoader with workers for images on disk) and the phases train the head on them: a
224-px ImageNet model on a CPU forgets in the time one pass over its retained images takes, instead of
the many passes full training would. The anti-memories are made at the head's input (generator
``kind: features``) or, with an image generator, as images whose features are computed once. Both
phases run the shared engine on the head's parameters, with the same retained objective (label
cross-entropy and/or distillation from the masked teacher) and anti-memory term as the full method;
there is no augmentation (each image's features are computed once, as the model sees it at test
time) and no BatchNorm statistic changes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from typing import Iterator

import torch
import torch.nn as nn

from ... import seeds
from ...data.datasets import iter_batches
from ...engine import BatchStream
from ...generators import create_generator, fit_generator
from ...generators.features import FeatureGenerator, FeaturePrior, fit_feature_generator, head_input_prior
from ...losses import masked_distillation
from ...surgery import HeadInput, classifier_head, fresh_rows
from ..base import ForgetContext, MethodOutput

log = logging.getLogger(__name__)

POOL_PER_CLASS = 64
"""Anti-memory images per forget class whose features an image generator's pool holds."""


@contextlib.contextmanager
def head_only(model: nn.Module) -> Iterator[nn.Module]:
    """Every parameter of ``model`` but its head's frozen (restored after); yields the head."""
    head = classifier_head(model)
    own = {id(p) for p in head.parameters()}
    frozen = [p for p in model.parameters() if id(p) not in own and p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield head
    finally:
        for p in frozen:
            p.requires_grad_(True)


@torch.no_grad()
def head_inputs(model: nn.Module, batches, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(features at the head's input, labels) of every batch, the model in eval mode."""
    was_training = model.training
    model.eval()
    features, labels = [], []
    try:
        with HeadInput(model) as captured:
            for x, y in batches:
                model(x.to(device))
                features.append(captured.value.float())
                labels.append(torch.as_tensor(y).to(device))
    finally:
        model.train(was_training)
    return torch.cat(features), torch.cat(labels)


class FeaturePool:
    """Anti-memories of an image generator, as the features the original's backbone gives them."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor):
        self.features, self.labels = features, labels
        self.rows = {int(c): torch.nonzero(labels == c).flatten() for c in labels.unique()}

    def sample(self, labels: torch.Tensor) -> torch.Tensor:
        picks = [self.rows[int(c)][torch.randint(len(self.rows[int(c)]), ())] for c in labels.tolist()]
        return self.features[torch.stack(picks)]


def feature_memories(ctx: ForgetContext, per_class: int) -> tuple[torch.Tensor, torch.Tensor, FeaturePrior]:
    """The data-free mode's stand-in for the retained features: ``per_class`` vectors per retained class
    at the head's input, fitted like the anti-memories under the prior the model's last norm implies
    (:func:`~zeroshot_unlearn.generators.features.head_input_prior`). Returns (features, labels, the prior)."""
    prior = head_input_prior(ctx.original, ctx.input_size, seed=ctx.seed)
    log.info("data-free memories under the %s prior (the head reads its %s output)", prior.norm, prior.reads)
    memories = FeatureGenerator(ctx.num_classes, ctx.retained, prior.mean, prior.std, per_class,
                                seed=ctx.seed + seeds.REPAIR, emit=prior.emit).to(ctx.device)  # its own torch.Generator
    fit_feature_generator(memories, classifier_head(ctx.original), ctx.recipe.generator, progress=ctx.progress,
                          desc="memory features")
    labels = torch.as_tensor(ctx.retained, device=ctx.device).repeat_interleave(per_class)
    with torch.no_grad():
        return memories.all_features(), labels, prior


def run_on_head(ctx: ForgetContext, impair_scale, memories_per_class: int | None = None) -> MethodOutput:
    """Features once, anti-memories at the head's input, then impair and repair on the head alone.

    ``memories_per_class``: set by the data-free mode, which reads no retained image; the retained features
    are then memories fitted at the head's input (:func:`feature_memories`)."""
    recipe = ctx.recipe
    timings: dict[str, float] = {}
    start = time.perf_counter()
    emit = None
    if memories_per_class is not None:
        features, labels, prior = feature_memories(ctx, memories_per_class)
        mean, std, emit = prior.mean, prior.std, prior.emit
        timings["memories"] = time.perf_counter() - start
    else:
        features, labels = head_inputs(ctx.original, iter_batches(ctx.retain, 32), ctx.device)
        mean, std = features.mean(0), features.std(0)
        timings["features"] = time.perf_counter() - start
    original_head = classifier_head(ctx.original)
    start = time.perf_counter()
    sampler, generator = None, ctx.generator
    if recipe.impair.anti_memory_batch > 0:
        if recipe.generator.kind == "features":
            generator = FeatureGenerator(ctx.num_classes, ctx.forget, mean, std, recipe.generator.samples_per_class,
                                         seed=ctx.seed + seeds.IMPAIR, emit=emit).to(ctx.device)
            fit_feature_generator(generator, original_head, recipe.generator, progress=ctx.progress)
            sampler = generator
        else:  # an image generator: fitted as in the full method, its pool's features computed once
            augment = ctx.augment()
            generator = create_generator(recipe.generator, num_classes=ctx.num_classes, input_size=ctx.input_size,
                                         mean=ctx.mean, std=ctx.std, forget=ctx.forget).to(ctx.device)
            fit_generator(generator, ctx.original, ctx.forget, recipe.generator, augment, progress=ctx.progress)
            pool_labels = ctx.forget_tensor.repeat_interleave(POOL_PER_CLASS)
            with torch.no_grad():
                batches = ((augment(generator.sample(pool_labels[i:i + 64])), pool_labels[i:i + 64])
                           for i in range(0, len(pool_labels), 64))
                sampler = FeaturePool(*head_inputs(ctx.original, batches, ctx.device))
    timings["generator"] = time.perf_counter() - start

    with head_only(ctx.student) as head:
        for name, cfg, offset in (("impair", recipe.impair, seeds.IMPAIR), ("repair", recipe.repair, seeds.REPAIR)):
            stream = BatchStream(features, labels, cfg.batch_size, ctx.seed + offset, ctx.runtime)
            steps = stream.steps_for(cfg.epochs, recipe.min_epoch_images, recipe.max_epoch_images)
            if name == "impair":
                steps = math.ceil(steps * impair_scale(recipe.impair_scaling, len(ctx.forget), len(ctx.retained)))
            with_anti_memories = cfg.anti_memory_batch > 0 and sampler is not None

            def loss_fn(_step: int, cfg=cfg, stream=stream, with_anti_memories=with_anti_memories) -> torch.Tensor:
                x, y = next(stream)
                with torch.no_grad():
                    teacher = original_head(x)
                loss = ctx.retained_loss(head(x), x, y, cfg, teacher=teacher)
                if with_anti_memories:
                    forget_t = ctx.forget_tensor
                    picked = forget_t[torch.randint(len(forget_t), (cfg.anti_memory_batch,), device=ctx.device)]
                    with torch.no_grad():
                        samples = sampler.sample(picked)
                        target = original_head(samples)
                    loss = loss + cfg.anti_memory_weight * masked_distillation(head(samples), target, forget_t,
                                                                               cfg.distill_temperature)
                return loss

            timings[name] = ctx.train(cfg, steps, loss_fn, name=name).seconds
        if recipe.forget_rows == "fresh":
            fresh_rows(head, ctx.forget, ctx.seed + seeds.FRESH_ROWS)
    return MethodOutput(ctx.student, generator=generator, timings=timings)
