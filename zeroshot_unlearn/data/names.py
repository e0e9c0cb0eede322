"""Class names: read from a file or list, taken from a model, shown in messages."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch.nn as nn

from ..errors import DataError


def read_class_names(class_names: Sequence[str] | str | Path) -> list[str]:
    """A list of class names, or the lines of a text file (blank lines ignored)."""
    if isinstance(class_names, (str, Path)):
        path = Path(class_names)
        if not path.is_file():
            raise DataError(f"class-names file {str(path)!r} does not exist (one class name per line, in the "
                            "model's class order)")
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [str(n) for n in class_names]


def label_names_of(model: nn.Module | None) -> list[str] | None:
    """The model's class names (``pretrained_cfg["label_names"]``) when it has one per output, else None."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    names = cfg.get("label_names")
    if not names:
        return None
    from ..surgery import model_num_classes

    names = [str(n) for n in names]
    return names if len(names) == model_num_classes(model) else None


def describe_classes(names: Sequence[str]) -> str:
    """``0 airplane, 1 automobile, ...``; names that only repeat their ids are shown as the id range."""
    if list(names) == [str(i) for i in range(len(names))]:
        return f"ids 0..{len(names) - 1}, no other names"
    return ", ".join(f"{i} {n}" for i, n in enumerate(names))
