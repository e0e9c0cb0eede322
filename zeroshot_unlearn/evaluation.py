"""Accuracy measurements shared by the command line, the audit, the self-check and the harness."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

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


def eval_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """:func:`batched_logits` in eval mode; the model's mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        return batched_logits(model, x, batch_size)
    finally:
        model.train(was_training)


def eval_batch_size(item_shape) -> int:
    """Images per evaluation batch: 256 at 32 px; at 224 px 32, so activations stay near half a GiB."""
    pixels = int(item_shape[-1]) * int(item_shape[-2]) if len(item_shape) >= 2 else 1
    return 256 if pixels <= 64 * 64 else 32


def data_logits(model: nn.Module, data, batch_size: int | None = None) -> torch.Tensor:
    """The model's logits (eval mode, on the CPU) for every image of ``data``: a dataset in memory or
    images read from disk as they are used (:func:`~zeroshot_unlearn.data.iter_batches`)."""
    if hasattr(data, "x"):
        return eval_logits(model, data.x, batch_size or eval_batch_size(data.x.shape))
    from .data.datasets import iter_batches

    batch_size = batch_size or eval_batch_size(data.item_shape)
    was_training = model.training
    model.eval()
    device = model_device(model)
    try:
        with torch.no_grad():
            return torch.cat([model(x.to(device)).float().cpu() for x, _ in iter_batches(data, batch_size)])
    finally:
        model.train(was_training)


def predict(model: nn.Module, x, batch_size: int | None = None) -> torch.Tensor:
    """Predicted classes for images ``x`` (a tensor) or for every image of a dataset."""
    if isinstance(x, torch.Tensor):
        return eval_logits(model, x, batch_size or eval_batch_size(x.shape)).argmax(1)
    return data_logits(model, x, batch_size).argmax(1)


def accuracy(model: nn.Module, data: ImageTensorDataset) -> float:
    """Top-1 accuracy (%) of ``model`` on ``data``."""
    return float((predict(model, data) == data.y).float().mean() * 100)


def per_class_accuracy(model: nn.Module, data: ImageTensorDataset, num_classes: int) -> list[float]:
    """Accuracy in percent for each class (NaN where the class has no sample)."""
    return accuracy_per_class(predict(model, data) == data.y, data.y, num_classes)


def accuracy_per_class(correct: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[float]:
    """Percent of ``correct`` per label (NaN where a class has no sample)."""
    return [float(correct[labels == c].float().mean() * 100) if (labels == c).any() else float("nan")
            for c in range(num_classes)]


def forget_retain_accuracy(model: nn.Module, data: ImageTensorDataset, forget: Sequence[int]) -> tuple[float, float]:
    """(Df, Dr): accuracy in percent on the forget-class and on the retained-class samples of ``data``."""
    return _df_dr(predict(model, data), data.y, forget)


def _df_dr(predicted: torch.Tensor, labels: torch.Tensor, forget: Sequence[int]) -> tuple[float, float]:
    correct = predicted == labels
    is_forget = torch.isin(labels, torch.as_tensor(list(forget)))
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
    return _masked_accuracy(data_logits(model, data.subset(torch.nonzero(keep).flatten())), data.y[keep], forget)


def _masked_accuracy(logits: torch.Tensor, labels: torch.Tensor, forget: Sequence[int]) -> float:
    keep = ~torch.isin(labels, torch.as_tensor(list(forget)))
    return float((mask_logits(logits[keep], forget).argmax(1) == labels[keep]).float().mean() * 100)


def logits_df_dr(logits: torch.Tensor, labels: torch.Tensor, forget: Sequence[int]) -> tuple[float, float]:
    """(Df, Dr) in percent from logits already computed (one pass serving several columns)."""
    return _df_dr(logits.argmax(1), labels, forget)


def original_columns(original: nn.Module, data, forget: Sequence[int],
                     logits: torch.Tensor | None = None) -> dict[str, float]:
    """The reference columns of every results row (the CLI's metrics.json, bench): the original's Df and Dr,
    and the Dr ceiling, in percent (unrounded), from one pass over ``data`` (``logits``: that pass, done)."""
    logits = data_logits(original, data) if logits is None else logits
    df, dr = _df_dr(logits.argmax(1), data.y, forget)
    return {"df_original": df, "dr_original": dr, "dr_original_masked": _masked_accuracy(logits, data.y, forget)}

