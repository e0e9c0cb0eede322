"""torchvision ``ImageFolder`` trees (``DIR/<class>/<image>``, or ``DIR/train`` + ``DIR/test``)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


from ..errors import DataError
from .datasets import DataSplits, ImageTensorDataset, materialise


def _load_folder(folder: Path, input_size: Sequence[int], mean, std) -> ImageTensorDataset:
    from torchvision import datasets, transforms

    channels, height, width = input_size
    steps = [transforms.Grayscale(1)] if channels == 1 else [transforms.Lambda(lambda im: im.convert("RGB"))]
    steps += [transforms.Resize((height, width)), transforms.ToTensor(), transforms.Normalize(mean, std)]
    try:
        data = datasets.ImageFolder(str(folder), transform=transforms.Compose(steps))
    except (FileNotFoundError, RuntimeError) as err:
        raise DataError(f"{folder} is not an ImageFolder tree (DIR/<class>/<image>): {err}") from None
    out = materialise(data)
    out.classes = list(data.classes)
    return out


def load_image_folder(folder: str | Path, input_size: Sequence[int], mean: Sequence[float],
                      std: Sequence[float]) -> DataSplits:
    folder = Path(folder)
    if (folder / "train").is_dir():
        train = _load_folder(folder / "train", input_size, mean, std)
        test = _load_folder(folder / "test", input_size, mean, std) if (folder / "test").is_dir() else None
        if test is not None and test.classes != train.classes:
            raise DataError(f"{folder}/train and {folder}/test have different class folders")
    else:
        train, test = _load_folder(folder, input_size, mean, std), None
    return DataSplits(train, test, train.classes or [], name=folder.name)


__all__ = ["load_image_folder"]
