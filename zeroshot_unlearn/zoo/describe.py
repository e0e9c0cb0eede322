"""``describe_model``: give a model object built elsewhere (torchvision, your own code) the ``pretrained_cfg`` a
request reads.

A timm model carries its input size, normalisation and evaluation transform in ``pretrained_cfg``; a
torchvision model carries none of them on the module, only in the weights enum it was built with
(``ResNet50_Weights.IMAGENET1K_V2.transforms()``). Without them the request cannot choose its path (the input
size decides it), read images the way the model was trained on them, or invert it for the self-check, so a
torchvision model without a description is refused before any work, with the call that fixes it.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch.nn as nn

from ..errors import ModelError
from ..surgery import model_num_classes


def is_torchvision_model(model: nn.Module) -> bool:
    return type(model).__module__.startswith("torchvision.models")


def describe_model(model: nn.Module, weights: Any = None, *, input_size: Sequence[int] | None = None,
                   mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                   crop_pct: float | None = None, interpolation: str | None = None,
                   label_names: Sequence[str] | None = None, architecture: str | None = None) -> nn.Module:
    """Set ``model.pretrained_cfg`` (timm's keys) and return ``model`` (the same object: describing it is the
    one change this makes, and the one the caller asks for).

    ``weights``: a torchvision weights enum member (``ResNet50_Weights.IMAGENET1K_V2``): the input size,
    normalisation, resize and crop, interpolation and architecture name come from it. A model fine-tuned to
    its own classes gives what differs as keywords (``label_names``: its class names in output order;
    ``input_size``: ``(C, H, W)``). Without ``weights``, ``input_size``, ``mean`` and ``std`` are required.
    """
    if not isinstance(model, nn.Module):
        raise ModelError(f"describe_model needs a torch.nn.Module, got {type(model).__name__}")
    cfg: dict[str, Any] = {}
    if weights is not None:
        transforms = getattr(weights, "transforms", None)
        if not callable(transforms):
            raise ModelError(f"weights must be a torchvision weights enum member (e.g. ResNet50_Weights.IMAGENET1K_V2), "
                             f"got {type(weights).__name__}")
        preset = transforms()
        crop, resize = _side(preset.crop_size), _side(preset.resize_size)
        cfg.update(input_size=(3, crop, crop), mean=tuple(preset.mean), std=tuple(preset.std),
                   crop_pct=round(crop / resize, 4) if resize else 1.0,
                   interpolation=str(getattr(preset.interpolation, "value", preset.interpolation)),
                   # namespaced: "resnet50" is also a timm name, whose weights are laid out otherwise
                   architecture="torchvision." + type(weights).__name__.removesuffix("_Weights").lower(),
                   weights=f"torchvision {type(weights).__name__}.{getattr(weights, 'name', weights)}")
    for key, value in (("input_size", input_size), ("mean", mean), ("std", std), ("crop_pct", crop_pct),
                       ("interpolation", interpolation), ("architecture", architecture)):
        if value is not None:
            cfg[key] = tuple(value) if isinstance(value, (list, tuple)) else value
    missing = [key for key in ("input_size", "mean", "std") if key not in cfg]
    if missing:
        raise ModelError(f"describe_model needs the model's {', '.join(missing)}: pass weights= (a torchvision "
                         "weights enum member) or the values themselves")
    if len(cfg["input_size"]) != 3:
        raise ModelError(f"input_size must be (C, H, W), got {cfg['input_size']}")
    num_classes = model_num_classes(model)
    if label_names is not None:
        if len(label_names) != num_classes:
            raise ModelError(f"{len(label_names)} label_names for a head of {num_classes} classes")
        cfg["label_names"] = list(label_names)
    cfg.setdefault("architecture", ("torchvision." if is_torchvision_model(model) else "") + type(model).__name__.lower())
    cfg.setdefault("weights", "described by the caller (describe_model)")
    cfg["num_classes"] = num_classes
    model.pretrained_cfg = cfg
    return model


def _side(size) -> int:
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def check_described(model: nn.Module) -> None:
    """A torchvision model without ``pretrained_cfg`` is refused: its input size and normalisation are in the
    weights it was built with, which the module does not keep."""
    if is_torchvision_model(model) and not (getattr(model, "pretrained_cfg", None) or {}).get("input_size"):
        name = type(model).__name__
        raise ModelError(f"this torchvision {name} carries no input size or normalisation (they live in the weights "
                         "enum it was built with): describe it first with those weights, e.g. model = "
                         "describe_model(model, weights=ResNet50_Weights.IMAGENET1K_V2) (from zeroshot_unlearn import "
                         "describe_model), or for a "
                         "fine-tune of your own describe_model(model, input_size=(3, 224, 224), mean=..., std=..., "
                         "label_names=[...])")


__all__ = ["describe_model", "check_described", "is_torchvision_model"]
