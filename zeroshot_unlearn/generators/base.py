"""Anti-memory generators: what they are and how they are fitted against a frozen model."""

from __future__ import annotations

import contextlib
import logging
from typing import Callable, Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..sections import GeneratorConfig
from ..surgery import BN_TYPES, frozen_parameters

log = logging.getLogger(__name__)


class AntiMemoryGenerator(nn.Module):
    """Produces samples for given forget-class labels, in the model's normalised input space."""

    def __init__(self, num_classes: int, input_size: Sequence[int], mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.num_classes = num_classes
        self.input_size = tuple(input_size)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def sample(self, labels: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def regulariser(self, samples: torch.Tensor) -> torch.Tensor:
        """Keeps samples bounded: mean squared magnitude in input space."""
        return samples.pow(2).mean()


class BatchNormPrior:
    """DeepInversion-style prior: batch statistics of each BN input should match its running statistics."""

    def __init__(self, model: nn.Module):
        self.losses: list[torch.Tensor] = []
        self.handles = [m.register_forward_hook(self._hook) for m in model.modules()
                        if isinstance(m, BN_TYPES) and m.running_mean is not None]

    def _hook(self, module, inputs, _output) -> None:
        x = inputs[0]
        dims = [0] + list(range(2, x.ndim))
        mean, var = x.mean(dims), x.var(dims, unbiased=False)
        self.losses.append(torch.norm(mean - module.running_mean, 2) + torch.norm(var - module.running_var, 2))

    def pop(self) -> torch.Tensor:
        total = torch.stack(self.losses).sum() if self.losses else torch.zeros(())  # no BN layer: no prior
        self.losses = []
        return total

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


@contextlib.contextmanager
def inverting(model: nn.Module, bn_prior: bool) -> Iterator[BatchNormPrior | None]:
    """``model`` frozen in eval mode while its inputs (or a generator of them) are optimised, with the
    BatchNorm prior's hooks when ``bn_prior``; its mode, hooks and parameters are restored afterwards."""
    was_training = model.training
    model.eval()
    prior = BatchNormPrior(model) if bn_prior else None
    try:
        with frozen_parameters(model):
            yield prior
    finally:
        if prior is not None:
            prior.close()
        model.train(was_training)


def diversity_loss(samples: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Negative mean distance between samples of the same class (lower = more diverse)."""
    flat = samples.flatten(1)
    dist = torch.cdist(flat, flat, p=1) / flat.shape[1]
    same = (labels[:, None] == labels[None, :]) & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    if not same.any():
        return torch.zeros((), device=samples.device)
    return -dist[same].mean()


def fit_generator(generator: AntiMemoryGenerator, model: nn.Module, forget: Sequence[int], cfg: GeneratorConfig,
                  augment: Callable[[torch.Tensor], torch.Tensor], *, progress: bool = True) -> None:
    """Train ``generator`` against the frozen ``model`` (eval mode: its BN buffers are never touched).

    ``error_max`` maximises the model's cross-entropy at the forget label (UNSIR's
    error-maximising noise); ``impression`` minimises it, with the BN-statistics prior,
    so samples look like the forget classes to the model's features.
    """
    optimizer = torch.optim.Adam(generator.parameters(), lr=cfg.lr)
    device = generator.mean.device
    forget_t = torch.as_tensor(list(forget), dtype=torch.long, device=device)
    generator.train()
    try:
        with inverting(model, cfg.bn_prior_weight > 0) as prior:
            for _ in tqdm(range(cfg.steps), desc="anti-memory generator", disable=not progress, leave=False):
                labels = forget_t[torch.randint(len(forget_t), (cfg.batch_size,), device=device)]
                samples = generator.sample(labels)
                logits = model(augment(samples))
                ce = F.cross_entropy(logits, labels)
                loss = -ce if cfg.objective == "error_max" else ce
                loss = loss + cfg.bound_weight * generator.regulariser(samples)
                if cfg.diversity_weight:
                    loss = loss + cfg.diversity_weight * diversity_loss(samples, labels)
                if prior is not None:
                    loss = loss + cfg.bn_prior_weight * prior.pop()
                if not torch.isfinite(loss):
                    from ..errors import DivergenceError

                    raise DivergenceError("the anti-memory generator's loss became NaN/Inf; lower generator.lr")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    finally:
        generator.eval()
