"""The one training loop every method uses: batches, optimiser, schedule, BN policy, guard, progress.

Methods differ in the loss they compute per step (:mod:`zeroshot_unlearn.losses`); they never write
their own loop. What a method does to a model outside the loop is in :mod:`zeroshot_unlearn.surgery`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from .errors import DivergenceError
from .sections import PhaseConfig
from .runtime import Runtime
from .surgery import batchnorm_modules

log = logging.getLogger(__name__)


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

    def state_dict(self) -> dict:
        """Where the stream is: its RNG, the current shuffled order and the position in it (to resume)."""
        return {"rng": self.rng.get_state(), "order": self._order.clone(), "pos": self._pos}

    def load_state_dict(self, state: dict) -> None:
        self.rng.set_state(state["rng"])
        self._order, self._pos = state["order"], int(state["pos"])

    def steps_for(self, epochs: float, min_images: int = 0, max_images: int = 0) -> int:
        """Steps of ``epochs`` passes over the data, counted as at least ``min_images`` images (a small
        dataset repeats, reshuffled and augmented by the caller, instead of shortening the phase) and, when
        ``max_images`` is set, at most ``max(max_images, min_images)`` (a large one is sampled)."""
        images = max(len(self.y), min_images)
        if max_images:
            images = min(images, max(max_images, min_images))
        return max(1, math.ceil(epochs * images / self.batch_size)) if epochs > 0 else 0


class LoaderStream(BatchStream):
    """:class:`BatchStream` over images read from disk as they are used (a
    :class:`~zeroshot_unlearn.data.FolderImages`): the same seeded order of rows, each batch read by a
    DataLoader's worker processes a few batches ahead, so memory holds a few batches and never the set."""

    def __init__(self, dataset, batch_size: int, seed: int, runtime: "Runtime | None" = None):
        from .data.datasets import loader_workers

        self.runtime = runtime or Runtime()
        self.dataset, self.y = dataset, dataset.y
        self.batch_size = min(batch_size, len(self.y))
        self.rng = torch.Generator().manual_seed(seed)
        self._order = torch.empty(0, dtype=torch.long)
        self._pos = 0
        self.workers = loader_workers(dataset)
        self._batches = None

    def _rows(self):
        while True:  # the rows of BatchStream's order, one batch at a time, for the loader to read ahead
            if self._pos + self.batch_size > len(self._order):
                self._order = torch.randperm(len(self.y), generator=self.rng)
                self._pos = 0
            rows = self.runtime.shard(self._order[self._pos:self._pos + self.batch_size])
            self._pos += self.batch_size
            yield rows.tolist()

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._batches is None:
            from torch.utils.data import DataLoader

            loader = DataLoader(self.dataset, batch_sampler=self._rows(), num_workers=self.workers,
                                pin_memory=self.runtime.device.type == "cuda",
                                prefetch_factor=2 if self.workers else None)
            self._batches = iter(loader)
        x, y = next(self._batches)
        return self.runtime.to_device(x), y.to(self.runtime.device, non_blocking=True)

    def state_dict(self) -> dict:
        raise NotImplementedError("a stream of images read from disk reads ahead and cannot be resumed mid-phase")


def batch_stream(data, batch_size: int, seed: int, runtime: "Runtime | None" = None) -> BatchStream:
    """Endless shuffled batches of ``data``: from memory, or read from disk as they are used."""
    if hasattr(data, "x"):
        return BatchStream(data.x, data.y, batch_size, seed, runtime)
    return LoaderStream(data, batch_size, seed, runtime)


def make_optimizer(cfg: PhaseConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def warmup_factor(warmup: float, schedule: str, steps: int) -> Callable[[int], float]:
    """The learning-rate factor after ``done`` steps: a linear rise over the first ``warmup`` of the
    steps, then 1 (``constant``) or a cosine down to 0 (``cosine``) over the rest."""
    rise = max(1, round(warmup * steps))

    def factor(done: int) -> float:
        if done < rise:
            return (done + 1) / rise
        if schedule == "constant":
            return 1.0
        return 0.5 * (1.0 + math.cos(math.pi * (done - rise) / max(1, steps - rise)))
    return factor


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
        if cfg.warmup:
            factor = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_factor(cfg.warmup, cfg.schedule, steps))
            schedule = lambda _done: factor.step()  # noqa: E731
        elif cfg.schedule == "cosine":
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
