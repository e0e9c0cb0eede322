"""Where the project's data files live: the shipped folders and the user cache.

The repository keeps ``recipes/``, ``checkpoints/`` and ``generators/`` at its top level. A wheel
or sdist built from it carries the same folders inside the package as
``zeroshot_unlearn/_shipped/<folder>`` (``pyproject.toml`` maps them in), so an installed copy
finds them there and a source checkout (``pip install -e .``) beside the package.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent


def shipped_dir(folder: str) -> Path:
    """The shipped ``folder`` (``recipes``, ``checkpoints`` or ``generators``) of this installation."""
    installed = PACKAGE_DIR / "_shipped" / folder
    return installed if installed.is_dir() else PROJECT_DIR / folder


def recipes_dir() -> Path:
    return Path(os.environ.get("ZEROSHOT_UNLEARN_RECIPES", shipped_dir("recipes")))


def checkpoints_dir() -> Path:
    return shipped_dir("checkpoints")


def generators_dir() -> Path:
    return shipped_dir("generators")


def cache_dir() -> Path:
    """Downloads and cached retrain references; override with ZEROSHOT_UNLEARN_HOME."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "zeroshot_unlearn"
    path = Path(os.environ.get("ZEROSHOT_UNLEARN_HOME", default))
    path.mkdir(parents=True, exist_ok=True)
    return path
