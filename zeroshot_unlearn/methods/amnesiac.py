"""``amnesiac``: amnesiac unlearning (Graves, Nagisetty and Ganesh, "Amnesiac Machine Learning", AAAI 2021).

A comparison baseline for a model whose owner recorded its training: the updates of every
training batch that held a sample of a forget class are subtracted from the weights, then the
model is optionally retuned on the retained subset with the shared engine (the paper's "brief
retuning"). It reads no forget-class image, but it needs the training log
(``zeroshot-unlearn train ... --record-updates``, :mod:`zeroshot_unlearn.training_log`) of
exactly the run that produced the model.

Its measured limitation is the point of the row: in a 10-class problem nearly every batch holds
every class, so the batches that held a forget class are nearly all of training, and undoing
them undoes nearly everything (the result records the fraction undone).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from .. import seeds
from ..recipes import RetainedPhase
from .base import ForgetContext, Method

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AmnesiacSettings(RetainedPhase):
    """The retuning after the subtraction: cross-entropy on the retained subset (``epochs: 0``: none)."""

    epochs: float = 1.0


class Amnesiac(Method):
    name = "amnesiac"
    needs = frozenset({"retain", "training_log"})
    settings = AmnesiacSettings

    def run(self, ctx: ForgetContext) -> None:
        assert ctx.training_log is not None and ctx.retain is not None
        cfg = self.settings_in(ctx.recipe)
        start = time.perf_counter()
        steps = ctx.training_log.steps_holding(ctx.forget)
        ctx.training_log.subtract(ctx.student, steps)
        ctx.details["undone_steps"] = len(steps)
        ctx.details["logged_steps"] = ctx.training_log.steps
        ctx.details["undone_fraction"] = round(len(steps) / max(1, ctx.training_log.steps), 4)
        log.info("amnesiac: undid %d of %d logged training steps", len(steps), ctx.training_log.steps)
        ctx.timings["subtract"] = time.perf_counter() - start
        if cfg.epochs > 0:
            stream = ctx.retain_stream(cfg, offset=seeds.AMNESIAC_RETUNE)
            augment = ctx.retained_augment()

            def loss_fn(_step: int):
                x, y = next(stream)
                x = augment(x)
                return ctx.retained_loss(ctx.student(x), x, y, cfg)

            ctx.timings["retune"] = ctx.train(cfg, stream.steps_for(cfg.epochs), loss_fn, name="retune").seconds
