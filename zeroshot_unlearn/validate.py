"""Checks shared by the API and the CLI. They run before any work and never modify their inputs."""

from __future__ import annotations

import numbers
from typing import Any, Sequence

import torch
import torch.nn as nn

from .data.datasets import ImageTensorDataset, images_at
from .errors import DataError, InvalidRequestError, ModelError
from .surgery import classifier_head


def validate_model(model: Any) -> None:
    if not isinstance(model, nn.Module):
        raise ModelError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    tensors = list(model.parameters()) + [b for b in model.buffers() if b.is_floating_point()]
    if not tensors:
        raise ModelError("the model has no parameters")
    dtypes = {t.dtype for t in tensors if t.is_floating_point()}
    if dtypes != {torch.float32}:
        raise ModelError(f"the model is in {', '.join(sorted(str(d) for d in dtypes))}; forgetting runs in float32 "
                         "on this device. Call model.float() first (mixed precision is a recipe option on CUDA)")
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        raise ModelError(f"the model is spread over devices {', '.join(sorted(map(str, devices)))}; move it to one "
                         "(model.cpu()); forget_classes places its copies on the run's device")
    unusable = sorted({d.type for d in devices} - {"cpu", "cuda"})
    if unusable:
        raise ModelError(f"the model is on {', '.join(unusable)}; forgetting runs on the CPU or CUDA. Call model.cpu() "
                         "first")
    from .zoo.describe import check_described

    check_described(model)
    head = classifier_head(model)
    if head is None and not isinstance(getattr(model, "num_classes", None), int):
        raise ModelError(f"{type(model).__name__} has no classifier head (no nn.Linear and no get_classifier())")
    declared = getattr(model, "num_classes", None)
    if head is not None and isinstance(declared, int) and head.out_features != declared:
        raise ModelError(f"the model declares num_classes={declared} but its classifier head has "
                         f"{head.out_features} outputs; fix the head or the attribute before forgetting")


def validate_classes(classes: Any, num_classes: int) -> list[int]:
    if isinstance(classes, (str, bytes)) or not isinstance(classes, (Sequence, set, frozenset, torch.Tensor)):
        raise InvalidRequestError(f"classes must be a list of class ids, e.g. [3, 7]; got {classes!r}")
    values = classes.tolist() if isinstance(classes, torch.Tensor) else list(classes)
    if not values:
        raise InvalidRequestError("classes is empty: name at least one class to forget, e.g. [3]")
    bad = [c for c in values if isinstance(c, bool) or not isinstance(c, numbers.Integral)]
    if bad:
        raise InvalidRequestError(f"class ids must be integers; got {bad[:5]!r}. Map class names to ids first")
    values = [int(c) for c in values]
    duplicates = sorted({c for c in values if values.count(c) > 1})
    if duplicates:
        raise InvalidRequestError(f"class {duplicates} is listed more than once")
    out_of_range = [c for c in values if not 0 <= c < num_classes]
    if out_of_range:
        raise InvalidRequestError(f"class {out_of_range} is out of range: the model's head has {num_classes} classes "
                                  f"(ids 0..{num_classes - 1})")
    if len(values) >= num_classes:
        raise InvalidRequestError(f"cannot forget all {num_classes} classes: at least one class must be retained")
    return sorted(values)


def retained_classes(num_classes: int, forget: Sequence[int]) -> list[int]:
    """The classes a model of ``num_classes`` keeps when it forgets ``forget``."""
    forgotten = set(forget)
    return [c for c in range(num_classes) if c not in forgotten]


def first_images(data, count: int = 16) -> torch.Tensor:
    """The first ``count`` images of a dataset in memory or on disk (what the checks can afford to read
    of images that are read from disk as they are used)."""
    return images_at(data, torch.arange(min(count, len(data))))


def item_shape(data) -> tuple[int, ...]:
    return tuple(data.x.shape[1:]) if hasattr(data, "x") else tuple(first_images(data, 1).shape[1:])


def retained_coverage(labels: torch.Tensor, forget: Sequence[int], num_classes: int) -> tuple[int, int]:
    """(retained classes the retained data shows, retained classes in all)."""
    retained = retained_classes(num_classes, forget)
    shown = set(labels.unique().tolist()) & set(retained)
    return len(shown), len(retained)


def validate_retain(retain, forget: Sequence[int], num_classes: int,
                    input_size: Sequence[int] | None, min_per_class: int) -> None:
    """Retained data: labelled images of retained classes, normalised for the model.

    It may show only part of the retained classes (a zoo model's 1,000 classes, a few of them in hand):
    the classes it does not show are kept by the masked teacher. A class it shows gets at least
    ``min_per_class`` images. Images in memory are checked whole; images on disk, their first few.
    """
    if len(retain) == 0:
        raise DataError("the retained dataset is empty; pass a few images of every retained class")
    images = retain.x if hasattr(retain, "x") else first_images(retain)
    if not torch.is_floating_point(images):
        raise DataError(f"retained images are {images.dtype}; expected float tensors normalised for the model "
                        "(e.g. ToTensor() then Normalize(mean, std)); raw uint8 0-255 pixels are not accepted")
    labels = retain.y
    if labels.min() < 0 or labels.max() >= num_classes:
        raise DataError(f"retained labels must be in 0..{num_classes - 1}; found {int(labels.min())}.."
                        f"{int(labels.max())}")
    leaked = torch.isin(labels, torch.as_tensor(list(forget)))
    if leaked.any():
        found = sorted(set(labels[leaked].tolist()))
        raise DataError(f"the retained data contains {int(leaked.sum())} samples of forget class(es) {found}: "
                        "forgetting must not see them. Filter them out (retained_subset() does)")
    if input_size and tuple(images.shape[1:]) != tuple(input_size):
        raise DataError(f"retained images have shape {tuple(images.shape[1:])}, the model expects "
                        f"{tuple(input_size)} (C, H, W); resize/convert them first")
    if not torch.isfinite(images).all():
        raise DataError("the retained images contain NaN or Inf")
    if images.min() >= 0 and images.max() > 2.5:
        raise DataError(f"retained images range over {float(images.min()):.0f}..{float(images.max()):.0f}: "
                        "they look like raw 0-255 pixels; the model expects normalised floats "
                        "(ToTensor() then Normalize(mean, std))")
    counts = torch.bincount(labels, minlength=num_classes)
    thin = [c for c in retained_classes(num_classes, forget) if 0 < counts[c] < min_per_class]
    if thin:
        raise DataError(f"retained class(es) {thin} have fewer than {min_per_class} samples (the recipe's "
                        "min_per_class); give more retained data or lower min_per_class")


def validate_forget_data(data: ImageTensorDataset, forget: Sequence[int], input_size: Sequence[int]) -> None:
    """Forget-class images for the baselines that need them: non-empty, forget classes only, right shape."""
    if len(data) == 0:
        raise DataError("forget_data is empty")
    stray = sorted(set(data.y.unique().tolist()) - set(forget))
    if stray:
        raise DataError(f"forget_data holds samples of class(es) {stray}, which are not being forgotten")
    if tuple(data.x.shape[1:]) != tuple(input_size):
        raise DataError(f"forget_data images have shape {tuple(data.x.shape[1:])}, the model expects "
                        f"{tuple(input_size)} (C, H, W)")
    if not torch.is_floating_point(data.x) or not torch.isfinite(data.x).all():
        raise DataError("forget_data images must be finite float tensors normalised for the model")


def validate_eval_data(data: ImageTensorDataset, forget: Sequence[int], num_classes: int,
                       input_size: Sequence[int]) -> None:
    """An evaluation split for the self-check: labelled images of the model's classes, some of the forget classes."""
    images = data.x if hasattr(data, "x") else first_images(data)
    if tuple(images.shape[1:]) != tuple(input_size):
        raise DataError(f"eval_data images have shape {tuple(images.shape[1:])}, the model expects "
                        f"{tuple(input_size)} (C, H, W)")
    if not torch.is_floating_point(images) or not torch.isfinite(images).all():
        raise DataError("eval_data images must be finite float tensors normalised for the model")
    labels = set(data.y.unique().tolist())
    if not labels <= set(range(num_classes)):
        raise DataError(f"eval_data has labels {sorted(labels - set(range(num_classes)))} outside the model's "
                        f"{num_classes} classes")
    if not labels & set(forget):
        raise DataError(f"eval_data holds no image of the forget classes {list(forget)}, so it cannot measure Df: "
                        "pass an evaluation split of all classes (e.g. the test split)")
