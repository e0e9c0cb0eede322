"""Pictures for the report: class-conditional model inversion and image grids."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..engine import frozen_parameters


def _total_variation(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def invert_classes(model: nn.Module, classes: Sequence[int], input_size: Sequence[int], mean, std, *,
                   per_class: int = 4, steps: int = 150, lr: float = 0.05, seed: int = 0) -> torch.Tensor:
    """Class-conditional inversion: pixels optimised to maximise each class's logit (with a TV prior).

    Returns pixel images in [0, 1], shape (len(classes) * per_class, C, H, W). A model that
    knows the class gives a recognisable impression; a model that forgot it gives dark, jumbled ones.
    """
    model.eval()
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    labels = torch.tensor([c for c in classes for _ in range(per_class)])
    generator = torch.Generator().manual_seed(seed)
    raw = (torch.randn(len(labels), *input_size, generator=generator) * 0.1).requires_grad_(True)
    optimizer = torch.optim.Adam([raw], lr=lr)
    with frozen_parameters(model):
        for _ in range(steps):
            pixels = torch.sigmoid(raw)
            logits = model((pixels - mean_t) / std_t)
            loss = F.cross_entropy(logits, labels) + 0.05 * _total_variation(pixels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return torch.sigmoid(raw).detach()


def to_pixels(x: torch.Tensor, mean, std) -> torch.Tensor:
    return (x * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)).clamp(0, 1)
