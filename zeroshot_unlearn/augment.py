"""kornia augmentation pipelines built from a recipe's ``augment`` section.

Everything in the library flows in the model's normalised input space; augmentation is
applied in pixel space ([0, 1]), so padding is black and colour jitter means what it says.
"""

from __future__ import annotations

from typing import Sequence

import kornia.augmentation as K
import torch
import torch.nn as nn

from .sections import AugmentConfig


class Augment(nn.Module):
    """Denormalise -> kornia pipeline -> normalise, for batches (B, C, H, W) in model input space."""

    def __init__(self, cfg: AugmentConfig, mean: Sequence[float], std: Sequence[float], size: Sequence[int]):
        super().__init__()
        channels = len(mean)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        ops: list[nn.Module] = []
        if cfg.crop_padding:
            ops.append(K.RandomCrop(tuple(size), padding=cfg.crop_padding))
        if cfg.flip:
            ops.append(K.RandomHorizontalFlip())
        if cfg.color_jitter:
            strength = cfg.color_jitter
            ops.append(K.ColorJitter(strength, strength, strength if channels == 3 else 0.0, 0.0, p=0.8))
        if cfg.noise_std:
            ops.append(K.RandomGaussianNoise(std=cfg.noise_std, p=0.5))
        self.pipeline = K.AugmentationSequential(*ops) if ops else None

    def pixels(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pipeline is None:
            return x
        if x.ndim != 4 or x.shape[1] != self.mean.shape[1]:
            raise ValueError(f"expected a batch (B, {self.mean.shape[1]}, H, W), got {tuple(x.shape)}")
        return self.normalise(self.pipeline(self.pixels(x)).clamp(0.0, 1.0))
