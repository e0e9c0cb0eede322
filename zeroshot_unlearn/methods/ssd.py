"""``ssd``: Selective Synaptic Dampening (Foster et al., "Fast Machine Unlearning Without Retraining
Through Selective Synaptic Dampening", AAAI 2024). No training: parameters far more important to
the forget images than to the training data as a whole are scaled down.

Importance is the diagonal of the Fisher information, estimated as the mean squared gradient of the
cross-entropy over mini-batches. The paper takes the full training set for the overall importance;
here it is the retained subset plus the forget images (all the data the baseline is given).
Defaults from the paper: alpha (selection weighting) 10, lambda (dampening constant) 1.
"""

from __future__ import annotations

import logging
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..data.datasets import ImageTensorDataset
from ..sections import SSDSettings
from .base import ForgetContext, Method, MethodOutput
from .registry import register_method

log = logging.getLogger(__name__)


def squared_gradient_importance(model: nn.Module, data: ImageTensorDataset, batch_size: int, *,
                                progress: bool = False, desc: str = "importance") -> dict[str, torch.Tensor]:
    """Per parameter, the mean over batches of the squared gradient of the batch cross-entropy.

    The model runs in eval mode (BatchNorm statistics stay as they are) and is not changed.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    importance = {name: torch.zeros_like(p) for name, p in model.named_parameters() if p.requires_grad}
    batches = range(0, len(data), batch_size)
    try:
        for start in tqdm(batches, desc=desc, disable=not progress, leave=False):
            model.zero_grad(set_to_none=True)
            x, y = data.x[start:start + batch_size], data.y[start:start + batch_size]
            F.cross_entropy(model(x.to(device)), y.to(device)).backward()
            for name, p in model.named_parameters():
                if p.grad is not None:
                    importance[name] += p.grad.detach() ** 2
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return {name: value / len(batches) for name, value in importance.items()}


@torch.no_grad()
def dampen(model: nn.Module, overall: dict[str, torch.Tensor], forget: dict[str, torch.Tensor],
           selection_weight: float, dampening: float) -> int:
    """Scale each parameter entry with forget importance > alpha x overall importance by
    min(lambda x overall / forget, 1). Returns how many entries changed."""
    changed = 0
    for name, p in model.named_parameters():
        if name not in overall:
            continue
        selected = forget[name] > selection_weight * overall[name]
        factor = (dampening * overall[name] / forget[name].clamp(min=1e-30)).clamp(max=1.0)
        p[selected] *= factor[selected]
        changed += int(selected.sum())
    return changed


@register_method
class SSD(Method):
    name = "ssd"
    summary = "baseline"
    holds_images = True
    needs = frozenset({"retain", "forget"})
    settings = SSDSettings

    def run(self, ctx: ForgetContext) -> MethodOutput:
        ctx.require("retain", "forget_data")
        cfg = self.settings_in(ctx.recipe)
        start = time.perf_counter()
        # Shuffled, so batches mix classes as the paper's training-set batches do: the importance is
        # the square of each *batch* gradient, and a batch of forget images alone would weigh them
        # like the forget estimate and select nothing.
        order = torch.randperm(len(ctx.retain) + len(ctx.forget_data), generator=torch.Generator().manual_seed(ctx.seed))
        everything = ImageTensorDataset(torch.cat([ctx.retain.x, ctx.forget_data.x])[order],
                                        torch.cat([ctx.retain.y, ctx.forget_data.y])[order])
        overall = squared_gradient_importance(ctx.student, everything, cfg.batch_size, progress=ctx.progress,
                                              desc="ssd importance (all)")
        forget = squared_gradient_importance(ctx.student, ctx.forget_data, cfg.batch_size, progress=ctx.progress,
                                             desc="ssd importance (forget)")
        changed = dampen(ctx.student, overall, forget, cfg.selection_weight, cfg.dampening)
        log.info("ssd dampened %d of %d parameter entries", changed, sum(v.numel() for v in overall.values()))
        return MethodOutput(ctx.student, timings={self.name: time.perf_counter() - start})
