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

from dataclasses import dataclass
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
                 samples_per_class: int, seed: int = 0, emit: "LayerNormImage | None" = None):
        super().__init__()
        self.emit = emit
        """Where the head reads a LayerNorm's output directly: the map from the bank onto the vectors that norm can
        emit (the bank's vectors are then the norm's inputs); None: the bank holds the features themselves."""
        self.num_classes = num_classes
        self.classes = list(classes)
        slot = torch.full((num_classes,), -1, dtype=torch.long)
        slot[torch.as_tensor(self.classes)] = torch.arange(len(self.classes))
        self.register_buffer("slot", slot)
        self.register_buffer("mean", mean.detach().clone().float())
        self.register_buffer("std", std.detach().clone().float().clamp(min=1e-4))
        rng = torch.Generator().manual_seed(seed)
        start = torch.randn(len(self.classes), samples_per_class, len(mean), generator=rng)
        # With ``emit`` the bank holds the norm's inputs, which it standardises: any start will do.
        self.bank = nn.Parameter(start if emit is not None else self.mean.cpu() + self.std.cpu() * start)
        self.samples_per_class = samples_per_class

    def sample(self, labels: torch.Tensor) -> torch.Tensor:
        slots = self.slot[labels]
        if (slots < 0).any():
            raise ValueError(f"this generator holds classes {self.classes}, not {sorted(set(labels.tolist()))}")
        pick = torch.randint(self.samples_per_class, (len(labels),), device=labels.device)
        return self.features(self.bank[slots, pick])

    def features(self, bank: torch.Tensor) -> torch.Tensor:
        """The head's input that bank vectors stand for."""
        return bank if self.emit is None else self.emit(bank)

    def all_features(self) -> torch.Tensor:
        """Every vector of the bank as the head's input, (classes * samples_per_class, features)."""
        return self.features(self.bank.reshape(len(self.classes) * self.samples_per_class, -1))

    def prior(self) -> torch.Tensor:
        """How far the bank's features lie from the real features' statistics (mean squared z-score). With ``emit``
        (a LayerNorm's image) every feature already lies where that norm can put it, and this term only pulls
        each dimension towards the norm's bias, within its weight."""
        return ((self.features(self.bank) - self.mean) / self.std).pow(2).mean()


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
            logits = head(generator.all_features())
            loss = F.cross_entropy(logits, labels) + cfg.bn_prior_weight * generator.prior()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    finally:
        for p, g in zip(head.parameters(), grads):
            p.requires_grad_(g)
        head.train(was_training)


class LayerNormImage:
    """The vectors a LayerNorm can emit: any input, standardised over its features, through the norm's affine.
    (A plain callable, not a module: it is the model's, and no part of a saved generator.)"""

    def __init__(self, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float):
        self.weight = None if weight is None else weight.detach().clone().float()
        self.bias = None if bias is None else bias.detach().clone().float()
        self.eps = eps

    def to(self, device) -> "LayerNormImage":
        self.weight = None if self.weight is None else self.weight.to(device)
        self.bias = None if self.bias is None else self.bias.to(device)
        return self

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        z = F.layer_norm(v, v.shape[-1:], eps=self.eps)
        if self.weight is not None:
            z = z * self.weight
        return z if self.bias is None else z + self.bias


@dataclass(frozen=True)
class FeaturePrior:
    """What the head's input looks like over the images the model was trained on, read off the model alone."""

    mean: torch.Tensor
    std: torch.Tensor
    norm: str
    """``batchnorm`` (the last BatchNorm's running statistics) or ``layernorm`` (the last LayerNorm's affine)."""
    reads: str
    """How the head reads the norm's output: ``pooled`` (the mean over positions or tokens), ``class token``
    (the first token) or ``direct`` (the norm's output is the head's input)."""
    emit: LayerNormImage | None = None
    """Set where the head's input is a LayerNorm's output itself (direct or its class token): the memories are
    then made as that norm's inputs and mapped through it, so every one is a vector the norm can emit."""


_LAYER_NORMS = (nn.LayerNorm,)  # timm's LayerNorm2d and LayerNormAct are subclasses


def _readouts(out: torch.Tensor, batchnorm: bool, channels_first: bool) -> list[tuple[str, torch.Tensor]]:
    """The ways a head might read a norm's output ``out`` as one vector per image."""
    if out.dim() == 2:
        return [("direct", out)]
    if batchnorm:  # (N, C, ...): pooled over every position (a 1x1 map pools to itself)
        return [("pooled", out.mean(dim=tuple(range(2, out.dim()))))]
    if out.dim() == 4 and channels_first:  # LayerNorm2d: after pooling (1x1) the head reads it as it is
        return [("direct", out.flatten(1))] if out.shape[2:] == (1, 1) else [("pooled", out.mean((2, 3)))]
    if out.dim() == 4:  # (N, H, W, C): a Swin's channels-last stages
        return [("pooled", out.mean((1, 2)))]
    if out.dim() == 3:  # (N, tokens, C)
        return [("class token", out[:, 0]), ("pooled", out.mean(1)), ("pooled", out[:, 1:].mean(1))]
    return []


@torch.no_grad()
def head_input_prior(model: nn.Module, input_size, *, samples: int = 256, seed: int = 0) -> FeaturePrior:
    """The head input's mean and spread with no image, from the last normalisation layer before the head.

    - **BatchNorm** (EfficientNet, MobileNet, ResNet, RegNet: conv, BatchNorm, activation, pooling): its running
      statistics summarise its input over the training set, so that input is drawn per pixel from N(running mean,
      running variance), passed through the layer (its affine and, in timm's ``BatchNormAct2d``, its activation)
      and pooled as the head pools it.
    - **LayerNorm** (ViT, DeiT, ConvNeXt, Swin): it keeps no statistics, but whatever it emits is a vector
      standardised over its features and put through its affine, so the affine bounds the head's input: mean
      the bias, spread the weight's magnitude. Where the head reads that output itself (a ConvNeXt's norm after
      pooling, a ViT's class token or ``fc_norm``), the prior also says exactly which vectors can occur
      (:class:`LayerNormImage`).

    A model whose head reads neither the pooled nor the direct output of such a layer is refused, since any
    statistics would then describe something the head never sees.
    """
    device = next(model.parameters()).device
    norms = [m for m in model.modules() if isinstance(m, (nn.modules.batchnorm._BatchNorm, *_LAYER_NORMS))]
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
        found = None
        if outputs:
            last, out = outputs[-1]  # the norm that ran last before the head
            target = head_input.value.float()
            batchnorm = isinstance(last, nn.modules.batchnorm._BatchNorm)
            channels_first = out.dim() != 4 or out.shape[-1] != target.shape[1]
            for reads, vector in _readouts(out.float(), batchnorm, channels_first):
                if vector.shape == target.shape and torch.allclose(vector, target, rtol=1e-4, atol=1e-5):
                    found = reads
                    break
        if found is None or (isinstance(last, nn.modules.batchnorm._BatchNorm) and out.dim() < 3):
            raise ModelError(f"{type(model).__name__}'s classifier head does not read the output of a BatchNorm or "
                             "LayerNorm layer (pooled, its class token or as it is), so its features' statistics "
                             "cannot be read off the model and the data-free mode with train_scope: head cannot "
                             "make its memories: pass retained images (retain=...), or use train_scope: all")
        if isinstance(last, nn.modules.batchnorm._BatchNorm):
            rng = torch.Generator().manual_seed(seed)
            mean = last.running_mean.float().cpu().view(1, -1, *[1] * (out.dim() - 2))
            spread = last.running_var.float().cpu().sqrt().view_as(mean)
            drawn = (mean + spread * torch.randn((samples, *out.shape[1:]), generator=rng)).to(device)
            pooled = last(drawn).float().mean(dim=tuple(range(2, out.dim())))
            return FeaturePrior(pooled.mean(0), pooled.std(0), "batchnorm", found)
        channels = head_input.value.shape[1]
        weight = last.weight.detach().float().flatten() if last.weight is not None else torch.ones(channels)
        bias = last.bias.detach().float().flatten() if last.bias is not None else torch.zeros(channels)
        emit = LayerNormImage(last.weight, last.bias, last.eps).to(device) if found in ("direct", "class token") \
            and weight.numel() == channels else None
        return FeaturePrior(bias.to(device), weight.abs().to(device), "layernorm", found, emit)
    finally:
        for module, training in modes:
            module.training = training


def batchnorm_feature_statistics(model: nn.Module, input_size, *, samples: int = 256,
                                 seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and spread of the head's input read off the model (:func:`head_input_prior`), as a pair."""
    prior = head_input_prior(model, input_size, samples=samples, seed=seed)
    return prior.mean, prior.std


__all__ = ["FeatureGenerator", "FeaturePrior", "LayerNormImage", "fit_feature_generator", "head_input_prior",
           "batchnorm_feature_statistics"]
