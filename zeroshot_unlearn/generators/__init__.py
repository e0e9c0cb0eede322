"""Anti-memory generators, registered by name (the recipe's ``generator.kind``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import torch.nn as nn

from ..errors import InvalidRequestError, RecipeError
from ..recipes import GeneratorConfig
from .base import AntiMemoryGenerator, fit_generator
from .network import NetworkGenerator
from .noise import NoiseGenerator

GENERATORS: dict[str, type[AntiMemoryGenerator]] = {"network": NetworkGenerator, "noise": NoiseGenerator}


def list_generators() -> list[str]:
    return sorted(GENERATORS)


def create_generator(cfg: GeneratorConfig, *, num_classes: int, input_size: Sequence[int], mean: Sequence[float],
                     std: Sequence[float], forget: Sequence[int]) -> AntiMemoryGenerator:
    if cfg.kind not in GENERATORS:
        raise RecipeError(f"unknown generator.kind {cfg.kind!r}; registered generators: {', '.join(list_generators())}")
    return GENERATORS[cfg.kind](num_classes, input_size, mean, std, forget=forget, latent_dim=cfg.latent_dim,
                                width=cfg.width, samples_per_class=cfg.samples_per_class)


def load_generator(source: str | os.PathLike, model: nn.Module) -> AntiMemoryGenerator:
    """The anti-memory generator of a forget run (its output folder or ``generator.safetensors``, with
    ``recipe.yaml`` beside it) or an amortised generator folder, ready to sample for ``model``."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from ..recipes import load_recipe
    from ..surgery import model_num_classes
    from ..zoo.loading import METADATA_KEY
    from .amortised import CARD, load_amortised

    path = Path(source)
    folder = path.parent if path.is_file() else path
    if (folder / CARD).is_file():
        return load_amortised(folder, model)
    weights, recipe_file = folder / "generator.safetensors", folder / "recipe.yaml"
    if not weights.is_file() or not recipe_file.is_file():
        raise InvalidRequestError(f"{source} holds no generator: expected a forget output folder (generator.safetensors "
                                  "and recipe.yaml) or an amortised generator folder (card.json)")
    with safe_open(str(weights), "pt") as handle:
        meta = json.loads((handle.metadata() or {}).get(METADATA_KEY, "{}"))
    cfg = model.pretrained_cfg
    generator = create_generator(load_recipe(recipe_file).generator, num_classes=model_num_classes(model),
                                 input_size=cfg["input_size"], mean=cfg["mean"], std=cfg["std"],
                                 forget=meta.get("classes", []))
    try:
        generator.load_state_dict(load_file(str(weights)))
    except RuntimeError as err:
        raise InvalidRequestError(f"{weights} does not fit this model's generator: {str(err).splitlines()[0]}") from None
    return generator.eval()


__all__ = ["load_generator", "AntiMemoryGenerator", "NetworkGenerator", "NoiseGenerator", "GENERATORS", "create_generator",
           "fit_generator", "list_generators"]
