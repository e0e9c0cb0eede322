"""The embedded ``digits`` data: the 10,000 real MNIST test-set digits shipped with the package.

Files: ``digits/t10k-images-idx3-ubyte.gz`` and ``digits/t10k-labels-idx1-ubyte.gz``, the
original MNIST files (md5 checked on load). They are split once, stratified with a fixed
seed, into 8,000 training and 2,000 test images (800/200 per class, roughly).
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from .datasets import DataSplits, ImageTensorDataset, normalise_uint8

DIGITS_DIR = Path(__file__).resolve().parent / "digits"
_FILES = {
    "images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}
CLASSES = [str(i) for i in range(10)]
TEST_FRACTION = 0.2
SPLIT_SEED = 0


def _read_idx(name: str, md5: str) -> np.ndarray:
    path = DIGITS_DIR / name
    raw = path.read_bytes()
    if hashlib.md5(raw).hexdigest() != md5:  # the checksum MNIST publishes for this file
        raise DataError(f"{path} does not match the published MNIST checksum; reinstall the package")
    data = gzip.decompress(raw)
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def digits_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) as uint8 (N, 28, 28) and int64 labels."""
    images = _read_idx(*_FILES["images"])
    labels = _read_idx(*_FILES["labels"]).astype(np.int64)
    rng = np.random.default_rng(SPLIT_SEED)
    test_rows = []
    for c in range(10):
        rows = np.flatnonzero(labels == c)
        test_rows.append(rng.choice(rows, size=int(round(len(rows) * TEST_FRACTION)), replace=False))
    test_mask = np.zeros(len(labels), dtype=bool)
    test_mask[np.concatenate(test_rows)] = True
    return images[~test_mask], labels[~test_mask], images[test_mask], labels[test_mask]


def load_digits(mean=(0.1307,), std=(0.3081,)) -> DataSplits:
    x_train, y_train, x_test, y_test = digits_arrays()
    import torch

    train = ImageTensorDataset(normalise_uint8(x_train, mean, std), torch.from_numpy(y_train), CLASSES)
    test = ImageTensorDataset(normalise_uint8(x_test, mean, std), torch.from_numpy(y_test), CLASSES)
    return DataSplits(train, test, CLASSES, name="digits")
