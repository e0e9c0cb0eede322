"""Supervised training on the shared engine: the demo checkpoint and retrain-from-scratch references."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._resources import cache_dir
from .augment import Augment
from .data.datasets import ImageTensorDataset
from .engine import BatchStream, train_phase
from .io import save_state_dict
from .recipes import AugmentConfig, PhaseConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    epochs: float = 6.0
    lr: float = 0.05
    batch_size: int = 128
    weight_decay: float = 5e-4
    crop_padding: int = 2
    flip: bool = False


def train_classifier(model: nn.Module, data: ImageTensorDataset, cfg: TrainConfig = TrainConfig(), *, seed: int = 0,
                     exclude: Sequence[int] = (), progress: bool = True) -> nn.Module:
    """Train ``model`` in place with cross-entropy on ``data`` minus the ``exclude`` classes."""
    if exclude:
        keep = ~torch.isin(data.y, torch.as_tensor(list(exclude)))
        data = data.subset(torch.nonzero(keep).flatten())
    mean = getattr(model, "pretrained_cfg", {}).get("mean", (0.0,) * data.x.shape[1])
    std = getattr(model, "pretrained_cfg", {}).get("std", (1.0,) * data.x.shape[1])
    augment = Augment(AugmentConfig(crop_padding=cfg.crop_padding, flip=cfg.flip), mean, std, data.x.shape[2:])
    phase = PhaseConfig(epochs=cfg.epochs, lr=cfg.lr, weight_decay=cfg.weight_decay, batch_size=cfg.batch_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        stream = BatchStream(data.x, data.y, cfg.batch_size, seed)

        def loss_fn(_step: int) -> torch.Tensor:
            x, y = next(stream)
            return F.cross_entropy(model(augment(x)), y)

        train_phase(model, phase, stream.steps_for(cfg.epochs), loss_fn, name="train", progress=progress)
    return model.eval()


def retrain_reference(name: str, data: ImageTensorDataset, forget: Sequence[int], cfg: TrainConfig = TrainConfig(), *,
                      seed: int = 0, progress: bool = True) -> tuple[nn.Module, float]:
    """A model of architecture ``name`` trained from scratch without ``forget``; cached by content hash.

    Returns the model and the seconds its training took (recorded in the cache file, so a cached
    reference still reports what retraining costs).
    """
    from safetensors import safe_open

    from .zoo import build_model, load_model

    key = hashlib.sha256()
    key.update(json.dumps({"name": name, "forget": sorted(forget), "cfg": asdict(cfg), "seed": seed}).encode())
    key.update(data.x.numpy().tobytes())
    key.update(data.y.numpy().tobytes())
    path = cache_dir() / "retrain" / f"{name}-{key.hexdigest()[:16]}.safetensors"
    if path.is_file():
        with safe_open(str(path), "pt") as handle:
            seconds = float((handle.metadata() or {}).get("train_seconds", "nan"))
        return load_model(name, path), seconds
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(name)
    train_classifier(model, data, cfg, seed=seed, exclude=forget, progress=progress)
    seconds = time.perf_counter() - start
    save_state_dict(path, model.state_dict(), {"train_seconds": f"{seconds:.3f}"})
    return model, seconds
