"""Class names: read from a file or list, taken from a model, shown in messages.

A model carries its class names in ``pretrained_cfg["label_names"]`` (timm's key). A model whose head
has as many outputs as an ImageNet subset of timm's (1,000: ImageNet-1k) and carries none knows them
anyway: its classes are that subset's WordNet ids in the standard order (``n01440764`` is class 0),
with timm's descriptions (``tench, Tinca tinca``). A class can then be named by id, by wnid, by its
whole description or by any one of the description's comma-separated synonyms (``tench``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

import torch.nn as nn

from ..errors import DataError, InvalidRequestError


def read_class_names(class_names: Sequence[str] | str | Path) -> list[str]:
    """A list of class names, or the lines of a text file (blank lines ignored)."""
    if isinstance(class_names, (str, Path)):
        path = Path(class_names)
        if not path.is_file():
            raise DataError(f"class-names file {str(path)!r} does not exist (one class name per line, in the "
                            "model's class order)")
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [str(n) for n in class_names]


def _num_classes(model: nn.Module) -> int | None:
    from ..surgery import model_num_classes

    try:
        return model_num_classes(model)
    except Exception:  # a model without a recognisable head has no names to give
        return None


@functools.lru_cache(maxsize=4)
def _imagenet(num_classes: int) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(wnids, descriptions) of timm's ImageNet subset with ``num_classes`` classes, or None."""
    try:
        from timm.data import ImageNetInfo, infer_imagenet_subset
    except ImportError:  # an old timm: no class information to offer
        return None
    subset = infer_imagenet_subset({"num_classes": num_classes})
    if subset is None:
        return None
    info = ImageNetInfo(subset)
    wnids = tuple(info.label_names())
    return wnids, tuple(info.index_to_description(i) for i in range(len(wnids)))


def imagenet_head(model: nn.Module | None) -> bool:
    """Whether the model's classes are taken to be an ImageNet subset's (a head of 1,000 outputs, say,
    and no ``label_names`` of its own)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    if model is None or cfg.get("label_names"):
        return False
    count = _num_classes(model)
    return count is not None and _imagenet(count) is not None


def label_names_of(model: nn.Module | None) -> list[str] | None:
    """The model's class names, one per output: ``pretrained_cfg["label_names"]``, else an ImageNet
    head's WordNet ids; None when it has neither."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    names = cfg.get("label_names")
    count = _num_classes(model) if model is not None else None
    if names:
        names = [str(n) for n in names]
        return names if len(names) == count else None
    imagenet = _imagenet(count) if count is not None else None
    return list(imagenet[0]) if imagenet else None


def label_descriptions_of(model: nn.Module | None) -> list[str] | None:
    """A description per class: ``pretrained_cfg["label_descriptions"]`` (timm's: a list, or a dict by
    label name), an ImageNet head's descriptions, else the label names themselves."""
    names = label_names_of(model)
    if names is None:
        return None
    cfg = getattr(model, "pretrained_cfg", None) or {}
    given = cfg.get("label_descriptions")
    if isinstance(given, dict):
        return [str(given.get(n, n)) for n in names]
    if isinstance(given, (list, tuple)) and len(given) == len(names):
        return [str(d) for d in given]
    if imagenet_head(model):
        return list(_imagenet(len(names))[1])
    return names


def display_names_of(model: nn.Module | None) -> list[str] | None:
    """A short name per class for tables and reports: a description's first synonym (``tench``)."""
    descriptions = label_descriptions_of(model)
    return [d.split(",")[0].strip() or d for d in descriptions] if descriptions is not None else None


def class_ids_by_name(model: nn.Module, names: Sequence[str]) -> list[int]:
    """The class id of each of ``names``: a label name (a wnid), a whole description or one of its
    synonyms (case-insensitive), or a numeric string. An unknown or ambiguous name is an
    :class:`InvalidRequestError` saying which classes the model has or which ids the name could be."""
    labels = label_names_of(model)
    if not labels:
        raise InvalidRequestError(f"class names {list(names)} given, but this model carries no class names "
                                  "(pretrained_cfg['label_names']); pass class ids, e.g. [3, 7]")
    exact = {}
    for i, label in enumerate(labels):
        exact.setdefault(label, []).append(i)
    loose: dict[str, set[int]] = {}
    for i, (label, description) in enumerate(zip(labels, label_descriptions_of(model) or labels)):
        for key in {label, description, *description.split(",")}:
            if key.strip():
                loose.setdefault(key.strip().lower(), set()).add(i)
    ids = []
    for name in names:
        found = exact.get(name) or sorted(loose.get(name.strip().lower(), ()))
        if not found and name.strip().isdigit():
            found = [int(name)]
        if not found:
            raise InvalidRequestError(f"unknown class name {name!r}; this model's classes: "
                                      f"{describe_classes(display_names_of(model) or labels)}")
        if len(found) > 1:
            shown = ", ".join(f"{i} ({labels[i]}: {(label_descriptions_of(model) or labels)[i]})" for i in found)
            raise InvalidRequestError(f"class name {name!r} is ambiguous: it names classes {shown}; pass the id "
                                      "or the label name instead")
        ids.append(found[0])
    return ids


def describe_classes(names: Sequence[str], limit: int = 40) -> str:
    """``0 airplane, 1 automobile, ...``; names that only repeat their ids are shown as the id range;
    beyond ``limit`` classes, the first few and a count."""
    if list(names) == [str(i) for i in range(len(names))]:
        return f"ids 0..{len(names) - 1}, no other names"
    listed = ", ".join(f"{i} {n}" for i, n in enumerate(names[:limit]))
    return listed if len(names) <= limit else f"{listed}, ... ({len(names)} classes)"
