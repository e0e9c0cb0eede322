"""The benchmark data folder (``../shared/data`` in the project's own setup), rebuilt from public sources.

``fetch_benchmark_data(out)`` writes what the CIFAR-10 tests and benchmarks read:

- ``cifar10_test.npz``: the 10,000 test images in torchvision's order (``x`` uint8 NHWC, ``y``, ``classes``);
- ``cifar10_train_subset.npz``: the first 1,000 training images of each class in the original order, with
  ``index`` (their position among the 50,000);
- ``checkpoints/``: the public CIFAR-10 ResNets of ``checkpoints/registry.yaml`` (each checked against its sha256).

CIFAR-10 comes through ``torchvision.datasets.CIFAR10`` (which checks the archive's md5). The retrain
reference for {3, 7} of the project's own setup is not public; ``bench --reference`` and the audit
take any retrain checkpoint instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from .._resources import cache_dir
from ..errors import DataError
from ..io import atomic_path
from ..data.cifar import CIFAR10_CLASSES

PER_CLASS = 1000


def class_balanced_rows(labels: np.ndarray, per_class: int) -> np.ndarray:
    """The first ``per_class`` rows of every class, in their original order (sorted)."""
    rows = [np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(rows))


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)


def write_cifar10_npz(out: Path, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                      test_y: np.ndarray, per_class: int = PER_CLASS) -> None:
    """The two ``.npz`` files of the benchmark layout from the full CIFAR-10 arrays (uint8 NHWC, labels)."""
    if train_x.dtype != np.uint8 or train_x.ndim != 4 or len(train_x) != len(train_y):
        raise DataError(f"expected uint8 (N, H, W, C) training images with one label each, got {train_x.dtype} "
                        f"{train_x.shape} and {len(train_y)} labels")
    classes = np.array(CIFAR10_CLASSES)
    rows = class_balanced_rows(train_y, per_class)
    _write_npz(out / "cifar10_test.npz", x=test_x, y=test_y.astype(np.int64), classes=classes)
    _write_npz(out / "cifar10_train_subset.npz", x=train_x[rows], y=train_y[rows].astype(np.int64),
               index=rows.astype(np.int64), classes=classes)


def fetch_benchmark_data(out: str | Path, *, download_root: str | Path | None = None) -> Path:
    """Download CIFAR-10 and the public checkpoints and write the benchmark data folder ``out``."""
    from torchvision.datasets import CIFAR10

    from ..zoo.loading import find_checkpoint
    from ..zoo.registry import verify_checksum
    from ..zoo.registry import checkpoint_registry

    out = Path(out)
    root = Path(download_root) if download_root else cache_dir() / "torchvision"
    try:
        train = CIFAR10(str(root), train=True, download=True)
        test = CIFAR10(str(root), train=False, download=True)
    except Exception as err:  # network and archive errors come in many types
        raise DataError(f"could not download CIFAR-10 into {root}: {err}") from None
    write_cifar10_npz(out, np.asarray(train.data), np.asarray(train.targets), np.asarray(test.data),
                      np.asarray(test.targets))
    for entry in checkpoint_registry().values():
        if entry.url and entry.model.startswith("cifar10_"):
            source = find_checkpoint(entry.file)  # downloads into the cache when missing
            verify_checksum(source, entry.sha256)
            with atomic_path(out / "checkpoints" / entry.file) as tmp:
                shutil.copyfile(source, tmp)
    return out


__all__ = ["fetch_benchmark_data", "write_cifar10_npz", "class_balanced_rows"]
