"""Amortised generators: one class-conditional generator fitted per model, reused by every request.

``fit_amortised`` fits the recipe's ``network`` generator for *all* classes of a model (the
impression objective: samples the model recognises as each class), so a later request for any
subset of classes skips the fitting. It is saved as ``generators/<model-id>/`` with
``generator.safetensors`` and ``card.json`` (the model's sha256, the generator settings, the fit
time). :func:`load_amortised` refuses a generator fitted for another model.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..errors import InvalidRequestError, RecipeError
from ..io import atomic_dir, save_state_dict, sha256_state_dict, write_text
from ..sections import GeneratorConfig
from .base import AntiMemoryGenerator, fit_generator
from .network import NetworkGenerator

CARD = "card.json"
WEIGHTS = "generator.safetensors"


def model_id(model: nn.Module) -> str:
    """``<architecture>-<first 12 hex of the weights' sha256>``: the folder name under ``generators/``."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    arch = str(cfg.get("architecture") or type(model).__name__.lower())
    return f"{arch}-{sha256_state_dict(model.state_dict())[:12]}"


def lineage(model: nn.Module) -> set[str]:
    """The sha256 of the model and of every model it was derived from by earlier requests."""
    hashes = {sha256_state_dict(model.state_dict())}
    for entry in getattr(model, "unlearning_history", None) or []:
        hashes.update(h for h in (entry.get("input_sha256"), entry.get("output_sha256")) if h)
    return hashes


def fit_amortised(model: nn.Module, cfg: GeneratorConfig, augment, *, steps: int | None = None, seed: int = 0,
                  progress: bool = True) -> tuple[AntiMemoryGenerator, dict[str, Any]]:
    """Fit one ``network`` generator for every class of ``model``; returns it and its card.

    ``steps`` defaults to the recipe's steps x classes / 2 (the recipe's steps are sized for a
    request of about two classes).
    """
    from ..surgery import model_num_classes

    if cfg.kind != "network":
        raise RecipeError(f"an amortised generator must be class-conditional (generator.kind: network), not "
                          f"{cfg.kind!r}")
    pretrained = getattr(model, "pretrained_cfg", None) or {}
    if not pretrained.get("input_size"):
        raise InvalidRequestError("the model's input size is unknown: set model.pretrained_cfg['input_size']")
    num_classes = model_num_classes(model)
    steps = steps if steps is not None else max(cfg.steps, math.ceil(cfg.steps * num_classes / 2))
    channels = pretrained["input_size"][0]
    mean = tuple(pretrained.get("mean") or (0.0,) * channels)
    std = tuple(pretrained.get("std") or (1.0,) * channels)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = NetworkGenerator(num_classes, pretrained["input_size"], mean, std, latent_dim=cfg.latent_dim,
                                     width=cfg.width)
        # fit_generator runs the model in eval mode with frozen parameters and restores its mode.
        fit_generator(generator, model, list(range(num_classes)), cfg.with_values(steps=steps), augment,
                      progress=progress)
    card = {
        "model_id": model_id(model), "model_sha256": sha256_state_dict(model.state_dict()),
        "architecture": pretrained.get("architecture"), "num_classes": num_classes,
        "input_size": list(pretrained["input_size"]), "mean": list(mean), "std": list(std),
        "generator": {**asdict(cfg), "steps": steps}, "seed": seed,
        "fit_seconds": round(time.perf_counter() - start, 2),
    }
    return generator, card


def save_amortised(folder: str | os.PathLike, generator: AntiMemoryGenerator, card: dict, *,
                   overwrite: bool = False) -> Path:
    """Write ``generator.safetensors`` and ``card.json`` into ``folder`` (atomically, all or nothing)."""
    with atomic_dir(folder, overwrite=overwrite) as tmp:
        save_state_dict(tmp / WEIGHTS, generator.state_dict(), {"card": json.dumps(card)})
        write_text(tmp / CARD, json.dumps(card, indent=2) + "\n")
    return Path(folder)


def load_amortised(source: str | os.PathLike, model: nn.Module) -> AntiMemoryGenerator:
    """Load a saved amortised generator for ``model``; refuses one fitted for another model.

    ``source`` is a folder, a file in it, or the name of a shipped generator folder
    (``cifar10_resnet20-a0ce05c94895``; ``generators/NAME`` also resolves in an installed copy).
    A model derived from the fitted one by earlier ``forget_classes`` requests is accepted (its
    ``unlearning_history`` links it to the fitted weights).
    """
    from safetensors.torch import load_file

    from .._resources import generators_dir

    folder = Path(source)
    if folder.is_file():
        folder = folder.parent
    if not folder.exists() and (generators_dir() / folder.name).is_dir():
        folder = generators_dir() / folder.name
    card_path, weights = folder / CARD, folder / WEIGHTS
    if not card_path.is_file() or not weights.is_file():
        raise InvalidRequestError(f"{folder} is not an amortised generator folder (expected {CARD} and {WEIGHTS}; "
                                  "fit one with `zeroshot-unlearn generator fit`)")
    card = json.loads(card_path.read_text())
    if card.get("model_sha256") not in lineage(model):
        raise InvalidRequestError(
            f"the generator in {folder} was fitted for model {card.get('model_id')} (sha256 "
            f"{str(card.get('model_sha256'))[:12]}), not for this model ({model_id(model)}); fit one for this model "
            "with `zeroshot-unlearn generator fit`, or drop generator= to fit one inside the request")
    generator = NetworkGenerator(card["num_classes"], card["input_size"], card["mean"], card["std"],
                                 latent_dim=card["generator"]["latent_dim"], width=card["generator"]["width"])
    generator.load_state_dict(load_file(str(weights)))
    generator.card = card
    return generator.eval()


__all__ = ["fit_amortised", "save_amortised", "load_amortised", "model_id", "lineage"]
