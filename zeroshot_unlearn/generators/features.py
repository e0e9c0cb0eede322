"""``features``: anti-memories synthesised at the classifier head's input instead of as images.

When only the head trains (recipe ``train_scope: head``), an anti-memory acts on the run through one
thing: the features the frozen backbone gives it. This generator makes those features directly:
``samples_per_class`` learnable feature vectors per forget class, fitted so the original head calls
each its class, under a prior that keeps them where the backbone's features of real images lie
(each dimension's mean and spread over the retained images, the role the BatchNorm-statistics prior
plays for images). No backbone pass, so at 224 px it costs a second where an image generator costs
minutes of CPU (docs/imagenet.md measures both).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..sections import GeneratorConfig


class FeatureGenerator(nn.Module):
    """Feature vectors at the head's input, ``samples_per_class`` per class of ``classes``."""

    makes_images = False

    def __init__(self, num_classes: int, classes: Sequence[int], mean: torch.Tensor, std: torch.Tensor,
                 samples_per_class: int, seed: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.classes = list(classes)
        slot = torch.full((num_classes,), -1, dtype=torch.long)
        slot[torch.as_tensor(self.classes)] = torch.arange(len(self.classes))
        self.register_buffer("slot", slot)
        self.register_buffer("mean", mean.detach().clone().float())
        self.register_buffer("std", std.detach().clone().float().clamp(min=1e-4))
        rng = torch.Generator().manual_seed(seed)
        start = torch.randn(len(self.classes), samples_per_class, len(mean), generator=rng)
        self.bank = nn.Parameter(self.mean.cpu() + self.std.cpu() * start)
        self.samples_per_class = samples_per_class

    def sample(self, labels: torch.Tensor) -> torch.Tensor:
        slots = self.slot[labels]
        if (slots < 0).any():
            raise ValueError(f"this generator holds classes {self.classes}, not {sorted(set(labels.tolist()))}")
        pick = torch.randint(self.samples_per_class, (len(labels),), device=labels.device)
        return self.bank[slots, pick]

    def prior(self) -> torch.Tensor:
        """How far the bank lies from the real features' statistics (mean squared z-score)."""
        return ((self.bank - self.mean) / self.std).pow(2).mean()


def fit_feature_generator(generator: FeatureGenerator, head: nn.Module, cfg: GeneratorConfig, *,
                          progress: bool = True) -> None:
    """Fit the bank against the frozen ``head``: each vector called its class (cross-entropy), held near the
    real features' statistics (``cfg.bn_prior_weight``), ``cfg.steps`` Adam steps at ``cfg.lr``."""
    labels = torch.as_tensor(generator.classes, device=generator.bank.device)[:, None].expand(
        -1, generator.samples_per_class).reshape(-1)
    optimizer = torch.optim.Adam([generator.bank], lr=cfg.lr)
    was_training = head.training
    head.eval()
    grads = [p.requires_grad for p in head.parameters()]
    for p in head.parameters():
        p.requires_grad_(False)
    try:
        for _ in tqdm(range(cfg.steps), desc="anti-memory features", disable=not progress, leave=False):
            logits = head(generator.bank.reshape(len(labels), -1))
            loss = F.cross_entropy(logits, labels) + cfg.bn_prior_weight * generator.prior()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    finally:
        for p, g in zip(head.parameters(), grads):
            p.requires_grad_(g)
        head.train(was_training)


__all__ = ["FeatureGenerator", "fit_feature_generator"]
