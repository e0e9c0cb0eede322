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

from .. import seeds
from ..sections import AmnesiacSettings
from .base import ForgetContext, Method, MethodOutput
from .registry import register_method

log = logging.getLogger(__name__)


@register_method
class Amnesiac(Method):
    name = "amnesiac"
    summary = "baseline: undoes the logged training steps; train --record-updates"
    needs = frozenset({"retain", "training_log"})
    settings = AmnesiacSettings

    def run(self, ctx: ForgetContext) -> MethodOutput:
        start = time.perf_counter()
        log_of_training = ctx.training_log
        steps = log_of_training.steps_holding(ctx.forget)
        log_of_training.subtract(ctx.student, steps)
        details = {"undone_steps": len(steps), "logged_steps": log_of_training.steps,
                   "undone_fraction": round(len(steps) / max(1, log_of_training.steps), 4)}
        log.info("amnesiac: undid %d of %d logged training steps", len(steps), log_of_training.steps)
        timings = {"subtract": time.perf_counter() - start}
        cfg = self.settings_in(ctx.recipe)
        if cfg.epochs > 0:  # the paper's brief retuning, on the retained subset only
            timings["retune"] = ctx.train_on_retained(cfg, offset=seeds.AMNESIAC_RETUNE, name="retune").seconds
        return MethodOutput(ctx.student, timings=timings, details=details)
