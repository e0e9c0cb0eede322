"""``gkt``: gated knowledge transfer (Chundawat et al., "Zero-Shot Machine Unlearning", IEEE TIFS 2023).

No real image at all. A generator is trained adversarially to produce pseudo samples on which
student and original disagree most (zero-shot knowledge transfer, Micaelli & Storkey, NeurIPS
2019); a band-pass gate drops every pseudo sample the original assigns to a forget class with
probability above ``threshold``; the student is distilled from the original on what passes, so
it never receives knowledge of the forget classes.

Defaults from the papers: a student trained from scratch (``student_init: random``), 1 generator
and 10 student steps per pseudo batch, Adam lr 1e-3 (generator) and 2e-3 (student), gate threshold
0.01, latent size 128. Deviations, all settable in the recipe's ``gkt`` section: 200 pseudo batches
(``iterations``; the papers run thousands, hours on a GPU), no attention-transfer term (it needs
matched intermediate blocks), and the generator is the project's class-conditional network fed
random classes. ``mask_forget_logits: true`` distils from the masked teacher instead (not in the
paper; it closed the leak through sub-threshold forget-class probability on ``digits`` {6}). A
student that starts from the original (``student_init: original``) keeps its synthetic batches out
of its BatchNorm statistics, as every method here does.
"""

from __future__ import annotations

import contextlib
import time

import torch

from .. import seeds
from ..evaluation import mask_logits
from ..generators import NetworkGenerator
from ..losses import distillation
from ..sections import GKTSettings, PhaseConfig
from ..surgery import frozen_batchnorm, frozen_parameters, reset_weights
from .base import ForgetContext, Method, MethodOutput
from .registry import register_method


@register_method
class GKT(Method):
    name = "gkt"
    summary = "gated knowledge transfer; trains a new student"
    needs = frozenset()
    supports_distributed = False  # its adversary trains inside the student's loop: one per rank would diverge
    settings = GKTSettings

    def run(self, ctx: ForgetContext) -> MethodOutput:
        cfg = self.settings_in(ctx.recipe)
        start = time.perf_counter()
        if cfg.student_init == "random":
            reset_weights(ctx.student, ctx.seed + seeds.GKT_STUDENT_INIT)
        synthetic_bn = frozen_batchnorm if cfg.student_init == "original" else contextlib.nullcontext
        adversary = NetworkGenerator(ctx.num_classes, ctx.input_size, ctx.mean, ctx.std, latent_dim=cfg.latent_dim,
                                     width=cfg.width).to(ctx.device)
        adversary_optimizer = torch.optim.Adam(adversary.parameters(), lr=cfg.generator_lr)
        student_phase = PhaseConfig(epochs=1, lr=cfg.student_lr, optimizer="adam", weight_decay=0.0,
                                    schedule="cosine", batch_size=cfg.batch_size)
        forget = ctx.forget_tensor
        batch: dict[str, torch.Tensor] = {}

        def new_pseudo_batch() -> None:
            z = torch.randn(cfg.batch_size, cfg.latent_dim, device=ctx.device)
            labels = torch.randint(ctx.num_classes, (cfg.batch_size,), device=ctx.device)
            for _ in range(cfg.generator_steps):  # the adversary maximises student-teacher disagreement
                x = adversary.sample(labels, z)
                with synthetic_bn(ctx.student), frozen_parameters(ctx.student):
                    student_logits = ctx.student(x)
                loss = -distillation(student_logits, ctx.original(x), cfg.distill_temperature)
                adversary_optimizer.zero_grad(set_to_none=True)
                loss.backward()
                adversary_optimizer.step()
            with torch.no_grad():
                x = adversary.sample(labels, z)
                teacher = ctx.original(x)
                passes = teacher.softmax(1)[:, forget].sum(1) < cfg.threshold
            if cfg.mask_forget_logits:
                teacher = mask_logits(teacher, forget)
            batch["x"], batch["teacher"] = x[passes], teacher[passes]

        def loss_fn(step: int) -> torch.Tensor:
            if step % cfg.student_steps == 0:
                new_pseudo_batch()
            if len(batch["x"]) == 0:  # the gate dropped the whole batch: nothing to learn from
                return sum(p.sum() * 0.0 for p in ctx.student.parameters())
            with synthetic_bn(ctx.student):
                logits = ctx.student(batch["x"])
            return distillation(logits, batch["teacher"], cfg.distill_temperature)

        ctx.train(student_phase, cfg.iterations * cfg.student_steps, loss_fn, name=self.name)
        return MethodOutput(ctx.student, generator=adversary.eval(), timings={self.name: time.perf_counter() - start})
