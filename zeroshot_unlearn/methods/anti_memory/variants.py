"""Ablations of the project's method: its schedule without anti-memories, and with the representation terms."""

from __future__ import annotations

from ..registry import register_method
from .method import AntiMemory


@register_method
class AntiMemoryWithoutGenerator(AntiMemory):
    """Ablation: the same impair/repair schedule on retained data only (no anti-memories)."""

    name = "anti_memory_no_generator"
    summary = "the default's schedule without anti-memories"
    uses_generator = False
    data_free_variant = None
    recipe_overrides = {"impair.anti_memory_batch": 0}


@register_method
class AntiMemoryFeatures(AntiMemory):
    """Variant with the representation term: anti-memory features pulled to retained-class
    prototypes, retained features held at the original's (``impair.feature_weight``,
    ``impair.retain_feature_weight``)."""

    name = "anti_memory_features"
    summary = "the default plus representation terms"
    data_free_variant = None
    recipe_overrides = {"impair.feature_weight": 1.0, "impair.retain_feature_weight": 1.0}
