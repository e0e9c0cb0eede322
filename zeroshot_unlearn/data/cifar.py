"""CIFAR-10 and CIFAR-100: from torchvision (downloads when online) or from ``.npz`` files (offline benchmark layout)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import DataError
from .datasets import DataSplits, ImageTensorDataset, normalise_uint8

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# The standard fine labels: ids are the alphabetical order of the names (the original ``meta`` file).
CIFAR100_CLASSES = ["apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp",
    "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse",
    "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain",
    "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal",
    "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower",
    "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor", "train", "trout", "tulip",
    "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm"]


def _load_npz(path: Path, mean, std) -> ImageTensorDataset:
    try:
        with np.load(path, allow_pickle=False) as data:
            x, y = data["x"], data["y"].astype(np.int64)
            index = data["index"] if "index" in data.files else None
            classes = [str(c) for c in data["classes"]] if "classes" in data.files else None
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"{path} is not an image .npz with arrays 'x' and 'y': {err}") from None
    if x.ndim not in (3, 4):
        raise DataError(f"{path}: 'x' must be (N, H, W, C) or (N, H, W) uint8, got shape {x.shape}")
    return ImageTensorDataset(normalise_uint8(x, mean, std), torch.from_numpy(y), classes,
                              torch.from_numpy(index) if index is not None else None)


def load_npz_dir(folder: str | Path, mean: Sequence[float], std: Sequence[float]) -> DataSplits:
    """A folder with one ``*train*.npz`` and optionally one ``*test*.npz`` (arrays x uint8 NHWC, y, classes)."""
    folder = Path(folder)
    train_files = sorted(folder.glob("*train*.npz"))
    test_files = sorted(folder.glob("*test*.npz"))
    if len(train_files) != 1 or len(test_files) > 1:
        raise DataError(f"{folder} must hold exactly one *train*.npz (found {len(train_files)}) "
                        f"and at most one *test*.npz (found {len(test_files)})")
    train = _load_npz(train_files[0], mean, std)
    test = _load_npz(test_files[0], mean, std) if test_files else None
    classes = train.classes or [str(i) for i in range(int(train.y.max()) + 1)]
    return DataSplits(train, test, classes, name=folder.name)


def load_cifar10_torchvision(root: str | Path, mean: Sequence[float], std: Sequence[float], *,
                             download: bool = True) -> DataSplits:
    """CIFAR-10 through ``torchvision.datasets.CIFAR10`` (downloads into ``root`` when allowed)."""
    from torchvision.datasets import CIFAR10

    try:
        train = CIFAR10(str(root), train=True, download=download)
        test = CIFAR10(str(root), train=False, download=download)
    except RuntimeError as err:
        raise DataError(f"CIFAR-10 not found under {root}: {err}") from None
    splits = [ImageTensorDataset(normalise_uint8(np.asarray(d.data), mean, std),
                                 torch.as_tensor(d.targets, dtype=torch.long), CIFAR10_CLASSES)
              for d in (train, test)]
    return DataSplits(splits[0], splits[1], CIFAR10_CLASSES, name="cifar10")
