"""Architectures this project trains itself at 32x32, one per recipe family on CIFAR-10, and CIFAR-100 originals.

No public CIFAR-10 weights exist offline for timm families, so ``zeroshot-unlearn train``
builds them from the CIFAR-10 training images (cached by content hash; see
:func:`zeroshot_unlearn.harness.training.train_checkpoint`). The settings are short CPU schedules: the
checkpoints are real, trained models, but weaker than published ones; every table states
their test accuracy.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import torch.nn as nn

from ..data.cifar import CIFAR10_CLASSES, CIFAR100_CLASSES
from ..errors import InvalidRequestError


@dataclass(frozen=True)
class TrainConfig:
    """Supervised training: timm's optimizer and scheduler factories on the shared engine."""

    epochs: float = 6.0
    lr: float = 0.05
    batch_size: int = 128
    weight_decay: float = 5e-4
    crop_padding: int = 2
    flip: bool = False
    optimizer: str = "momentum"
    """Any name ``timm.optim.create_optimizer_v2`` knows (``momentum`` is plain SGD with momentum,
    timm's ``sgd`` adds Nesterov, ``adamw``, ``lamb``, ...)."""
    momentum: float = 0.9
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    no_decay_on_norm_and_bias: bool = False
    """timm's ``filter_bias_and_bn``: no weight decay on biases and norm weights (use for LayerNorm models)."""
    channels_last: bool = False
    """Train in the channels-last memory layout (about 20% faster for small convnets on CPU; other rounding)."""

    def key(self) -> dict[str, Any]:
        """The settings as a cache key. A field added after checkpoints were keyed is left out at its
        default, so the keys of the shipped checkpoints and retrain references stay valid."""
        settings = asdict(self)
        if not self.channels_last:
            del settings["channels_last"]
        return settings


@dataclass(frozen=True)
class TrainSpec:
    """How to build and train one architecture for one dataset."""

    name: str
    architecture: str
    """A timm (or zoo) model name."""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    """Constructor arguments (e.g. a ViT's ``img_size``/``patch_size``); recorded in the checkpoint."""
    input_size: tuple[int, int, int] = (3, 32, 32)
    num_classes: int = 10
    data: str = "cifar10"
    train: TrainConfig = TrainConfig()

    def build(self) -> nn.Module:
        from ..zoo.loading import build_model

        model = build_model(self.architecture, num_classes=self.num_classes, **self.model_kwargs)
        model.pretrained_cfg["input_size"] = tuple(self.input_size)
        names = {"cifar10": CIFAR10_CLASSES, "cifar100": CIFAR100_CLASSES}.get(self.data)
        if names is not None and self.num_classes == len(names):
            model.pretrained_cfg["label_names"] = list(names)
        return model

    def key(self) -> str:
        """Everything that changes the trained weights, as canonical JSON (the cache key's spec part)."""
        return json.dumps({"architecture": self.architecture, "model_kwargs": self.model_kwargs,
                           "input_size": list(self.input_size), "num_classes": self.num_classes,
                           "data": self.data, "train": self.train.key()}, sort_keys=True)


_SPECS: dict[str, TrainSpec] = {}


def register_train_spec(spec: TrainSpec) -> TrainSpec:
    _SPECS[spec.name] = spec
    return spec


def list_train_specs() -> list[str]:
    return sorted(_SPECS)


def get_train_spec(name: str) -> TrainSpec:
    try:
        return _SPECS[name]
    except KeyError:
        raise InvalidRequestError(f"no training settings for {name!r}; trainable here: "
                                  f"{', '.join(list_train_specs())}") from None


DIGITS_TRAIN = TrainConfig(epochs=10, lr=0.1)
"""The settings the shipped digits checkpoint was trained with; its retrain references reuse them."""

register_train_spec(TrainSpec("digits_cnn", "digits_cnn", input_size=(1, 28, 28), data="digits", train=DIGITS_TRAIN))

# BatchNorm convnets: SGD with momentum, as their papers train them.
_SGD = dict(optimizer="momentum", lr=0.05, weight_decay=5e-4, batch_size=128, crop_padding=4, flip=True,
            warmup_epochs=1.0)
# LayerNorm models and the mobile nets: AdamW with no decay on norms and biases (their papers' choice).
_ADAMW = dict(optimizer="adamw", lr=2e-3, weight_decay=0.05, batch_size=128, crop_padding=4, flip=True,
              warmup_epochs=1.0, no_decay_on_norm_and_bias=True)

for _spec in (
    TrainSpec("resnet18", "resnet18", train=TrainConfig(epochs=15, **_SGD)),
    TrainSpec("resnet10t", "resnet10t", train=TrainConfig(epochs=20, **_SGD)),
    TrainSpec("mobilenetv3_small_100", "mobilenetv3_small_100", train=TrainConfig(epochs=20, **_ADAMW)),
    TrainSpec("efficientnet_b0", "efficientnet_b0", train=TrainConfig(epochs=10, **_ADAMW)),
    TrainSpec("convnext_atto", "convnext_atto", train=TrainConfig(epochs=20, **_ADAMW)),
    TrainSpec("vit_tiny_patch16_224", "vit_tiny_patch16_224",
              model_kwargs={"img_size": 32, "patch_size": 8, "depth": 6},
              train=TrainConfig(epochs=20, **_ADAMW)),
):
    register_train_spec(_spec)

# CIFAR-100 originals: the whole 50,000-image training set, SGD as in He et al. (lr 0.1, momentum 0.9,
# batch 128, crop with 4-pixel padding and flips) with weight decay 5e-4, one warm-up epoch and a
# cosine to 0 over a short CPU schedule (30 epochs instead of the papers' 160-200).
CIFAR100_RESNET_TRAIN = TrainConfig(epochs=30, optimizer="momentum", lr=0.1, weight_decay=5e-4, batch_size=128,
                                    crop_padding=4, flip=True, warmup_epochs=1.0, channels_last=True)
"""The settings of the CIFAR-100 originals (the ResNets and resnet10t); their retrain references reuse them."""
for _depth in (20, 32, 56):
    register_train_spec(TrainSpec(f"cifar100_resnet{_depth}", f"cifar100_resnet{_depth}", num_classes=100,
                                  data="cifar100", train=CIFAR100_RESNET_TRAIN))
register_train_spec(TrainSpec("cifar100_resnet10t", "resnet10t", num_classes=100, data="cifar100",
                              train=CIFAR100_RESNET_TRAIN))
