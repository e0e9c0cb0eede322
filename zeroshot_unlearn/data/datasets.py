"""In-memory labelled image datasets in the model's normalised input space."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError


class ImageTensorDataset(Dataset):
    """Images ``x`` (N, C, H, W) float32, already normalised for the model, and labels ``y`` (N,) int64."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, classes: Sequence[str] | None = None,
                 index: torch.Tensor | None = None):
        if x.ndim != 4 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"expected images (N, C, H, W) and labels (N,), got {tuple(x.shape)} and {tuple(y.shape)}")
        self.x = x
        self.y = y.long()
        self.classes = list(classes) if classes is not None else None
        self.index = index

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]

    def subset(self, rows: torch.Tensor | np.ndarray) -> "ImageTensorDataset":
        rows = torch.as_tensor(rows, dtype=torch.long)
        index = self.index[rows] if self.index is not None else rows
        return ImageTensorDataset(self.x[rows], self.y[rows], self.classes, index)

    def of_classes(self, classes: Sequence[int]) -> "ImageTensorDataset":
        mask = torch.isin(self.y, torch.as_tensor(list(classes), dtype=torch.long))
        return self.subset(torch.nonzero(mask).flatten())


@dataclass
class DataSplits:
    train: ImageTensorDataset | None
    """In memory, or :class:`~zeroshot_unlearn.data.FolderImages` read from disk as it is used; None for an
    evaluation folder that holds only ``test/``."""
    test: ImageTensorDataset | None
    classes: list[str]
    name: str = ""

    def require_train(self, role: str = "retained data") -> ImageTensorDataset:
        """The train split, or a :class:`~zeroshot_unlearn.errors.DataError` that says what to pass instead."""
        if self.train is None:
            raise DataError(f"{self.name or 'the data'} holds only a test split (test/ and no train/), so it cannot "
                            f"give the {role}: pass it as the evaluation data (--eval-data, eval_data=) and the "
                            "retained images as a folder with train/ (or class folders at its top)")
        return self.train


def normalise_uint8(images: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 images (N, H, W, C) or (N, H, W) -> float (N, C, H, W) normalised with ``mean``/``std``."""
    if images.dtype != np.uint8:
        raise DataError(f"expected uint8 pixels, got {images.dtype}")
    x = torch.from_numpy(np.ascontiguousarray(images))
    if x.ndim == 3:
        x = x.unsqueeze(-1)
    x = x.permute(0, 3, 1, 2)
    x = x.float().div_(255.0)
    if x.shape[1] != len(mean):
        raise DataError(f"the images have {x.shape[1]} channels but the model expects {len(mean)}")
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return ((x - mean_t) / std_t).contiguous()


def is_streamed(dataset) -> bool:
    """Whether ``dataset`` is read from disk as it is used (no ``x`` tensor: a :class:`FolderImages`)."""
    return hasattr(dataset, "item_shape") and not hasattr(dataset, "x")


def loader_workers(dataset) -> int:
    """DataLoader worker processes for ``dataset``: none for tensors in memory; for images on disk, up to
    four, one core left to the training (JPEG decoding and resizing are what they do)."""
    if not is_streamed(dataset):
        return 0
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def iter_batches(dataset, batch_size: int = 256):
    """``(images, labels)`` of ``dataset`` in order, ``batch_size`` at a time, on the CPU: slices of an
    in-memory dataset, or a DataLoader with workers over images on disk (only a few batches in memory)."""
    if hasattr(dataset, "x"):
        for i in range(0, len(dataset), batch_size):
            yield dataset.x[i:i + batch_size], dataset.y[i:i + batch_size]
        return
    from torch.utils.data import DataLoader

    workers = loader_workers(dataset)
    yield from DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                          persistent_workers=False, prefetch_factor=2 if workers else None)


def images_at(dataset, rows: torch.Tensor) -> torch.Tensor:
    """The images of ``rows``: indexed in memory, or read from disk."""
    if hasattr(dataset, "x"):
        return dataset.x[rows]
    return torch.stack([dataset[int(i)][0] for i in rows])


def in_memory(dataset) -> ImageTensorDataset:
    """Every image of ``dataset`` in one tensor (for the methods that hold their data whole)."""
    if hasattr(dataset, "x"):
        return dataset
    parts = list(iter_batches(dataset))
    return ImageTensorDataset(torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts]),
                              getattr(dataset, "classes", None), getattr(dataset, "index", None))


def materialise(dataset: Dataset, batch_size: int = 512) -> ImageTensorDataset:
    """Any map-style dataset of (image tensor, label) pairs as one in-memory dataset; images on disk
    (:func:`is_streamed`) stay on disk."""
    if isinstance(dataset, ImageTensorDataset) or is_streamed(dataset):
        return dataset
    if hasattr(dataset, "tensors") and len(dataset.tensors) == 2:  # TensorDataset
        x, y = dataset.tensors
        _check_pair(x, y)
        return ImageTensorDataset(x, y.long(), getattr(dataset, "classes", None))
    try:
        n = len(dataset)  # type: ignore[arg-type]
    except TypeError:
        raise DataError("the retained data must be a map-style Dataset with a length") from None
    if n == 0:
        raise DataError("the retained dataset is empty; pass at least a few images of every retained class")
    xs, ys = [], []
    for i in range(n):
        item = dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise DataError(f"dataset item {i} is a {type(item).__name__}; expected (image, label)")
        xs.append(torch.as_tensor(item[0]))
        ys.append(int(item[1]))
    try:
        x = torch.stack(xs)
    except RuntimeError as err:
        raise DataError(f"the dataset's images do not all have one shape: {err}") from None
    y = torch.tensor(ys, dtype=torch.long)
    _check_pair(x, y)
    return ImageTensorDataset(x, y, getattr(dataset, "classes", None))


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if not torch.is_floating_point(x):
        raise DataError(f"images are {x.dtype}; expected float tensors normalised for the model "
                        "(e.g. ToTensor() then Normalize(mean, std)); raw uint8 0-255 pixels are not accepted")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise DataError(f"labels must be integers, got {y.dtype}")
    if x.ndim != 4:
        raise DataError(f"images must be (N, C, H, W), got shape {tuple(x.shape)}")
