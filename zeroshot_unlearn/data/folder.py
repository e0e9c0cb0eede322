"""torchvision ``ImageFolder`` trees (``DIR/<class>/<image>``, or ``DIR/train`` + ``DIR/test``).

Folder names are mapped to the model's class ids **by name**, never by their alphabetical
position: a user who deleted the forget classes keeps a tree of the retained classes only, and
numbering those folders 0..k-1 would label deer as cat. A folder named after one of the model's
``label_names`` gets that class's id, a numeric folder name is the id itself; with no names to go
by, a complete tree (one folder per class) falls back to torchvision's alphabetical order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .datasets import DataSplits
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


class FolderImages(Dataset):
    """Labelled images on disk, read and transformed only when an item is asked for.

    Nothing is held in memory but the file paths and the labels (``y``), so a retained set of many
    thousand 224-px images costs what a DataLoader's batches cost. Items are ``(image tensor,
    label)`` with the image normalised for the model by ``transform``. It offers what the in-memory
    :class:`~zeroshot_unlearn.data.ImageTensorDataset` offers except ``x``: ``y``, ``classes``,
    ``index``, :meth:`subset`, :meth:`of_classes`, and :attr:`item_shape`.
    """

    def __init__(self, paths: Sequence[str], y: torch.Tensor, transform: Callable, classes: Sequence[str] | None,
                 item_shape: Sequence[int], mode: str = "RGB", index: torch.Tensor | None = None):
        self.paths = list(paths)
        self.y = torch.as_tensor(y, dtype=torch.long)
        self.transform = transform
        self.classes = list(classes) if classes is not None else None
        self.item_shape = tuple(item_shape)
        """(C, H, W) of every item: what the transform makes."""
        self.mode = mode
        self.index = index

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from PIL import Image

        with Image.open(self.paths[i]) as image:
            return self.transform(image.convert(self.mode)), self.y[i]

    def subset(self, rows) -> "FolderImages":
        rows = torch.as_tensor(rows, dtype=torch.long)
        index = self.index[rows] if self.index is not None else rows
        return FolderImages([self.paths[r] for r in rows.tolist()], self.y[rows], self.transform, self.classes,
                            self.item_shape, self.mode, index)

    def of_classes(self, classes: Sequence[int]) -> "FolderImages":
        mask = torch.isin(self.y, torch.as_tensor(list(classes), dtype=torch.long))
        return self.subset(torch.nonzero(mask).flatten())


def model_transform(input_size: Sequence[int], mean, std, data_config: Mapping | None = None) -> Callable:
    """What an image goes through before the model: the model's own evaluation transform.

    With a timm ``pretrained_cfg`` (``crop_pct`` set) at 64 px and more, timm's: resize by ``crop_pct`` with
    the model's interpolation, centre crop, normalise (:func:`timm.data.create_transform`). Otherwise a
    resize to the input size, then normalise: 32-px models (this project's, timm architectures included,
    whose configs keep timm's ImageNet ``crop_pct``) were trained on whole images.
    """
    from torchvision import transforms

    channels, height, width = input_size
    if data_config and data_config.get("crop_pct") and channels == 3 and min(height, width) >= 64:
        from timm.data import create_transform, resolve_data_config

        config = resolve_data_config({}, pretrained_cfg=dict(data_config))
        config.update(input_size=tuple(input_size), mean=tuple(mean), std=tuple(std))
        return create_transform(**config, is_training=False)
    steps = [transforms.Grayscale(1)] if channels == 1 else []
    steps += [transforms.Resize((height, width)), transforms.ToTensor(), transforms.Normalize(mean, std)]
    return transforms.Compose(steps)


def _load_folder(folder: Path, input_size: Sequence[int], mean, std, label_names, num_classes,
                 data_config: Mapping | None = None, display_names: Sequence[str] | None = None) -> FolderImages:
    from torchvision import datasets

    try:
        tree = datasets.ImageFolder(str(folder))
    except (FileNotFoundError, RuntimeError) as err:
        raise DataError(f"{folder} is not an ImageFolder tree (DIR/<class>/<image>): {err}") from None
    ids = folder_class_ids(tree.classes, label_names, num_classes)
    size = num_classes or max(ids.values()) + 1
    names = list(display_names or label_names or [str(i) for i in range(size)])
    if not label_names:
        for folder_name, class_id in ids.items():
            names[class_id] = folder_name
    labels = torch.tensor([ids[tree.classes[t]] for _, t in tree.samples], dtype=torch.long)
    return FolderImages([path for path, _ in tree.samples], labels, model_transform(input_size, mean, std, data_config),
                        names, input_size, "L" if input_size[0] == 1 else "RGB")


def load_image_folder(folder: str | Path, input_size: Sequence[int], mean: Sequence[float],
                      std: Sequence[float], *, label_names: Sequence[str] | None = None,
                      num_classes: int | None = None, data_config: Mapping | None = None,
                      display_names: Sequence[str] | None = None) -> DataSplits:
    """An ImageFolder tree (``DIR/<class>/<image>``, ``DIR/train`` and ``DIR/test``, or ``DIR/test`` alone: an
    evaluation set, whose ``train`` split is None), each folder labelled
    with the class id its name maps to, read from disk as it is used (:class:`FolderImages`).

    ``data_config``: the model's ``pretrained_cfg``, whose evaluation transform the images go through
    (:func:`model_transform`); ``display_names``: the class names the splits show (``tench`` for
    ``n01440764``)."""
    folder = Path(folder)
    if label_names is not None and num_classes is not None and len(label_names) != num_classes:
        raise DataError(f"{len(label_names)} class names given for a model with {num_classes} classes")
    args = (input_size, mean, std, label_names, num_classes, data_config, display_names)
    if (folder / "train").is_dir():
        train = _load_folder(folder / "train", *args)
        test = _load_folder(folder / "test", *args) if (folder / "test").is_dir() else None
    elif (folder / "test").is_dir() and not any(p.is_dir() for p in folder.iterdir() if p.name != "test"):
        # An evaluation set alone (a validation set in class folders under test/): a test split, no train split.
        train, test = None, _load_folder(folder / "test", *args)
    else:
        train, test = _load_folder(folder, *args), None
    return DataSplits(train, test, (train or test).classes or [], name=folder.name)


__all__ = ["FolderImages", "load_image_folder", "folder_class_ids", "model_transform"]
