"""Where the project's data files live: the repository's top-level folders and the user cache."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# recipes/, checkpoints/ and generators/ sit beside the package in the repository
# (the layout the project is installed from with `pip install -e .`).
PROJECT_DIR = PACKAGE_DIR.parent


def recipes_dir() -> Path:
    return Path(os.environ.get("ZEROSHOT_UNLEARN_RECIPES", PROJECT_DIR / "recipes"))


def checkpoints_dir() -> Path:
    return PROJECT_DIR / "checkpoints"


def cache_dir() -> Path:
    """Downloads and cached retrain references; override with ZEROSHOT_UNLEARN_HOME."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "zeroshot_unlearn"
    path = Path(os.environ.get("ZEROSHOT_UNLEARN_HOME", default))
    path.mkdir(parents=True, exist_ok=True)
    return path
