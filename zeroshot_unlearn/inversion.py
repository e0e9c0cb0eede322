"""Model inversion (impressions of a class, for the self-check and the audit) and image grids for the report."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .generators.base import inverting


def _total_variation(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def invert_classes(model: nn.Module, classes: Sequence[int], input_size: Sequence[int], mean, std, *,
                   per_class: int = 4, steps: int = 200, lr: float = 0.1, jitter: int = 2, tv_weight: float = 0.3,
                   bn_weight: float = 0.05, resolution: int = 0, seed: int = 0, patience: int = 0,
                   stop_confidence: float = 0.9) -> torch.Tensor:
    """Class-conditional inversion in the DeepInversion style (Yin et al., CVPR 2020).

    Pixels are optimised so the model assigns each image its class, under random shifts (and,
    for colour images, flips), a total-variation prior and, where the model has BatchNorm, a
    prior that the batch statistics of every BN input match the model's running statistics.
    Grayscale images are optimised at half resolution and upsampled bilinearly (at full resolution
    the digits CNN inverts to pixel-level stripes); colour images at full resolution (half
    resolution blurs ResNet20's CIFAR impressions). A model that knows the class gives a
    recognisable impression; one that forgot it gives jumbled texture.
    ``resolution`` (> 0) optimises a grid of that side instead, upsampled to the input size.
    ``patience`` (> 0): each image stops once the model has given it its class with at least
    ``stop_confidence`` on ``patience`` consecutive steps (read off each step's own shifted view, so it costs
    no extra pass), and the later steps run on the images still searching only; the search ends when none
    is, or at ``steps``. The steps after that point would only sharpen impressions that already count.
    Returns pixel images in [0, 1], shape (len(classes) * per_class, C, H, W).
    """
    device = next(model.parameters()).device
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    labels = torch.tensor([c for c in classes for _ in range(per_class)], device=device)
    rng = torch.Generator().manual_seed(seed)  # on the CPU: the same draws on every device
    channels, height, width = input_size
    downscale = 2 if channels == 1 else 1
    grid = (resolution, resolution) if resolution else (-(-height // downscale), -(-width // downscale))
    raw = torch.randn(len(labels), channels, *grid, generator=rng) * 0.5
    raw = raw.to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([raw], lr=lr)
    active = torch.ones(len(labels), dtype=torch.bool, device=device)
    streak = torch.zeros(len(labels), dtype=torch.long, device=device)
    with inverting(model, bn_weight > 0) as prior:
        for _ in range(steps):
            rows = raw if not patience else raw[active]  # with patience: only the images still searching
            pixels = _pixels(rows, (height, width))
            dx, dy = torch.randint(-jitter, jitter + 1, (2,), generator=rng).tolist()
            view = torch.roll(pixels, (dx, dy), (2, 3))
            if channels > 1 and torch.rand((), generator=rng) < 0.5:  # a mirrored digit is no digit
                view = view.flip(3)
            logits = model((view - mean_t) / std_t)
            targets = labels if not patience else labels[active]
            if not patience:
                loss = F.cross_entropy(logits, targets) + tv_weight * _total_variation(pixels)
            else:  # each image's terms weigh what they did with all searching, however many have finished
                share = len(targets) / len(labels)
                loss = F.cross_entropy(logits, targets, reduction="sum") / len(labels) \
                    + tv_weight * share * _total_variation(pixels)
            if prior is not None:
                loss = loss + bn_weight * prior.pop()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if patience:
                kept = raw.detach()[~active].clone()
            optimizer.step()
            if patience:
                with torch.no_grad():
                    raw[~active] = kept  # a finished image stays as it was (Adam's momentum would move it)
                    reached = logits.softmax(1).gather(1, targets[:, None]).squeeze(1) >= stop_confidence
                    index = torch.nonzero(active).flatten()
                    streak[index] = torch.where(reached, streak[index] + 1, torch.zeros_like(streak[index]))
                    active[index] = streak[index] < patience
                if not active.any():
                    break
    return _pixels(raw, (height, width)).detach().cpu()


def _pixels(raw: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return torch.sigmoid(F.interpolate(raw, size=size, mode="bilinear", align_corners=False))


def to_pixels(x: torch.Tensor, mean, std) -> torch.Tensor:
    return (x * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)).clamp(0, 1)
