"""torchvision ``ImageFolder`` trees (``DIR/<class>/<image>``, or ``DIR/train`` + ``DIR/test``).

Folder names are mapped to the model's class ids **by name**, never by their alphabetical
position: a user who deleted the forget classes keeps a tree of the retained classes only, and
numbering those folders 0..k-1 would label deer as cat. A folder named after one of the model's
``label_names`` gets that class's id, a numeric folder name is the id itself; with no names to go
by, a complete tree (one folder per class) falls back to torchvision's alphabetical order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from ..errors import DataError
from .datasets import DataSplits, ImageTensorDataset, materialise
from .names import describe_classes


def folder_class_ids(folders: Sequence[str], label_names: Sequence[str] | None,
                     num_classes: int | None) -> dict[str, int]:
    """The class id of each folder name (see the module docstring); a folder that fits no class is a DataError."""
    names = list(label_names or [])
    lowered: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        lowered.setdefault(name.lower(), []).append(i)
    listing = describe_classes(names)
    ids: dict[str, int] = {}
    for folder in folders:
        if folder in names and names.count(folder) == 1:
            ids[folder] = names.index(folder)
        elif folder.isdigit():
            ids[folder] = int(folder)
        elif len(lowered.get(folder.lower(), [])) == 1:
            ids[folder] = lowered[folder.lower()][0]
        elif len(lowered.get(folder.lower(), [])) > 1 or names.count(folder) > 1:
            raise DataError(f"class folder {folder!r} is ambiguous: the model has several classes of that name "
                            f"({listing}); name the folder by its class id")
        elif names:
            raise DataError(f"class folder {folder!r} is not one of the model's classes ({listing}); rename it to a "
                            "class name or id")
        elif num_classes is not None and len(folders) == num_classes:
            # A complete tree and no names: the convention a model trained on this tree was numbered by.
            return {f: i for i, f in enumerate(sorted(folders))}
        else:
            raise DataError(f"cannot tell which class folder {folder!r} holds: the model carries no class names "
                            f"and the tree has {len(folders)} of its {num_classes or '?'} classes. Name the folders "
                            "by class id (0, 1, ...) or pass class_names= (CLI: --class-names FILE, one name per "
                            "line in the model's class order)")
    taken: dict[int, str] = {}
    for folder, class_id in ids.items():
        if num_classes is not None and not 0 <= class_id < num_classes:
            raise DataError(f"class folder {folder!r} is id {class_id}, out of range for a model with {num_classes} "
                            "classes")
        if class_id in taken:
            raise DataError(f"class folders {taken[class_id]!r} and {folder!r} both map to class {class_id}")
        taken[class_id] = folder
    return ids


def _load_folder(folder: Path, input_size: Sequence[int], mean, std, label_names,
                 num_classes) -> ImageTensorDataset:
    from torchvision import datasets, transforms

    channels, height, width = input_size
    steps = [transforms.Grayscale(1)] if channels == 1 else [transforms.Lambda(lambda im: im.convert("RGB"))]
    steps += [transforms.Resize((height, width)), transforms.ToTensor(), transforms.Normalize(mean, std)]
    try:
        data = datasets.ImageFolder(str(folder), transform=transforms.Compose(steps))
    except (FileNotFoundError, RuntimeError) as err:
        raise DataError(f"{folder} is not an ImageFolder tree (DIR/<class>/<image>): {err}") from None
    ids = folder_class_ids(data.classes, label_names, num_classes)
    out = materialise(data)
    out.y = torch.tensor([ids[data.classes[t]] for t in out.y.tolist()], dtype=torch.long)
    size = num_classes or max(ids.values()) + 1
    names = list(label_names) if label_names else [str(i) for i in range(size)]
    if not label_names:
        for folder_name, class_id in ids.items():
            names[class_id] = folder_name
    out.classes = names
    return out


def load_image_folder(folder: str | Path, input_size: Sequence[int], mean: Sequence[float],
                      std: Sequence[float], *, label_names: Sequence[str] | None = None,
                      num_classes: int | None = None) -> DataSplits:
    """Load an ImageFolder tree, each folder labelled with the class id its name maps to."""
    folder = Path(folder)
    if label_names is not None and num_classes is not None and len(label_names) != num_classes:
        raise DataError(f"{len(label_names)} class names given for a model with {num_classes} classes")
    if (folder / "train").is_dir():
        train = _load_folder(folder / "train", input_size, mean, std, label_names, num_classes)
        test = None
        if (folder / "test").is_dir():
            test = _load_folder(folder / "test", input_size, mean, std, label_names, num_classes)
    else:
        train, test = _load_folder(folder, input_size, mean, std, label_names, num_classes), None
    return DataSplits(train, test, train.classes or [], name=folder.name)


__all__ = ["load_image_folder", "folder_class_ids"]
