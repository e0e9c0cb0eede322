"""``noise``: per-class learnable input tensors, UNSIR's error-maximising noise (Tarun et al. 2023)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from .base import AntiMemoryGenerator


class NoiseGenerator(AntiMemoryGenerator):
    """``samples_per_class`` free tensors per forget class, kept in the model's input space.

    Unlike the public UNSIR notebook, which labels every noise tensor as class 0, each
    tensor belongs to one forget class and is sampled only for that label.
    """

    def __init__(self, num_classes: int, input_size: Sequence[int], mean, std, *, forget: Sequence[int],
                 samples_per_class: int = 8, **_: object):
        super().__init__(num_classes, input_size, mean, std)
        self.forget = list(forget)
        slot = torch.full((num_classes,), -1, dtype=torch.long)
        slot[torch.as_tensor(self.forget)] = torch.arange(len(self.forget))
        self.register_buffer("slot", slot)
        self.samples_per_class = samples_per_class
        self.bank = nn.Parameter(torch.randn(len(self.forget), samples_per_class, *self.input_size))

    def sample(self, labels: torch.Tensor) -> torch.Tensor:
        slots = self.slot[labels]
        if (slots < 0).any():
            raise ValueError(f"this noise bank holds classes {self.forget}, not {sorted(set(labels.tolist()))}")
        pick = torch.randint(self.samples_per_class, (len(labels),), device=labels.device)
        return self.bank[slots, pick]
