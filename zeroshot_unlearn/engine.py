"""The one training loop every method uses: batches, optimiser, schedule, BN policy, guard, progress.

Methods differ in the loss they compute per step; they never write their own loop.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .errors import DivergenceError
from .metrics import mask_logits
from .recipes import PhaseConfig
from .runtime import Runtime

log = logging.getLogger(__name__)
BN_TYPES = (nn.modules.batchnorm._BatchNorm,)


def batchnorm_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, BN_TYPES)]


@contextlib.contextmanager
def frozen_batchnorm(model: nn.Module) -> Iterator[None]:
    """BatchNorm layers in eval mode inside the block: normalise with running statistics, update nothing.

    Synthetic batches go through this, so their statistics never enter the running
    buffers (which must keep describing real images) and a batch of anti-memories is
    normalised like real data would be.
    """
    layers = [m for m in batchnorm_modules(model) if m.training]
    for m in layers:
        m.eval()
    try:
        yield
    finally:
        for m in layers:
            m.train()


@contextlib.contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[None]:
    """Parameters do not require grad inside the block (gradients flow to the inputs only)."""
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class HeadInput:
    """Captures what the classifier head receives (the penultimate features) during forward passes.

    ``with HeadInput(model) as features: logits = model(x)`` leaves the features of that pass in
    ``features.value`` with their autograd graph, for any model whose head
    :func:`~zeroshot_unlearn.validate.classifier_head` finds (timm, zoo, or a plain ``nn.Linear``).
    """

    def __init__(self, model: nn.Module):
        from .validate import classifier_head

        self.head = classifier_head(model)
        if self.head is None:
            raise ValueError(f"{type(model).__name__} has no linear classifier head to read features from")
        self.values: list[torch.Tensor] = []

    def _hook(self, _module, args) -> None:
        self.values.append(args[0].flatten(1))

    @property
    def value(self) -> torch.Tensor:
        return self.values[-1]

    def __enter__(self) -> "HeadInput":
        self.handle = self.head.register_forward_pre_hook(self._hook)
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()


def scoped_weights(model: nn.Module, scope: Sequence[str]) -> list[nn.Parameter]:
    """Weight tensors (ndim > 1) whose names start with one of the prefixes ``scope``; a prefix
    that names nothing is a :class:`RecipeError` listing the model's top-level names."""
    from .errors import RecipeError

    params = dict(model.named_parameters())
    for prefix in scope:
        if not any(n == prefix or n.startswith(prefix + ".") for n in params):
            raise RecipeError(f"perturb_scope entry {prefix!r} names no parameter of {type(model).__name__}; "
                              f"its parameter names start with: {', '.join(sorted({n.split('.')[0] for n in params}))}")
    return [p for n, p in params.items() if p.ndim > 1 and any(n == s or n.startswith(s + ".") for s in scope)]


@torch.no_grad()
def shrink_perturb(model: nn.Module, scope: Sequence[str], shrink: float, noise: float, seed: int) -> int:
    """Shrink and perturb (Ash & Adams, NeurIPS 2020) the weights under ``scope``: multiply by
    ``shrink``, add Gaussian noise of ``noise`` times each tensor's standard deviation.
    Returns how many tensors changed."""
    if not scope or (shrink == 1.0 and noise == 0.0):
        return 0
    generator = torch.Generator().manual_seed(seed)
    weights = scoped_weights(model, scope)
    for param in weights:
        std = float(param.std())
        param.mul_(shrink).add_(torch.randn(param.shape, generator=generator).to(param) * std * noise)
    return len(weights)


def set_train_mode(model: nn.Module, bn_policy: str) -> None:
    model.train()
    if bn_policy == "frozen":
        for m in batchnorm_modules(model):
            m.eval()


class BatchStream:
    """Endless shuffled mini-batches from in-memory tensors, reproducible through its own RNG.

    With a distributed ``runtime`` every rank draws the same global batch and yields its slice;
    batches come out on the runtime's device (from pinned memory when that is CUDA).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int,
                 runtime: "Runtime | None" = None):
        self.runtime = runtime or Runtime()
        if self.runtime.device.type == "cuda" and x.device.type == "cpu":
            x, y = x.pin_memory(), y.pin_memory()
        self.x, self.y = x, y
        self.batch_size = min(batch_size, len(y))
        self.rng = torch.Generator().manual_seed(seed)
        self._order = torch.empty(0, dtype=torch.long)
        self._pos = 0

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._pos + self.batch_size > len(self._order):
            self._order = torch.randperm(len(self.y), generator=self.rng)
            self._pos = 0
        rows = self.runtime.shard(self._order[self._pos:self._pos + self.batch_size])
        self._pos += self.batch_size
        return self.runtime.to_device(self.x[rows]), self.y[rows].to(self.runtime.device, non_blocking=True)

    def steps_for(self, epochs: float, min_images: int = 0) -> int:
        """Steps of ``epochs`` passes over the data, counted as at least ``min_images`` images: a small
        dataset repeats (reshuffled, and augmented by the caller) instead of shortening the phase."""
        images = max(len(self.y), min_images)
        return max(1, math.ceil(epochs * images / self.batch_size)) if epochs > 0 else 0


def masked_distillation(student_logits: torch.Tensor, teacher_logits: torch.Tensor, forget: torch.Tensor,
                        temperature: float) -> torch.Tensor:
    """Cross-entropy to the teacher's softmax with the forget classes removed (scaled by T^2)."""
    target = F.softmax(mask_logits(teacher_logits.detach(), forget) / temperature, dim=1)
    log_p = F.log_softmax(student_logits / temperature, dim=1)
    return -(target * log_p).sum(1).mean() * temperature ** 2


def distillation(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) at ``temperature`` (scaled by T^2), the plain knowledge-distillation loss."""
    log_p = F.log_softmax(student_logits / temperature, dim=1)
    target = F.softmax(teacher_logits.detach() / temperature, dim=1)
    return F.kl_div(log_p, target, reduction="batchmean") * temperature ** 2


def reset_weights(model: nn.Module, seed: int) -> nn.Module:
    """Re-initialise every layer that knows how (``reset_parameters``; BatchNorm statistics too), seeded."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in model.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return model


def make_optimizer(cfg: PhaseConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


@dataclass
class PhaseStats:
    name: str
    steps: int
    seconds: float
    first_loss: float
    last_loss: float
    ddp_steps: int = 0
    """Steps whose gradients DistributedDataParallel's reducer averaged (the rest: one all_reduce)."""


def _all_finite(model: nn.Module) -> bool:
    return all(torch.isfinite(t).all() for t in list(model.parameters()) + list(model.buffers())
               if t.is_floating_point())


def train_phase(model: nn.Module, cfg: PhaseConfig, steps: int, step_loss: Callable[[int], torch.Tensor], *,
                name: str, bn_policy: str = "real_only", progress: bool = True,
                runtime: Runtime | None = None, optimizer: torch.optim.Optimizer | None = None,
                schedule: Callable[[int], None] | None = None, replica: nn.Module | None = None) -> PhaseStats:
    """Run ``steps`` optimiser steps of ``step_loss``; roll back and raise on NaN/Inf.

    With a distributed ``runtime`` gradients and BatchNorm buffers are averaged over ranks every
    step, and a non-finite loss on any rank stops every rank. ``step_loss`` runs under the
    runtime's autocast (bf16 on CUDA when the recipe asks). ``optimizer`` and ``schedule``
    (called with the number of steps done) replace the phase's own SGD/Adam and cosine, e.g. with
    timm's factories when training a checkpoint. ``replica``: the DistributedDataParallel wrapper
    of ``model`` that ``step_loss`` calls; its reducer averages the gradients of any step that
    went through it, and the others are averaged here.
    """
    runtime = runtime or Runtime()
    start = time.perf_counter()
    if steps == 0:
        return PhaseStats(name, 0, 0.0, float("nan"), float("nan"))
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer is None:
        optimizer = make_optimizer(cfg, params)
        if cfg.schedule == "cosine":
            cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
            schedule = lambda _done: cosine.step()  # noqa: E731
    last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}
    set_train_mode(model, bn_policy)
    losses: list[float] = []
    through_replica = [0]  # forwards with autograd through the DDP wrapper in this step

    def count(*_) -> None:
        through_replica[0] += torch.is_grad_enabled()

    hook = replica.register_forward_pre_hook(count) if replica is not None else None
    ddp_steps = 0
    try:
        for step in tqdm(range(steps), desc=name, disable=not progress or not runtime.is_main, leave=False):
            with runtime.autocast():
                loss = step_loss(step)
            if not runtime.all_finite(loss):
                where = f" on one of {runtime.world_size} ranks (here {float(loss.detach())})" if runtime.distributed \
                    else f" ({float(loss.detach())})"
                raise DivergenceError(f"{name}: the loss became non-finite at step {step}{where}; the model was rolled "
                                      f"back to the state before {name}. Lower {name}.lr in the recipe")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if through_replica[0]:
                ddp_steps += 1
            else:  # no DDP reducer saw this step: average here
                runtime.average_gradients(params)
            through_replica[0] = 0
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            if schedule is not None:
                schedule(step + 1)
            runtime.average_buffers(model)
            losses.append(float(loss.detach()))
        if not _all_finite(model):
            raise DivergenceError(f"{name}: weights became NaN/Inf; the model was rolled back to the state before "
                                  f"{name}. Lower {name}.lr in the recipe")
    except BaseException:
        model.load_state_dict(last_good)
        raise
    finally:
        if hook is not None:
            hook.remove()
        model.eval()
    return PhaseStats(name, steps, time.perf_counter() - start, losses[0], losses[-1], ddp_steps)
