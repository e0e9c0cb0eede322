"""``forget_classes``: the one entry point. It plans the request (every check, before any work:
:mod:`~zeroshot_unlearn.plan`), runs the plan (:mod:`~zeroshot_unlearn.run`) and returns a
:class:`~zeroshot_unlearn.result.ForgetResult` (:mod:`~zeroshot_unlearn.result`)."""

from __future__ import annotations

import os
import warnings
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from .errors import InvalidRequestError
from .plan import RecipeSource, plan_request
from .result import ForgetResult
from .run import run_plan


def forget_classes(model: nn.Module, classes: Sequence[int | str], *, retain: Dataset | None,
                   recipe: RecipeSource = "auto", method: str | None = None,
                   overrides: Mapping[str, Any] | None = None, seed: int = 0, inplace: bool = False,
                   progress: bool = True, forget_data: Dataset | None = None,
                   device: str | torch.device = "auto",
                   generator: str | os.PathLike | nn.Module | None = None, strict: bool = True,
                   training_log: str | os.PathLike | None = None, depth: str | None = None,
                   eval_data: Dataset | None = None, check_data: Dataset | None = None) -> ForgetResult:
    """Make ``model`` forget ``classes`` without any image of them.

    Args:
        model: a classifier (timm model, zoo model, or any ``nn.Module`` with a linear head), float32 on CPU.
        classes: class ids to forget, or class names where the model carries them
            (``pretrained_cfg["label_names"]``, e.g. ``["cat", "horse"]`` for the CIFAR-10 zoo models).
        retain: a small set of retained-class samples (images normalised for the model, labels); it must
            not contain any forget-class sample.
        recipe: ``"auto"`` (by architecture), a registered recipe name, a YAML path, a dict or a ``Recipe``.
        method: a registered method name (default: the recipe's ``method``).
        overrides: recipe values to change, nested or dotted (``{"impair.lr": 0.02}``).
        seed: makes the run reproducible on CPU; the caller's global RNG state is left as it was.
        inplace: write the result into ``model`` as well (otherwise ``model`` is untouched). On any
            failure ``model`` is left exactly as it was, also with ``inplace=True``.
        progress: show tqdm progress bars.
        forget_data: forget-class images, accepted only by the comparison baselines that need them
            (``list_methods()`` shows each method's needs); the project's methods refuse it. The count
            used is recorded in the result and its history.
        device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``/``"cuda:N"`` or a
            ``torch.device``. The result lives there; ``model`` stays where it is. Under ``torchrun``
            (an initialised process group) the run is data-parallel: see :mod:`zeroshot_unlearn.runtime`.
        generator: a pre-fitted amortised generator (a ``generators/<model-id>/`` folder or the module)
            to use instead of fitting one; refused if fitted for another model.
        strict: before returning, the run checks its own forgetting without forget-class images
            (:mod:`zeroshot_unlearn.selfcheck`, recipe section ``self_check``). When the check says the
            classes were not forgotten, a :class:`ForgettingFailedError` is raised (its ``result``
            holds the model); with ``strict=False`` the result is returned with a loud warning and
            ``result.self_check.passed`` False. A model the check cannot judge (the original does not
            recognise its own class impressions: random or untrained weights) is refused before any
            work with an :class:`UncheckableModelError`; with ``strict=False`` the run goes on and
            ``passed`` is None (inconclusive), with a warning. Either way the figure and its meaning are
            in the result and its history.
        eval_data: the evaluation split, with labels (e.g. the test split, all classes): after the run the
            self-check also measures Df on it and fails the run above ``self_check.max_test_df``, the
            verdict the command line gives with its test split. Read only after the run, never by the
            method. ``check_data`` is its old name (deprecated).
        depth: ``"output"`` (the recipe's default: gone from the outputs at the retained-accuracy ceiling,
            fast; the features still separate the classes) or ``"representation"`` (the recipe family's
            measured ``representation`` setting: the features forget too, at a price in time and retained
            accuracy stated in the README). Same as ``overrides={"depth": ...}``.
        training_log: the model's training log (``zeroshot-unlearn train --record-updates``), accepted only by
            ``method="amnesiac"``; refused unless it was recorded for exactly this model.

    Every check runs first (:func:`~zeroshot_unlearn.plan.plan_request`); bad input raises before any work.
    """
    if check_data is not None:
        if eval_data is not None:
            raise InvalidRequestError("check_data is the old name of eval_data: pass one of the two")
        warnings.warn("check_data is now eval_data", DeprecationWarning, stacklevel=2)
        eval_data = check_data
    if depth is not None:
        overrides = {**(overrides or {}), "depth": depth}
    plan = plan_request(model, classes, retain=retain, recipe=recipe, method=method, overrides=overrides, seed=seed,
                        forget_data=forget_data, device=device, generator=generator, training_log=training_log,
                        eval_data=eval_data)
    return run_plan(model, plan, progress=progress, inplace=inplace, strict=strict)
