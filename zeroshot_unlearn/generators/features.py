"""``features``: anti-memories synthesised at the classifier head's input instead of as images.

When only the head trains (recipe ``train_scope: head``), an anti-memory acts on the run through one
thing: the features the frozen backbone gives it. This generator makes those features directly:
``samples_per_class`` learnable feature vectors per forget class, fitted so the original head calls
each its class, under a prior that keeps them where the backbone's features of real images lie
(each dimension's mean and spread over the retained images, the role the BatchNorm-statistics prior
plays for images). No backbone pass, so at 224 px it costs a second where an image generator costs
minutes of CPU (docs/imagenet.md measures both).

With no retained image (the data-free mode), those statistics come from the model itself:
:func:`batchnorm_feature_statistics` reads them off the BatchNorm layer whose pooled output the head
reads, and the same generator then makes "memories" of the retained classes beside the anti-memories.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..errors import ModelError
from ..sections import GeneratorConfig
from ..surgery import HeadInput


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
                          progress: bool = True, desc: str = "anti-memory features") -> None:
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
        for _ in tqdm(range(cfg.steps), desc=desc, disable=not progress, leave=False):
            logits = head(generator.bank.reshape(len(labels), -1))
            loss = F.cross_entropy(logits, labels) + cfg.bn_prior_weight * generator.prior()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    finally:
        for p, g in zip(head.parameters(), grads):
            p.requires_grad_(g)
        head.train(was_training)


@torch.no_grad()
def batchnorm_feature_statistics(model: nn.Module, input_size, *, samples: int = 256,
                                 seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and spread of the head's input over images the model was trained on, with no image: read off
    the last BatchNorm layer, whose running statistics summarise its input over the training set.

    That layer's input is drawn per pixel from N(running mean, running variance), passed through the layer
    (its affine and, in timm's ``BatchNormAct2d``, its activation) and pooled as the head pools it. Only a
    model whose head reads the global average of that layer's output (EfficientNet, MobileNet and others
    ending in conv, BatchNorm, activation, pooling) fits; any other is refused, since then the statistics
    would describe something the head never sees.
    """
    device = next(model.parameters()).device
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    outputs: list[tuple[nn.Module, torch.Tensor]] = []
    # A clone: an in-place activation after the layer (nn.ReLU(inplace=True)) would otherwise rewrite it.
    hooks = [m.register_forward_hook(lambda mod, _args, out: outputs.append((mod, out.detach().clone()))) for m in norms]
    modes = [(m, m.training) for m in model.modules()]  # restored module by module: a caller's mix stays
    model.eval()
    try:
        try:
            with HeadInput(model) as head_input:
                model(torch.rand(2, *input_size, generator=torch.Generator().manual_seed(seed)).to(device))
        finally:  # before the draws below pass through the same layer
            for hook in hooks:
                hook.remove()
        fits = False
        if outputs:
            last, out = outputs[-1]
            pooled = out.float().mean(dim=tuple(range(2, out.dim())))
            fits = out.dim() >= 3 and pooled.shape == head_input.value.shape and torch.allclose(
                pooled, head_input.value.float(), rtol=1e-4, atol=1e-5)
        if not fits:
            raise ModelError(f"{type(model).__name__}'s classifier head does not read the pooled output of a "
                             "BatchNorm layer, so its features' statistics cannot be read off the model: the "
                             "data-free mode with train_scope: head needs one (EfficientNet, MobileNet); use "
                             "train_scope: all")
        rng = torch.Generator().manual_seed(seed)
        mean = last.running_mean.float().cpu().view(1, -1, *[1] * (out.dim() - 2))
        spread = last.running_var.float().cpu().sqrt().view_as(mean)
        drawn = (mean + spread * torch.randn((samples, *out.shape[1:]), generator=rng)).to(device)
        pooled = last(drawn).float().mean(dim=tuple(range(2, out.dim())))
    finally:
        for module, training in modes:
            module.training = training
    return pooled.mean(0), pooled.std(0)


__all__ = ["FeatureGenerator", "fit_feature_generator", "batchnorm_feature_statistics"]
