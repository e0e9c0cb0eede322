"""Published baselines that distil from teachers and read forget-class images: ``bad_teacher``, ``scrub``.

Like every method, each only computes a loss per step; the shared engine runs the loop.
"""

from __future__ import annotations

import copy
import math

import torch

from .. import seeds
from ..engine import BatchStream
from ..losses import distillation
from ..sections import BadTeacherSettings, ScrubSettings
from ..surgery import reset_weights
from .base import ForgetContext, Method, MethodOutput
from .registry import register_method


@register_method
class BadTeacher(Method):
    """"Can Bad Teaching Induce Forgetting?" (Chundawat et al., AAAI 2023). The student (a copy of
    the original) is distilled from two teachers at once: the original on retained images, and a
    randomly initialised copy of the architecture (the incompetent teacher) on forget images.
    Defaults from the paper: KL temperature 1, Adam lr 1e-4, one epoch over the forget images plus
    the retained subset (the paper takes 30% of the retained data; here the retained budget),
    batch 256."""

    name = "bad_teacher"
    summary = "baseline"
    holds_images = True
    needs = frozenset({"retain", "forget"})
    settings = BadTeacherSettings

    def run(self, ctx: ForgetContext) -> MethodOutput:
        ctx.require("retain", "forget_data")
        cfg = self.settings_in(ctx.recipe)
        incompetent = reset_weights(copy.deepcopy(ctx.original), ctx.seed + seeds.BAD_TEACHER_INIT).eval()
        x = torch.cat([ctx.retain.x, ctx.forget_data.x])
        is_forget = torch.cat([torch.zeros(len(ctx.retain), dtype=torch.bool),
                               torch.ones(len(ctx.forget_data), dtype=torch.bool)])
        stream = BatchStream(x, is_forget, cfg.batch_size, ctx.seed + seeds.BAD_TEACHER_BATCHES, ctx.runtime)
        augment = ctx.retained_augment()

        def loss_fn(_step: int) -> torch.Tensor:
            batch, forget_rows = next(stream)
            batch = augment(batch)
            with torch.no_grad():
                teacher = torch.where(forget_rows[:, None], incompetent(batch), ctx.original(batch))
            return distillation(ctx.student(batch), teacher, cfg.distill_temperature)

        stats = ctx.train(cfg, stream.steps_for(cfg.epochs), loss_fn, name=self.name)
        return MethodOutput(ctx.student, timings={self.name: stats.seconds})


@register_method
class SCRUB(Method):
    """SCRUB (Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023). The student
    alternates a *max* pass over the forget images (push its outputs away from the original's, KL
    ascended) with a *min* pass over retained images (gamma x cross-entropy + alpha x KL to the
    original). Defaults from the official code's small-scale CIFAR runs: SGD lr 5e-4, momentum 0.9,
    weight decay 5e-4, 3 epochs of which the first 2 start with a max pass, T 4, gamma 0.99,
    alpha 0.001, batch 64 retained / 32 forget."""

    name = "scrub"
    summary = "baseline"
    holds_images = True
    needs = frozenset({"retain", "forget"})
    settings = ScrubSettings

    def run(self, ctx: ForgetContext) -> MethodOutput:
        ctx.require("retain", "forget_data")
        cfg = self.settings_in(ctx.recipe)
        retained = ctx.retain_stream(cfg, offset=seeds.SCRUB_RETAINED)
        forget = ctx.forget_stream(cfg.forget_batch, offset=seeds.SCRUB_FORGET)
        augment = ctx.retained_augment()
        per_forget_pass = math.ceil(len(ctx.forget_data) / forget.batch_size)
        per_retain_pass = math.ceil(len(ctx.retain) / retained.batch_size)
        schedule: list[bool] = []  # True = max step on forget images
        for epoch in range(math.ceil(cfg.epochs)):
            if epoch < cfg.max_epochs:
                schedule += [True] * per_forget_pass
            schedule += [False] * per_retain_pass

        def loss_fn(step: int) -> torch.Tensor:
            if schedule[step]:
                x, _ = next(forget)
                x = augment(x)
                with torch.no_grad():
                    teacher = ctx.original(x)
                return -distillation(ctx.student(x), teacher, cfg.distill_temperature)
            x, y = next(retained)
            x = augment(x)
            logits = ctx.student(x)
            with torch.no_grad():
                teacher = ctx.original(x)
            return (cfg.ce_weight * torch.nn.functional.cross_entropy(logits, y)
                    + cfg.distill_weight * distillation(logits, teacher, cfg.distill_temperature))

        stats = ctx.train(cfg, len(schedule), loss_fn, name=self.name)
        return MethodOutput(ctx.student, timings={self.name: stats.seconds})
