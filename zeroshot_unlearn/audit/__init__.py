"""``audit``: every metric of PROTOCOL.md for original / unlearned / retrain, and a readable report."""

from __future__ import annotations

import logging
import platform
import time
from typing import Any, Sequence

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from .. import __version__
from ..data.datasets import ImageTensorDataset
from ..io import sha256_state_dict
from ..metrics import forget_retain_accuracy, masked_accuracy, per_class_accuracy
from ..validate import model_num_classes, validate_classes
from .images import invert_classes, to_pixels
from .metrics import mia_forget, mia_ssd, probe_df, rebound_df, relearn_steps
from .report import AuditReport

log = logging.getLogger(__name__)


def _weights(model: nn.Module) -> nn.Module:
    """What an attacker holding the weights gets: the model under an output-only mask."""
    return getattr(model, "unmasked", model)


def model_metrics(model: nn.Module, forget: Sequence[int], train: ImageTensorDataset, test: ImageTensorDataset,
                  retain: ImageTensorDataset, df_original: float, *, seed: int = 0
                  ) -> tuple[dict[str, Any], tuple[list[float], list[float]]]:
    """The protocol metrics of one model (and its MIA-forget ROC curve)."""
    forget_train, forget_test = train.of_classes(forget), test.of_classes(forget)
    retained = sorted(set(range(int(train.y.max()) + 1)) - set(forget))
    df, dr = forget_retain_accuracy(model, test, forget)
    attack = mia_forget(model, forget_train, forget_test, seed=seed)
    weights = _weights(model)
    steps, capped = relearn_steps(weights, forget_train, test, forget, 0.5 * df_original, seed=seed)
    row = {
        "df": df, "dr": dr, "df_train": forget_retain_accuracy(model, forget_train, forget)[0],
        "mia_forget_auc": attack.auc, "mia_forget_tpr1": attack.tpr_at_1fpr,
        "mia_ssd": mia_ssd(model, train.of_classes(retained), test.of_classes(retained), forget_train, seed=seed),
        "probe_df": probe_df(weights, train, test, forget),
        "rebound_df": rebound_df(weights, retain, test, forget, seed=seed),
        "relearn_steps": steps, "relearn_capped": capped,
    }
    return row, attack.roc


def audit(original: nn.Module, unlearned: nn.Module, *, forget: Sequence[int], train: ImageTensorDataset,
          test: ImageTensorDataset, retain: ImageTensorDataset, reference: nn.Module | None = None,
          generator: nn.Module | None = None, recipe: Any = None, seed: int = 0, images: bool = True,
          progress: bool = True) -> AuditReport:
    """Measure how well ``unlearned`` forgot ``forget``, beside ``original`` and a retrain ``reference``.

    ``train`` supplies forget-class members (MIA, Df-train, relearn images) and the probe's
    training features; ``test`` supplies non-members and all accuracies; ``retain`` is the
    retained subset used for the rebound fine-tune. Forget-class images are only used to
    measure here, never to forget.
    """
    start = time.perf_counter()
    num_classes = model_num_classes(original)
    forget = validate_classes(forget, num_classes)
    models = {"original": original, "unlearned": unlearned}
    if reference is not None:
        models["retrain"] = reference
    df_original = forget_retain_accuracy(original, test, forget)[0]
    ceiling = masked_accuracy(original, test, forget)
    metrics: dict[str, dict[str, Any]] = {}
    roc = {}
    for name, model in tqdm(models.items(), desc="audit", disable=not progress, leave=False):
        metrics[name], roc[name] = model_metrics(model, forget, train, test, retain, df_original, seed=seed)
    for name, row in metrics.items():
        row["dr_delta_original"] = row["dr"] - metrics["original"]["dr"]
        row["dr_delta_ceiling"] = row["dr"] - ceiling
        row["dr_delta_retrain"] = row["dr"] - metrics["retrain"]["dr"] if reference is not None else None
        row["ain"] = row["relearn_steps"] / metrics["retrain"]["relearn_steps"] if reference is not None else None
    metrics["dr_original_masked"] = ceiling
    per_class = {name: per_class_accuracy(model, test, num_classes) for name, model in models.items()}
    cfg = getattr(original, "pretrained_cfg", {}) or {}
    pictures: dict[str, torch.Tensor] = {}
    if images and cfg.get("input_size"):
        if generator is not None:
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                samples = generator.sample(torch.tensor([c for c in forget for _ in range(8)]))
            pictures["anti-memories (rows: forget classes)"] = to_pixels(samples, cfg["mean"], cfg["std"])
        for name, model in models.items():
            pictures[f"model inversion of the forget classes: {name}"] = invert_classes(
                _weights(model) if name != "unlearned" else model, forget, cfg["input_size"], cfg["mean"], cfg["std"],
                seed=seed)
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
    return AuditReport(metrics=metrics, per_class=per_class, roc=roc, images=pictures, meta=meta)


__all__ = ["audit", "AuditReport"]
