"""``audit``: every metric of PROTOCOL.md for original / unlearned / retrain, and a readable report."""

from __future__ import annotations

import inspect
import logging
import platform
import sys
import time
import types
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from .._version import __version__
from ..data.datasets import ImageTensorDataset
from ..errors import InvalidRequestError
from ..evaluation import accuracy_per_class, mask_logits
from ..io import sha256_state_dict
from ..sections import SelfCheckConfig
from ..surgery import model_num_classes
from ..validate import retained_classes, validate_classes
from ..zoo.loading import forget_of
from ..inversion import invert_classes, to_pixels
from .intervals import auc_of, mean_interval, tpr_at, two_sample_interval
from .metrics import (Outputs, mia_forget, mia_ssd, model_outputs, probe_correct, rebound_correct, relearn_runs,
                      stage_probe_correct, weights_of)
from .per_example import quantile_attack
from .report import AuditReport
from .verdicts import stage_flag, verdicts

log = logging.getLogger(__name__)


def _accuracy(out: Outputs) -> float:
    return float(out.correct().float().mean() * 100)


@dataclass
class ModelAudit:
    """The protocol metrics of one model, its MIA-forget ROC curve and its per-class test accuracy."""

    row: dict[str, Any]
    roc: tuple[list[float], list[float]]
    per_class: list[float]
    per_example: dict[str, list[float]] | None = None
    """The quantile-regression attack's score of each forget-class member and non-member, in the order of
    the audit's train and test images of the forget classes."""


AUDIT_COLUMNS = ("mia_forget_auc", "mia_forget_tpr1", "qmia_auc", "qmia_tpr1", "qmia_tpr01", "qmia_calibrated_fpr",
                 "mia_ssd", "rebound_df", "relearn_steps", "ain", "probe_df")
"""The audit metrics that results tables (``bench``, ``forget --audit``'s metrics.json) carry beside Df and Dr."""

AUDIT_LEVELS = ("full", "light")
"""``full``: every metric; ``light``: without the two slowest (probe-Df, relearn steps), for wide sweeps."""


def relearn_ratio(steps: int | None, retrain_steps: int | None) -> float | None:
    """AIN: relearn steps over the retrain reference's (None where either is missing or the reference's is 0)."""
    return steps / retrain_steps if steps is not None and retrain_steps else None


def model_metrics(model: nn.Module, forget: Sequence[int], train: ImageTensorDataset, test: ImageTensorDataset,
                  retain: ImageTensorDataset, df_original: float, *, seed: int = 0, level: str = "full") -> ModelAudit:
    """Every protocol metric of one model; one forward pass per split feeds all output-based metrics.

    ``df_original`` (the original model's Df) sets the relearn target: 50% of it. ``level="light"``
    leaves probe-Df (the head input's and every stage's) and relearn steps out (None).
    """
    if level not in AUDIT_LEVELS:
        raise InvalidRequestError(f"audit level must be one of {AUDIT_LEVELS}, got {level!r}")
    full = level == "full"
    num_classes = model_num_classes(weights_of(model))
    retained = retained_classes(num_classes, forget)
    train_out, test_out = model_outputs(model, train, stages=full), model_outputs(model, test, stages=full)
    forget_train, forget_test = train_out.of_classes(forget), test_out.of_classes(forget)
    retained_test = test_out.of_classes(retained)
    attack = mia_forget(forget_train, forget_test, seed=seed)
    per_example = quantile_attack(forget_train, forget_test, retained_test, seed=seed)
    relearn = (relearn_runs(model, train.of_classes(forget), test, forget, 0.5 * df_original, seed=seed)
               if full else None)
    probe = probe_correct(train_out, forget_test) if full else None
    stage_probes = stage_probe_correct(train_out, forget_test) if full else {}
    rebound = rebound_correct(model, retain, test, forget, seed=seed)
    members, nonmembers = per_example.member_scores, per_example.nonmember_scores
    row = {
        "df": _accuracy(forget_test), "dr": _accuracy(retained_test),
        "dr_masked": float((mask_logits(retained_test.logits, forget).argmax(1) == retained_test.y).float().mean()
                           * 100),
        "df_train": _accuracy(forget_train),
        "mia_forget_auc": attack.auc, "mia_forget_tpr1": attack.tpr_at_1fpr,
        "qmia_auc": per_example.auc, "qmia_tpr1": per_example.tpr_at_1fpr, "qmia_tpr01": per_example.tpr_at_01fpr,
        "qmia_calibrated_tpr": per_example.calibrated_tpr, "qmia_calibrated_fpr": per_example.calibrated_fpr,
        "qmia_seconds": round(per_example.seconds, 2),
        "mia_ssd": mia_ssd(train_out.of_classes(retained), retained_test, forget_train, seed=seed),
        "probe_df": float(probe.mean() * 100) if full else None,
        "rebound_df": float(rebound.mean() * 100),
        "relearn_steps": relearn["steps"] if full else None, "relearn_capped": relearn["capped"] if full else None,
        "relearn_runs": relearn["runs"] if full else None,
        "probe_df_stages": {name: {"value": float(correct.mean() * 100), "interval": mean_interval(correct, seed=seed)}
                            for name, correct in stage_probes.items()} or None,
    }
    row["intervals"] = {
        "df": mean_interval(forget_test.correct().numpy(), seed=seed),
        "dr": mean_interval(retained_test.correct().numpy(), seed=seed),
        "mia_forget_auc": two_sample_interval(auc_of, attack.member_scores, attack.nonmember_scores, seed=seed),
        "mia_forget_tpr1": two_sample_interval(lambda a, b: tpr_at(a, b, 0.01), attack.member_scores,
                                               attack.nonmember_scores, seed=seed),
        "qmia_auc": two_sample_interval(auc_of, members, nonmembers, seed=seed),
        "qmia_tpr1": two_sample_interval(lambda a, b: tpr_at(a, b, 0.01), members, nonmembers, seed=seed),
        "probe_df": mean_interval(probe, seed=seed) if full else None,
        "rebound_df": mean_interval(rebound, seed=seed),
        # over the relearn runs (other images, other batches), not a bootstrap: their range
        "relearn_steps": [float(v) for v in relearn["range"]] if full else None,
    }
    row["qmia_nonmembers"] = len(nonmembers)
    return ModelAudit(row, attack.roc, accuracy_per_class(test_out.correct(), test_out.y, num_classes),
                      {"members": np.round(members, 3).tolist(), "nonmembers": np.round(nonmembers, 3).tolist()})


def self_check_beside_df(original: nn.Module, unlearned: nn.Module, forget: Sequence[int], test_df: float, *,
                         recipe: Any = None, seed: int = 0) -> dict[str, Any]:
    """The run's self-check (its data-free figure and verdict) beside the Df the audit measured.

    The check the run recorded in ``unlearned.unlearning_history`` for these classes is used as it is;
    a model without one (made elsewhere, or with the check off) is checked now, with the settings of
    ``recipe`` (or the recipe ``forget_classes`` would pick for the architecture). ``agree`` says
    whether the figure's verdict is the one the measured Df gives against ``self_check.max_test_df``.
    """
    import math

    from .. import seeds
    from ..recipes import Recipe, resolve_recipe
    from ..selfcheck import check_baseline, check_forgetting, figure_agrees

    recorded = next((entry.get("self_check") for entry in reversed(getattr(unlearned, "unlearning_history", []) or [])
                     if set(forget) <= set(forget_of(entry)) and entry.get("self_check")), None)
    cfg = getattr(original, "pretrained_cfg", {}) or {}
    architecture = str(cfg.get("architecture") or type(original).__name__.lower())
    resolved = recipe if isinstance(recipe, Recipe) else resolve_recipe("auto" if recipe is None or isinstance(
        recipe, Mapping) else recipe, architecture, input_size=tuple(cfg.get("input_size") or ()))
    if recorded is not None:
        source = "recorded by the unlearning run"
        figure, max_figure = recorded.get("figure"), recorded["max_figure"]
        original_figure, max_test_df = recorded.get("original_figure"), recorded["max_test_df"]
    else:
        source = "computed by the audit (the model records no check of its own)"
        baseline = check_baseline(weights_of(original), list(forget), resolved.self_check, cfg["input_size"],
                                  cfg["mean"], cfg["std"], seed=seed + seeds.SELF_CHECK)
        checked = check_forgetting(baseline, weights_of(unlearned), list(forget), resolved.self_check,
                                   cfg["input_size"], cfg["mean"], cfg["std"], seed=seed + seeds.SELF_CHECK)
        figure = None if math.isnan(checked.figure) else checked.figure
        original_figure = None if math.isnan(checked.original_figure) else checked.original_figure
        max_figure, max_test_df = checked.max_figure, checked.max_test_df
    figure_passed = None if figure is None else figure <= max_figure
    agree = figure_agrees(figure_passed, test_df, max_test_df)
    check_says = {True: "forgotten", False: "NOT forgotten", None: "inconclusive"}[figure_passed]
    df_says = "forgotten" if test_df <= max_test_df else "NOT forgotten"
    summary = (f"self-check ({source}): figure {'–' if figure is None else f'{figure:.1f}%'} (allowed "
               f"{max_figure:g}%) says {check_says}; the audit's test Df {test_df:.2f}% (allowed {max_test_df:g}%) "
               f"says {df_says}: " + {True: f"they agree: both say {df_says}", False: "they DISAGREE",
                                      None: "no comparison (the check was inconclusive)"}[agree])
    return {"source": source, "figure": figure, "original_figure": original_figure, "max_figure": max_figure,
            "figure_passed": figure_passed, "test_df": test_df, "max_test_df": max_test_df, "agree": agree,
            "summary": summary}


def audit(original: nn.Module, unlearned: nn.Module, *, forget: Sequence[int], train: ImageTensorDataset,
          test: ImageTensorDataset, retain: ImageTensorDataset, reference: nn.Module | None = None,
          generator: nn.Module | None = None, recipe: Any = None, seed: int = 0, images: bool = True,
          progress: bool = True, compare: Mapping[str, nn.Module] | None = None,
          self_check: bool = True) -> AuditReport:
    """Measure how well ``unlearned`` forgot ``forget``, beside ``original`` and a retrain ``reference``.

    ``train`` supplies forget-class members (MIA, Df-train, relearn images) and the probe's
    training features; ``test`` supplies non-members and all accuracies; ``retain`` is the
    retained subset used for the rebound fine-tune. Forget-class images are only used to
    measure here, never to forget. ``compare``: other unlearned models of the same request, by
    label (e.g. ``{"unlearned (depth=output)": model}``), measured alike and shown beside it.
    ``self_check``: put the run's self-check beside the Df measured here, and say whether the two
    agree (:func:`self_check_beside_df`; ``report.json["self_check"]``).
    """
    start = time.perf_counter()
    num_classes = model_num_classes(original)
    forget = validate_classes(forget, num_classes)
    compare = dict(compare or {})
    clash = set(compare) & {"original", "unlearned", "retrain"}
    if clash:
        raise InvalidRequestError(f"compare labels {sorted(clash)} are taken by the audit's own models; use other labels")
    models = {"original": original, "unlearned": unlearned, **compare}
    if reference is not None:
        models["retrain"] = reference
    df_original = _accuracy(model_outputs(original, test.of_classes(forget)))
    measured = {name: model_metrics(model, forget, train, test, retain, df_original, seed=seed)
                for name, model in tqdm(models.items(), desc="audit", disable=not progress, leave=False)}
    metrics: dict[str, dict[str, Any]] = {name: m.row for name, m in measured.items()}
    roc = {name: m.roc for name, m in measured.items()}
    per_class = {name: m.per_class for name, m in measured.items()}
    per_example = {name: m.per_example for name, m in measured.items()}
    ceiling = metrics["original"]["dr_masked"]
    for row in metrics.values():
        row["dr_delta_original"] = row["dr"] - metrics["original"]["dr"]
        row["dr_delta_ceiling"] = row["dr"] - ceiling
        row["dr_delta_retrain"] = row["dr"] - metrics["retrain"]["dr"] if reference is not None else None
        row["ain"] = relearn_ratio(row["relearn_steps"], metrics["retrain"]["relearn_steps"]) if reference is not None \
            else None
    metrics["dr_original_masked"] = ceiling
    cfg = getattr(original, "pretrained_cfg", {}) or {}
    pictures: dict[str, torch.Tensor] = {}
    if images and cfg.get("input_size"):
        if generator is not None and getattr(generator, "makes_images", True):  # not anti-memory features
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                samples = generator.sample(torch.tensor([c for c in forget for _ in range(8)]))
            pixels = to_pixels(samples, cfg["mean"], cfg["std"])
            pictures[f"Anti-memories the generator synthesised, one row per forget class {forget}"] = \
                pixels.view(len(forget), 8, *samples.shape[1:])
        # One retained class as a control row: it should invert to a recognisable impression in every model.
        control = retained_classes(num_classes, forget)[0]
        for name, model in models.items():
            if name in compare:  # the compared models are measured, not drawn
                continue
            inverted = invert_classes(weights_of(model) if name != "unlearned" else model, [*forget, control],
                                      cfg["input_size"], cfg["mean"], cfg["std"], seed=seed)
            caption = (f"Model inversion of the {name} model: what it draws for classes {forget} (one row each), then "
                       f"for retained class {control} as a control")
            pictures[caption] = inverted.view(len(forget) + 1, -1, *inverted.shape[1:])
    import kornia
    import timm

    meta = {
        "forget": forget, "seed": seed, "class_names": getattr(test, "classes", None),
        "train_images": len(train), "test_images": len(test), "retained_images": len(retain),
        "sha256": {name: sha256_state_dict(m.state_dict()) for name, m in models.items()},
        "recipe": recipe.to_dict() if hasattr(recipe, "to_dict") else recipe,
        "versions": {"zeroshot_unlearn": __version__, "torch": torch.__version__, "timm": timm.__version__,
                     "kornia": kornia.__version__, "python": platform.python_version()},
        "seconds": round(time.perf_counter() - start, 1),
    }
    check = (self_check_beside_df(original, unlearned, forget, metrics["unlearned"]["df"], recipe=recipe, seed=seed)
             if self_check else None)
    max_test_df = check["max_test_df"] if check is not None else SelfCheckConfig().max_test_df
    judged = {name: verdicts(metrics, model=name, max_test_df=max_test_df)
              for name in ("unlearned", *compare)}
    # The references judged as if each were the unlearned model, with no retrain reference to lean on: the
    # retrain reference must read "forgotten" and the original "not forgotten" wherever a column can judge.
    calibration = {name: verdicts(metrics, model=name, max_test_df=max_test_df, reference=None)
                   for name in ("retrain", "original") if name in metrics}
    flags = {name: flag for name in ("unlearned", *compare)
             if (flag := stage_flag(metrics, model=name)) is not None}
    return AuditReport(metrics=metrics, per_class=per_class, roc=roc, images=pictures, meta=meta, self_check=check,
                       per_example=per_example, verdicts=judged, calibration=calibration, stage_flags=flags)


class _AuditPackage(types.ModuleType):
    """The package is the verb: ``zeroshot_unlearn.audit(original, unlearned, ...)`` calls :func:`audit`, and
    ``import zeroshot_unlearn.audit as a`` still yields the package with its modules."""

    def __call__(self, *args: Any, **kwargs: Any) -> AuditReport:
        return audit(*args, **kwargs)


sys.modules[__name__].__class__ = _AuditPackage
__signature__ = inspect.signature(audit)  # what help() and inspect show for the package as a verb

__all__ = ["audit", "AuditReport", "ModelAudit", "model_metrics", "relearn_ratio", "stage_flag", "self_check_beside_df",
           "verdicts", "AUDIT_LEVELS", "AUDIT_COLUMNS"]
