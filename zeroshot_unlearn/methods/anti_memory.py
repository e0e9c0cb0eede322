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

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from .. import seeds
from .._resources import generators_dir
from ..data.datasets import images_at, iter_batches
from ..evaluation import mask_logits
from ..generators import create_generator, fit_generator
from ..generators.amortised import model_id
from ..losses import masked_distillation
from ..surgery import HeadInput, conv_weights_in, frozen_batchnorm, recalibrate_batchnorm, shrink_perturb
from ..sections import DataFreeSettings
from .base import ForgetContext, Method
from .registry import register_method

log = logging.getLogger(__name__)


@dataclass
class FeatureTargets:
    """What the feature-level terms compare the student's penultimate features with, computed once
    from the original model on the retained subset (no forget data)."""

    prototypes: torch.Tensor
    """The original's mean feature of each class (rows of forget classes stay zero: never a target)."""
    centre: torch.Tensor
    """The original's mean feature over the retained subset."""
    spread: torch.Tensor
    """The original features' mean squared distance to ``centre``: the scale of the span term."""
    spans: dict[bool, torch.Tensor]
    """Orthonormal bases (columns) of the span of the original head's retained-class rows, by
    ``span_drop_forget`` (True: without the forget rows' directions), for the phases that use them."""


def feature_targets(ctx: ForgetContext, phases) -> FeatureTargets:
    ctx.require("retain")
    with torch.no_grad(), HeadInput(ctx.original) as captured:
        for x, _ in iter_batches(ctx.retain, 256):
            ctx.original(ctx.runtime.to_device(x))
    feats = torch.cat(captured.values)
    labels = ctx.retain.y.to(ctx.device)
    sums = torch.zeros(ctx.num_classes, feats.shape[1], device=ctx.device).index_add_(0, labels, feats)
    counts = torch.bincount(labels, minlength=ctx.num_classes).clamp(min=1)
    centre = feats.mean(0)
    rows = captured.head.weight.detach()
    spans = {cfg.span_drop_forget: retained_span(rows, ctx.retained, ctx.forget, drop_forget=cfg.span_drop_forget)
             for cfg in phases if cfg.span_weight}
    return FeatureTargets(sums / counts[:, None], centre, (feats - centre).pow(2).sum(1).mean(), spans)


def retained_span(rows: torch.Tensor, retained: list[int], forget: list[int], drop_forget: bool) -> torch.Tensor:
    """Orthonormal basis of the span of the head rows of ``retained`` (optionally minus the parts of the
    ``forget`` rows, centred on the rows' mean, that lie inside it)."""
    basis, _ = torch.linalg.qr(rows[retained].T)
    if not drop_forget:
        return basis
    forget_rows = rows[forget] - rows.mean(0)
    inside, _ = torch.linalg.qr(basis @ (basis.T @ forget_rows.T))
    rest, _, _ = torch.linalg.svd(basis - inside @ (inside.T @ basis), full_matrices=False)
    return rest[:, :basis.shape[1] - len(forget)]


def _feature_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared distance, relative to the targets' mean squared norm (scale-free across models)."""
    return (a - b).pow(2).sum(1).mean() / b.pow(2).sum(1).mean().clamp(min=1e-8)


def feature_objective_loss(cfg, features: torch.Tensor, labels: torch.Tensor, assigned: torch.Tensor,
                           targets: FeatureTargets) -> torch.Tensor:
    """The ``feature_objective`` term on a batch of anti-memory features (``labels``: their forget
    classes, ``assigned``: the retained class the masked teacher gives each)."""
    if cfg.feature_objective == "prototype":
        return _feature_distance(features, targets.prototypes[assigned])
    if cfg.feature_objective == "contract":
        return features.pow(2).sum(1).mean() / targets.prototypes[assigned].pow(2).sum(1).mean().clamp(min=1e-8)
    unit = F.normalize(features, dim=1)
    similarity = unit @ unit.T
    same = (labels[:, None] == labels[None, :]) & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return similarity[same].mean() if same.any() else features.sum() * 0


def anti_memory_loss(ctx: ForgetContext, cfg, augment, targets: FeatureTargets | None) -> torch.Tensor:
    """The anti-memory terms of one step: a fresh batch from the generator, through BatchNorm in eval mode."""
    forget_t = ctx.forget_tensor
    # Under torchrun each rank synthesises its share of the batch (with its own random stream).
    labels = forget_t[torch.randint(len(forget_t), (ctx.runtime.share(cfg.anti_memory_batch),), device=ctx.device)]
    with torch.no_grad():
        samples = augment(ctx.generator.sample(labels))
        teacher = ctx.original(samples)
    with frozen_batchnorm(ctx.student), HeadInput(ctx.student) as captured:
        if cfg.anti_memory_scope == "head":
            with torch.set_grad_enabled(bool(cfg.feature_weight)):
                ctx.student(samples)
            features = captured.value
            logits = captured.head(features.detach())
        else:
            logits = ctx.student(samples)
            features = captured.value
    if cfg.anti_memory_target == "forget_label":
        loss = F.cross_entropy(logits, labels)
    else:
        loss = masked_distillation(logits, teacher, forget_t, cfg.distill_temperature)
    loss = cfg.anti_memory_weight * loss
    if cfg.feature_weight and targets is not None:
        assigned = mask_logits(teacher, forget_t).argmax(1)
        loss = loss + cfg.feature_weight * feature_objective_loss(cfg, features, labels, assigned, targets)
    return loss


class ClassMeanHead:
    """The class-mean-feature classifier (Gao et al., "An Illusion of Unlearning?"): logits are the
    scaled cosine similarities of features to running means of the student's own features per
    retained class, started at the original's."""

    scale = 16.0  # cosine logits lie in [-1, 1]: the scale lets the softmax become confident
    momentum = 0.9

    def __init__(self, targets: FeatureTargets, retained: list[int]):
        self.retained = torch.as_tensor(retained, device=targets.prototypes.device)
        self.means = targets.prototypes[self.retained].clone()
        self.index = torch.full((targets.prototypes.shape[0],), -1, dtype=torch.long, device=self.retained.device)
        self.index[self.retained] = torch.arange(len(retained), device=self.retained.device)

    def loss(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        rows = self.index[labels]
        logits = self.scale * F.normalize(features, dim=1) @ F.normalize(self.means, dim=1).T
        loss = F.cross_entropy(logits, rows)
        with torch.no_grad():
            for row in rows.unique():
                batch_mean = features[rows == row].detach().mean(0)
                self.means[row].mul_(self.momentum).add_(batch_mean, alpha=1 - self.momentum)
        return loss


@torch.no_grad()
def forget_channel_indices(ctx: ForgetContext, cfg, samples: int = 256) -> dict[str, torch.Tensor]:
    """For each convolution in ``cfg.perturb_scope``: the ``perturb_channels`` fraction of its output
    channels with the largest mean absolute activation on anti-memories relative to retained images
    (the original model; the ranking of Class-Discriminative Pruning, estimated without forget data)."""
    ctx.require("retain", "generator")
    convs = conv_weights_in(ctx.original, cfg.perturb_scope)
    activity: dict[str, list[torch.Tensor]] = {name: [] for name in convs}
    hooks = [module.register_forward_hook(lambda _m, _i, out, name=name: activity[name].append(
        out.abs().mean((0, 2, 3)))) for name, module in convs.items()]
    try:
        labels = ctx.forget_tensor[torch.arange(samples, device=ctx.device) % len(ctx.forget)]
        # Seeded: every rank of a torchrun run must rank, and so perturb, the same channels.
        with torch.random.fork_rng(devices=[ctx.device] if ctx.device.type == "cuda" else []):
            torch.manual_seed(ctx.seed + seeds.CHANNEL_RANKING)
            ctx.original(ctx.generator.sample(labels))
        # A seeded draw over the whole subset: retained subsets are stored class by class, so its
        # first rows would be one class.
        rng = torch.Generator().manual_seed(ctx.seed + seeds.CHANNEL_RANKING)
        rows = torch.randperm(len(ctx.retain), generator=rng)[:samples]
        ctx.original(ctx.runtime.to_device(images_at(ctx.retain, rows)))
    finally:
        for hook in hooks:
            hook.remove()
    ranked = {}
    for name, (on_anti_memories, on_retained) in activity.items():
        ratio = on_anti_memories / on_retained.clamp(min=1e-8)
        ranked[name] = ratio.topk(max(1, math.ceil(cfg.perturb_channels * len(ratio)))).indices.cpu()
    return ranked


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

    def retained_batches(self, ctx: ForgetContext, cfg, offset: int, augment):
        """(next-batch callable, steps, synthetic?) of the retained objective of one phase."""
        stream = ctx.retain_stream(cfg, offset)
        retain_aug = augment if ctx.recipe.retain_augment else (lambda x: x)

        def next_batch():
            x, y = next(stream)
            return retain_aug(x), y
        steps = stream.steps_for(cfg.epochs, ctx.recipe.min_epoch_images, ctx.recipe.max_epoch_images)
        return next_batch, steps, False

    def run(self, ctx: ForgetContext) -> None:
        recipe = ctx.recipe
        if recipe.train_scope == "head":
            from .head_only import run_on_head

            run_on_head(ctx, impair_scale, self.head_memories_per_class(ctx))
            return
        augment = ctx.augment()
        start = time.perf_counter()
        phases = (("impair", recipe.impair, seeds.IMPAIR), ("repair", recipe.repair, seeds.REPAIR))
        ranks_channels = any(cfg.ranks_channels() for _, cfg, _ in phases)
        if ctx.generator is None and (recipe.impair.anti_memory_batch > 0 or ranks_channels):
            classes = self.generator_classes(ctx)
            generator = create_generator(recipe.generator, num_classes=ctx.num_classes, input_size=ctx.input_size,
                                         mean=ctx.mean, std=ctx.std, forget=classes).to(ctx.device)
            if ctx.runtime.is_main:  # fitted once; under torchrun the other ranks receive it
                fit_generator(generator, ctx.original, classes, self.generator_config(ctx), augment,
                              progress=ctx.progress)
            ctx.runtime.broadcast_module(generator)
            ctx.generator = generator
        ctx.timings["generator"] = time.perf_counter() - start

        needs_features = any(cfg.retained_feature_terms() for _, cfg, _ in phases)
        targets = feature_targets(ctx, [cfg for _, cfg, _ in phases]) if needs_features else None

        def phase_loss(cfg, next_batch, synthetic: bool, with_anti_memories: bool):
            # Synthetic retained batches (data-free mode) pass BatchNorm in eval mode like anti-memories.
            retained_bn = frozen_batchnorm if synthetic else contextlib.nullcontext
            class_mean_head = ClassMeanHead(targets, ctx.retained) if cfg.class_mean_weight else None

            def loss_fn(_step: int) -> torch.Tensor:
                x, y = next_batch()
                with HeadInput(ctx.student) as student_features, retained_bn(ctx.student):
                    logits = ctx.student(x)
                features = student_features.value
                teacher = None
                if cfg.retain_feature_weight:
                    # One teacher pass gives both the distillation target and the features to hold.
                    with torch.no_grad(), HeadInput(ctx.original) as original_features:
                        teacher = ctx.original(x)
                loss = ctx.retained_loss(logits, x, y, cfg, teacher=teacher)
                if cfg.retain_feature_weight:
                    loss = loss + cfg.retain_feature_weight * _feature_distance(features, original_features.value)
                if cfg.span_weight:
                    offset = features - targets.centre
                    span = targets.spans[cfg.span_drop_forget]
                    outside = offset - offset @ span @ span.T
                    loss = loss + cfg.span_weight * outside.pow(2).sum(1).mean() / targets.spread.clamp(min=1e-8)
                if class_mean_head is not None:
                    loss = loss + cfg.class_mean_weight * class_mean_head.loss(features, y)
                if with_anti_memories:
                    loss = loss + anti_memory_loss(ctx, cfg, augment, targets)
                return loss
            return loss_fn

        for name, cfg, offset in phases:
            next_batch, steps, synthetic = self.retained_batches(ctx, cfg, offset, augment)
            if name == "impair":
                steps = math.ceil(steps * impair_scale(recipe.impair_scaling, len(ctx.forget), len(ctx.retained)))
            rows = forget_channel_indices(ctx, cfg) if cfg.ranks_channels() else None
            shrink_perturb(ctx.student, cfg.perturb_scope, cfg.shrink, cfg.perturb, ctx.seed + offset, rows=rows)
            use_anti = cfg.anti_memory_batch > 0 and ctx.generator is not None
            stats = ctx.train(cfg, steps, phase_loss(cfg, next_batch, synthetic, use_anti), name=name)
            if cfg.recalibrate_bn and steps and not synthetic:
                recalibrate_batchnorm(ctx.student, (ctx.runtime.to_device(x) for x, _ in iter_batches(ctx.retain, 256)))
            ctx.timings[name] = stats.seconds


def impair_scale(scaling: str, forget: int, retained: int) -> float:
    """The factor on the impair's steps (recipe key ``impair_scaling``)."""
    if scaling == "none" or forget <= retained:
        return 1.0
    return math.sqrt(forget / retained)


@register_method
class AntiMemoryDataFree(AntiMemory):
    """Fully data-free: no image at all. The generator is fitted for *every* class (impressions
    with the BatchNorm-statistics prior), its samples of the retained classes stand in for the
    retained data ("memories"), and both phases distil from the masked teacher on them (no labels
    are trusted: a memory is whatever the original model says it is). Memories and anti-memories
    pass BatchNorm in eval mode, so the running statistics stay the original's.

    On models without BatchNorm (LayerNorm ViTs, ConvNeXt) there is no statistics prior; what keeps
    the impressions image-like there is the generator itself (a smooth decoder with a sigmoid
    output), the augmentations in the fitting loop (crops and flips the class must survive) and the
    diversity term. ``data_free.memories_per_epoch`` sets how many memories one phase epoch draws.
    """

    name = "anti_memory_data_free"
    summary = "the default's mode when no retained data is given"
    needs = frozenset()
    settings = DataFreeSettings
    section = "data_free"
    data_free_variant = None
    # 1.5 impair epochs of memories: with the recipe's 1.0 the CIFAR ResNet20 kept Df 2.35-3.15 on
    # {3,7}; 1.5 gave 0.7 (benchmarks/RESULTS.md, data-free section). Off that request the CIFAR ResNets
    # also need a heavier anti-memory weight: their recipe's ``data_free.overrides``.
    recipe_overrides = {"impair.ce_weight": 0.0, "repair.ce_weight": 0.0, "impair.distill_weight": 1.0,
                        "repair.distill_weight": 1.0, "impair.epochs": 1.5}

    def overrides_for(self, recipe) -> dict[str, object]:
        # A recipe can adjust the mode for its family (``data_free.overrides``), e.g. a gentler impair.
        return {**self.recipe_overrides, **self.settings_in(recipe).overrides}

    def generator_classes(self, ctx: ForgetContext) -> list[int]:
        return list(range(ctx.num_classes))

    def generator_config(self, ctx: ForgetContext):
        # The recipe's steps are sized for about two classes; every class gets as many here.
        cfg = ctx.recipe.generator
        steps = max(cfg.steps, math.ceil(cfg.steps * ctx.num_classes / 2))
        shipped = generators_dir() / model_id(ctx.original)
        if shipped.is_dir():  # a fit of 3,000 steps (100 classes) takes minutes that a shipped one saves
            log.warning("data-free mode: fitting the generator for all %d classes (%d steps), but one fitted for "
                        "this model is shipped: generator=%r (CLI --generator) skips the fit",
                        ctx.num_classes, steps, shipped.name)
        else:
            log.info("data-free mode: fitting the generator for all %d classes (%d steps); `zeroshot-unlearn "
                     "generator fit` fits it once per model, and generator= reuses it in every later request",
                     ctx.num_classes, steps)
        return cfg.with_values(steps=steps)

    def head_memories_per_class(self, ctx: ForgetContext) -> int | None:
        return self.settings_in(ctx.recipe).memories_per_class

    def retained_batches(self, ctx: ForgetContext, cfg, offset: int, augment):
        retained = torch.tensor(ctx.retained, device=ctx.device)
        batch = ctx.runtime.share(cfg.batch_size)

        @torch.no_grad()
        def next_batch():
            labels = retained[torch.randint(len(retained), (batch,), device=ctx.device)]
            return augment(ctx.generator.sample(labels)), labels
        memories = self.settings_in(ctx.recipe).memories_per_epoch
        steps = max(1, math.ceil(cfg.epochs * memories / cfg.batch_size)) if cfg.epochs > 0 else 0
        return next_batch, steps, True


@register_method
class AntiMemoryWithoutGenerator(AntiMemory):
    """Ablation: the same impair/repair schedule on retained data only (no anti-memories)."""

    name = "anti_memory_no_generator"
    summary = "the default's schedule without anti-memories"
    uses_generator = False
    data_free_variant = None
    recipe_overrides = {"impair.anti_memory_batch": 0}


@register_method
class AntiMemoryFeatures(AntiMemory):
    """Variant with the representation term: anti-memory features pulled to retained-class
    prototypes, retained features held at the original's (``impair.feature_weight``,
    ``impair.retain_feature_weight``)."""

    name = "anti_memory_features"
    summary = "the default plus representation terms"
    data_free_variant = None
    recipe_overrides = {"impair.feature_weight": 1.0, "impair.retain_feature_weight": 1.0}


@register_method
class UNSIR(AntiMemory):
    """UNSIR as published (Tarun et al., "Fast Yet Effective Machine Unlearning", IEEE TNNLS 2023):
    one learnable error-maximising noise tensor bank per forget class (loss maximised at the forget
    label, with an L2 bound), then one impair epoch on noise labelled with its forget class plus
    retained data (Adam, lr 0.02) and one repair epoch on retained data (Adam, lr 0.01), cross-entropy
    only. One fix to the public notebook: each noise tensor carries its own forget class (the
    notebook labels all noise with class 0, which breaks multi-class requests)."""

    name = "unsir"
    summary = "UNSIR as published"
    uses_generator = False  # its own per-request noise tensors, as published
    data_free_variant = None
    recipe_overrides = {
        "min_epoch_images": 0,  # one pass over the retained subset, whatever its size
        "impair_scaling": "none",  # one impair epoch, as published, whatever the request
        "generator": {"kind": "noise", "objective": "error_max", "steps": 40, "lr": 0.1, "bound_weight": 0.1,
                      "diversity_weight": 0.0, "bn_prior_weight": 0.0},
        "impair": {"epochs": 1.0, "lr": 0.02, "optimizer": "adam", "weight_decay": 0.0, "schedule": "constant",
                   "ce_weight": 1.0, "distill_weight": 0.0, "anti_memory_batch": 64, "anti_memory_weight": 1.0,
                   "anti_memory_target": "forget_label", "anti_memory_scope": "all", "feature_weight": 0.0,
                   "perturb_scope": []},
        "repair": {"epochs": 1.0, "lr": 0.01, "optimizer": "adam", "weight_decay": 0.0, "schedule": "constant",
                   "ce_weight": 1.0, "distill_weight": 0.0, "perturb_scope": []},
    }
