"""The terms of the anti-memory method's phase loss, each an object built from the phase's settings.

A phase's loss on one step is the sum of its terms, in the order :func:`phase_terms` lists them: the
retained objective (label cross-entropy and/or distillation from the masked teacher), then the
representation terms the settings turn on (retained features held at the original's, features kept in
the span of the retained head rows, the class-mean-feature head), then the anti-memory term. A term
whose weight is 0 is not built, so a phase pays only for what it reads.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...data.datasets import iter_batches
from ...evaluation import mask_logits
from ...losses import masked_distillation
from ...surgery import HeadInput, frozen_batchnorm
from ..base import ForgetContext


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


def feature_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared distance, relative to the targets' mean squared norm (scale-free across models)."""
    return (a - b).pow(2).sum(1).mean() / b.pow(2).sum(1).mean().clamp(min=1e-8)


def feature_objective_loss(cfg, features: torch.Tensor, labels: torch.Tensor, assigned: torch.Tensor,
                           targets: FeatureTargets) -> torch.Tensor:
    """The ``feature_objective`` term on a batch of anti-memory features (``labels``: their forget
    classes, ``assigned``: the retained class the masked teacher gives each)."""
    if cfg.feature_objective == "prototype":
        return feature_distance(features, targets.prototypes[assigned])
    if cfg.feature_objective == "contract":
        return features.pow(2).sum(1).mean() / targets.prototypes[assigned].pow(2).sum(1).mean().clamp(min=1e-8)
    unit = F.normalize(features, dim=1)
    similarity = unit @ unit.T
    same = (labels[:, None] == labels[None, :]) & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return similarity[same].mean() if same.any() else features.sum() * 0


def anti_memory_loss(ctx: ForgetContext, cfg, augment, targets: FeatureTargets | None,
                     generator: nn.Module) -> torch.Tensor:
    """The anti-memory terms of one step: a fresh batch from ``generator``, through BatchNorm in eval mode."""
    forget_t = ctx.forget_tensor
    # Under torchrun each rank synthesises its share of the batch (with its own random stream).
    labels = forget_t[torch.randint(len(forget_t), (ctx.runtime.share(cfg.anti_memory_batch),), device=ctx.device)]
    with torch.no_grad():
        samples = augment(generator.sample(labels))
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


# --------------------------------------------------------------------------- the terms of one phase


@dataclass
class Step:
    """What one training step's terms read: the retained batch, the student's logits and penultimate
    features on it, and (when a term holds features) the original's logits and features on it."""

    x: torch.Tensor
    y: torch.Tensor
    logits: torch.Tensor
    features: torch.Tensor
    teacher: torch.Tensor | None = None
    original_features: torch.Tensor | None = None


class Term(Protocol):
    def __call__(self, step: Step) -> torch.Tensor: ...


@dataclass
class RetainedObjective:
    """Label cross-entropy and/or masked distillation on the retained batch (``ForgetContext.retained_loss``)."""

    ctx: ForgetContext
    cfg: object

    def __call__(self, step: Step) -> torch.Tensor:
        return self.ctx.retained_loss(step.logits, step.x, step.y, self.cfg, teacher=step.teacher)


@dataclass
class HoldFeatures:
    """``retain_feature_weight``: the retained images' features stay where the original puts them."""

    weight: float

    def __call__(self, step: Step) -> torch.Tensor:
        return self.weight * feature_distance(step.features, step.original_features)


@dataclass
class StayInSpan:
    """``span_weight``: the features' offset from the retained centre stays in the span of the retained head rows."""

    weight: float
    centre: torch.Tensor
    span: torch.Tensor
    spread: torch.Tensor

    def __call__(self, step: Step) -> torch.Tensor:
        offset = step.features - self.centre
        outside = offset - offset @ self.span @ self.span.T
        return self.weight * outside.pow(2).sum(1).mean() / self.spread.clamp(min=1e-8)


@dataclass
class ClassMeanTerm:
    """``class_mean_weight``: the retained images classified by the class-mean-feature head."""

    weight: float
    head: ClassMeanHead

    def __call__(self, step: Step) -> torch.Tensor:
        return self.weight * self.head.loss(step.features, step.y)


@dataclass
class AntiMemories:
    """The anti-memory term: a fresh batch of ``generator`` samples of the forget classes (:func:`anti_memory_loss`)."""

    ctx: ForgetContext
    cfg: object
    augment: object
    targets: FeatureTargets | None
    generator: nn.Module

    def __call__(self, step: Step) -> torch.Tensor:
        return anti_memory_loss(self.ctx, self.cfg, self.augment, self.targets, self.generator)


def phase_terms(ctx: ForgetContext, cfg, *, augment, targets: FeatureTargets | None,
                generator: nn.Module | None) -> list[Term]:
    """The terms of a phase with settings ``cfg``, in the order they are summed; the anti-memory term where
    the phase draws anti-memories (``anti_memory_batch > 0``) and there is a ``generator``."""
    terms: list[Term] = [RetainedObjective(ctx, cfg)]
    if cfg.retain_feature_weight:
        terms.append(HoldFeatures(cfg.retain_feature_weight))
    if cfg.span_weight:
        terms.append(StayInSpan(cfg.span_weight, targets.centre, targets.spans[cfg.span_drop_forget], targets.spread))
    if cfg.class_mean_weight:
        terms.append(ClassMeanTerm(cfg.class_mean_weight, ClassMeanHead(targets, ctx.retained)))
    if cfg.anti_memory_batch > 0 and generator is not None:
        terms.append(AntiMemories(ctx, cfg, augment, targets, generator))
    return terms


def phase_step(ctx: ForgetContext, x: torch.Tensor, y: torch.Tensor, *, synthetic: bool,
               with_original: bool) -> Step:
    """The student's forward pass on a retained batch (BatchNorm in eval mode for ``synthetic`` batches, as
    for anti-memories) and, ``with_original``, the original's in the same pass: its logits are the
    distillation target and its features the ones to hold."""
    retained_bn = frozen_batchnorm if synthetic else contextlib.nullcontext
    with HeadInput(ctx.student) as student_features, retained_bn(ctx.student):
        logits = ctx.student(x)
    step = Step(x, y, logits, student_features.value)
    if with_original:
        with torch.no_grad(), HeadInput(ctx.original) as original_features:
            step.teacher = ctx.original(x)
        step.original_features = original_features.value
    return step

