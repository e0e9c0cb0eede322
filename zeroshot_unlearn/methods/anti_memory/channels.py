"""Which convolution channels the impair perturbs when ``perturb_channels < 1``: ranked without forget data."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from ... import seeds
from ...data.datasets import images_at
from ...errors import InvalidRequestError
from ...surgery import conv_weights_in
from ..base import ForgetContext


@torch.no_grad()
def forget_channel_indices(ctx: ForgetContext, cfg, generator: nn.Module, samples: int = 256) -> dict[str, torch.Tensor]:
    """For each convolution in ``cfg.perturb_scope``: the ``perturb_channels`` fraction of its output
    channels with the largest mean absolute activation on anti-memories (``generator``'s) relative to
    retained images (the original model; the ranking of Class-Discriminative Pruning, estimated without
    forget data)."""
    ctx.require("retain")
    if generator is None:  # the method fits one whenever a phase ranks channels
        raise InvalidRequestError("perturb_channels < 1 ranks channels on anti-memories: the run has no generator")
    convs = conv_weights_in(ctx.original, cfg.perturb_scope)
    activity: dict[str, list[torch.Tensor]] = {name: [] for name in convs}
    hooks = [module.register_forward_hook(lambda _m, _i, out, name=name: activity[name].append(
        out.abs().mean((0, 2, 3)))) for name, module in convs.items()]
    try:
        labels = ctx.forget_tensor[torch.arange(samples, device=ctx.device) % len(ctx.forget)]
        # Seeded: every rank of a torchrun run must rank, and so perturb, the same channels.
        with torch.random.fork_rng(devices=[ctx.device] if ctx.device.type == "cuda" else []):
            torch.manual_seed(ctx.seed + seeds.CHANNEL_RANKING)
            ctx.original(generator.sample(labels))
        # A seeded draw over the whole subset: retained subsets are stored class by class, so its
        # first rows would be one class.
        rng = torch.Generator().manual_seed(ctx.seed + seeds.CHANNEL_RANKING)
        rows = torch.randperm(len(ctx.retain), generator=rng)[:samples]
        ctx.original(ctx.runtime.to_device(images_at(ctx.retain, rows)))
    finally:
        for hook in hooks:
            hook.remove()
    ranked = {}
    for name, (on_anti_memories, on_retained) in activity.items():
        ratio = on_anti_memories / on_retained.clamp(min=1e-8)
        ranked[name] = ratio.topk(max(1, math.ceil(cfg.perturb_channels * len(ratio)))).indices.cpu()
    return ranked
