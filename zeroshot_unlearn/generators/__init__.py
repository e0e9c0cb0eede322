"""Anti-memory generators, registered by name (the recipe's ``generator.kind``)."""

from __future__ import annotations

from typing import Sequence

from ..errors import RecipeError
from ..sections import GeneratorConfig
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


__all__ = ["AntiMemoryGenerator", "NetworkGenerator", "NoiseGenerator", "GENERATORS", "create_generator",
           "fit_generator", "list_generators"]
