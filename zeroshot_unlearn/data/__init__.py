"""Data: the embedded digits, CIFAR-10 (torchvision or npz), ImageFolder trees, and the retained-subset sampler."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch.nn as nn

from ..errors import DataError, InvalidRequestError
from .cifar import CIFAR10_CLASSES, load_cifar10_torchvision, load_npz_dir
from .datasets import DataSplits, ImageTensorDataset, iter_batches, materialise, normalise_uint8
from .digits import load_digits
from .folder import FolderImages, load_image_folder
from .names import describe_classes, display_names_of, label_names_of, read_class_names


def load_data(source: str | Path, model: nn.Module | None = None, *, mean: Sequence[float] | None = None,
              std: Sequence[float] | None = None, input_size: Sequence[int] | None = None,
              class_names: Sequence[str] | str | Path | None = None) -> DataSplits:
    """Load ``source`` normalised for ``model`` (its ``pretrained_cfg`` mean/std/input size).

    ``source`` is ``"digits"`` (embedded), a folder of ``*train*.npz``/``*test*.npz`` files,
    or an ImageFolder tree, read from disk as it is used (:class:`FolderImages`, through the model's
    own evaluation transform). An ImageFolder's class folders are matched to the model's classes by
    name (``class_names``, else the model's ``label_names``) or by a numeric folder name, so a
    tree of the retained classes only is labelled right. ``class_names`` is a list or a text file
    with one name per line, in the model's class order. For CIFAR-10 from the internet use
    :func:`load_cifar10_torchvision`.
    """
    cfg = getattr(model, "pretrained_cfg", {}) if model is not None else {}
    mean = tuple(mean or cfg.get("mean") or ())
    std = tuple(std or cfg.get("std") or ())
    input_size = tuple(input_size or cfg.get("input_size") or ())
    if str(source) == "digits":
        return load_digits(mean or (0.1307,), std or (0.3081,))
    if not mean or not std:
        raise DataError("pass a model (or mean= and std=) so the images can be normalised the way it expects")
    folder = Path(source)
    if not folder.is_dir():
        raise DataError(f"data folder {str(source)!r} does not exist (expected 'digits', a folder of .npz files "
                        "or an ImageFolder tree)")
    if any(folder.glob("*.npz")):
        return load_npz_dir(folder, mean, std)
    if not input_size:
        raise DataError("an ImageFolder needs the model's input size (pass a model or input_size=)")
    num_classes = None
    if model is not None:
        from ..surgery import model_num_classes

        num_classes = model_num_classes(model)
    names = read_class_names(class_names) if class_names is not None else label_names_of(model)
    shown = display_names_of(model) if class_names is None else None
    return load_image_folder(folder, input_size, mean, std, label_names=names, num_classes=num_classes,
                             data_config=cfg, display_names=shown)


def retained_subset(dataset: ImageTensorDataset, forget: Sequence[int], budget: int | float, *,
                    seed: int = 0, num_classes: int | None = None) -> ImageTensorDataset:
    """A class-balanced sample of the retained classes: ``budget`` images (int) or a fraction of ``dataset``.

    Forget-class samples are never drawn. The budget is shared by the retained classes ``dataset``
    has images of (a few classes of a 1,000-class model, say; the others are kept by the masked
    teacher): each gets ``budget // n`` images (fewer if it has fewer), chosen with ``seed``.
    """
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget <= 0:
        raise InvalidRequestError(f"retain budget must be a positive count or a fraction in (0, 1], got {budget!r}")
    if isinstance(budget, float):
        if budget > 1:
            raise InvalidRequestError(f"a fractional retain budget must be in (0, 1], got {budget}")
        budget = max(1, int(round(budget * len(dataset))))
    n_classes = num_classes or int(dataset.y.max()) + 1
    present, forgotten = set(dataset.y.unique().tolist()), set(forget)
    retained = [c for c in range(n_classes) if c not in forgotten and c in present]
    if not retained:
        raise InvalidRequestError(f"forgetting classes {sorted(forget)} leaves no retained class with an image in "
                                  "the data to sample")
    per_class = budget // len(retained)
    if per_class < 1:
        raise InvalidRequestError(f"a budget of {budget} images cannot cover the {len(retained)} retained classes the "
                                  "data has images of (one image each at least)")
    rng = np.random.default_rng(seed)
    labels = dataset.y.numpy()
    rows = []
    for c in retained:
        candidates = np.flatnonzero(labels == c)
        rows.append(np.sort(rng.choice(candidates, size=min(per_class, len(candidates)), replace=False)))
    return dataset.subset(np.concatenate(rows))


__all__ = ["DataSplits", "ImageTensorDataset", "FolderImages", "iter_batches", "load_data", "load_digits", "load_npz_dir", "load_image_folder",
           "load_cifar10_torchvision", "retained_subset", "read_class_names", "label_names_of",
           "describe_classes", "materialise", "normalise_uint8", "CIFAR10_CLASSES"]
