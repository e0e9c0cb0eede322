"""``ModelSpec``: what a request needs to know about the model, read once from its ``pretrained_cfg``.

The plan reads the spec once and carries it: the methods read the classes, input size and normalisation from
their context, and the result writes the model's ``pretrained_cfg`` back unchanged. (Two checks still look at
the model itself: class names are resolved by ``data.names``, and a head-only data-free run reads the input
size to draw its feature prior.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch.nn as nn

from .surgery import model_num_classes


def model_architecture(model: nn.Module) -> str:
    """The architecture a recipe is chosen by: ``pretrained_cfg["architecture"]``, else the class name."""
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    return str(cfg.get("architecture") or type(model).__name__.lower())


@dataclass(frozen=True)
class ModelSpec:
    """The model as a request sees it. ``input_size`` is ``()`` while unknown (a model without
    ``pretrained_cfg["input_size"]`` takes it from its retained data: :meth:`with_input_size`)."""

    num_classes: int
    input_size: tuple[int, ...]
    """``(C, H, W)``."""
    mean: tuple[float, ...]
    std: tuple[float, ...]
    architecture: str
    label_names: tuple[str, ...] | None = None
    """The model's own name of each class (a wnid such as ``n01440764`` on an ImageNet head), where it has them."""
    interpolation: str | None = None
    crop_pct: float | None = None
    pretrained_cfg: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """A copy of the model's ``pretrained_cfg``, given to the result unchanged."""

    @classmethod
    def of(cls, model: nn.Module, input_size: Sequence[int] = ()) -> ModelSpec:
        """The spec of ``model``; ``input_size`` is used only where its ``pretrained_cfg`` has none."""
        cfg = dict(getattr(model, "pretrained_cfg", None) or {})
        spec = cls(num_classes=model_num_classes(model), input_size=(), mean=(), std=(),
                   architecture=model_architecture(model),
                   label_names=tuple(cfg["label_names"]) if cfg.get("label_names") else None,
                   interpolation=cfg.get("interpolation"), crop_pct=cfg.get("crop_pct"), pretrained_cfg=cfg)
        return spec.with_input_size(cfg.get("input_size") or input_size)

    def with_input_size(self, input_size: Sequence[int]) -> ModelSpec:
        """The spec with ``input_size`` (where it had none) and the normalisation of that many channels
        (``pretrained_cfg``'s mean and std, else none: 0 and 1)."""
        size = tuple(self.input_size or input_size or ())
        channels = size[0] if size else 0
        cfg = self.pretrained_cfg
        return type(self)(num_classes=self.num_classes, input_size=size,
                          mean=tuple(cfg.get("mean") or (0.0,) * channels),
                          std=tuple(cfg.get("std") or (1.0,) * channels), architecture=self.architecture,
                          label_names=self.label_names, interpolation=self.interpolation, crop_pct=self.crop_pct,
                          pretrained_cfg=cfg)
