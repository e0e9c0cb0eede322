"""Accuracy measurements shared by the benchmark, the demo and the audit."""

from __future__ import annotations

import time
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data.datasets import ImageTensorDataset


def model_device(model: nn.Module) -> torch.device:
    """Where the model's weights live (batches are moved there; results come back to the CPU)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


@torch.no_grad()
def batched_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The model's logits for ``x`` in batches, on the CPU, whatever device the model is on."""
    device = model_device(model)
    return torch.cat([model(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        return batched_logits(model, x, batch_size).argmax(1)
    finally:
        model.train(was_training)


def accuracy(model: nn.Module, data: ImageTensorDataset) -> float:
    """Top-1 accuracy (%) of ``model`` on ``data``."""
    return float((predict(model, data.x) == data.y).float().mean() * 100)


def per_class_accuracy(model: nn.Module, data: ImageTensorDataset, num_classes: int) -> list[float]:
    """Accuracy in percent for each class (NaN where the class has no sample)."""
    return accuracy_per_class(predict(model, data.x) == data.y, data.y, num_classes)


def accuracy_per_class(correct: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[float]:
    """Percent of ``correct`` per label (NaN where a class has no sample)."""
    return [float(correct[labels == c].float().mean() * 100) if (labels == c).any() else float("nan")
            for c in range(num_classes)]


def forget_retain_accuracy(model: nn.Module, data: ImageTensorDataset, forget: Sequence[int]) -> tuple[float, float]:
    """(Df, Dr): accuracy in percent on the forget-class and on the retained-class samples of ``data``."""
    correct = predict(model, data.x) == data.y
    is_forget = torch.isin(data.y, torch.as_tensor(list(forget)))
    return float(correct[is_forget].float().mean() * 100), float(correct[~is_forget].float().mean() * 100)


def mask_logits(logits: torch.Tensor, forget: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """A copy of ``logits`` with the forget classes' columns at -inf, so argmax and softmax range
    over the retained classes only (the masked teacher, the Dr ceiling, the logit mask)."""
    masked = logits.clone()
    masked[:, torch.as_tensor(forget, dtype=torch.long)] = float("-inf")
    return masked


def masked_accuracy(model: nn.Module, data, forget: Sequence[int]) -> float:
    """Dr ceiling: retained-class accuracy with the forget logits masked out (argmax over retained classes)."""
    keep = ~torch.isin(data.y, torch.as_tensor(list(forget)))
    x, y = data.x[keep], data.y[keep]
    logits = batched_logits(model, x)
    return float((mask_logits(logits, forget).argmax(1) == y).float().mean() * 100)


def training_step_seconds(model: nn.Module, input_size: Sequence[int], *, batch_size: int = 128,
                          steps: int = 20) -> tuple[float, float]:
    """Seconds per training image of ``model``: (wall clock, this process's CPU time).

    ``steps`` timed SGD steps on a copy of ``model`` with random inputs of its input size, in this
    process, so that epoch-equivalents compare like with like on the same machine. The CPU-time
    figure does not count time other processes took from this one (a shared machine).
    """
    import copy

    probe = copy.deepcopy(model).train()
    optimizer = torch.optim.SGD(probe.parameters(), lr=1e-3, momentum=0.9)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        x = torch.randn(batch_size, *input_size)
        logits = probe(x[:2])
        y = torch.randint(logits.shape[1], (batch_size,))
        for step in range(steps + 2):
            if step == 2:  # two warm-up steps
                start, start_cpu = time.perf_counter(), time.process_time()
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(probe(x), y).backward()
            optimizer.step()
    images = steps * batch_size
    return (time.perf_counter() - start) / images, (time.process_time() - start_cpu) / images

