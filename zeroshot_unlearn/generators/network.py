"""``network``: a class-conditional generator (latent x class embedding -> image)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import AntiMemoryGenerator


class NetworkGenerator(AntiMemoryGenerator):
    """Small DCGAN-style decoder; pixels come out of a sigmoid in [0, 1] and are then normalised.

    One generator serves every class of the model (the class embedding), so it can be
    fitted once and reused for any subset of classes.
    """

    def __init__(self, num_classes: int, input_size: Sequence[int], mean, std, *, latent_dim: int = 32,
                 width: int = 32, **_: object):
        super().__init__(num_classes, input_size, mean, std)
        channels, height, width_px = self.input_size
        self.latent_dim = latent_dim
        self.base = (max(1, height // 4), max(1, width_px // 4))
        self.embed = nn.Embedding(num_classes, latent_dim)
        self.fc = nn.Linear(latent_dim, 2 * width * self.base[0] * self.base[1])
        self.body = nn.Sequential(
            nn.BatchNorm2d(2 * width),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(2 * width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.LeakyReLU(0.2),
            nn.Conv2d(width, channels, 3, padding=1),
        )
        self.width = width

    def sample(self, labels: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if z is None:
            z = torch.randn(len(labels), self.latent_dim, device=labels.device)
        h = self.fc(z * self.embed(labels)).view(len(labels), 2 * self.width, *self.base)
        logits = self.body(h)
        if logits.shape[-2:] != self.input_size[1:]:
            logits = F.interpolate(logits, size=self.input_size[1:], mode="bilinear", align_corners=False)
        return (torch.sigmoid(logits) - self.mean) / self.std

    def regulariser(self, samples: torch.Tensor) -> torch.Tensor:
        # Pixels are bounded by the sigmoid; keep them off saturation so gradients stay alive.
        pixels = samples * self.std + self.mean
        return (pixels - 0.5).pow(2).mean()
