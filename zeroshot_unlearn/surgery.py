"""Model surgery: everything done to a model outside the training loop.

Finding the classifier head and the number of classes, reading the features the head receives,
freezing BatchNorm statistics or parameters for a block, re-estimating BatchNorm statistics,
selecting weights (or convolutions) by name, shrinking and perturbing them (whole or some output
channels), re-initialising a model. The engine, the methods, the audit, the
generators and the validation all use these; none of them touches a model's internals otherwise.
"""

from __future__ import annotations

import contextlib
from typing import Iterable, Iterator, Mapping, Sequence

import torch
import torch.nn as nn

from .errors import ModelError

BN_TYPES = (nn.modules.batchnorm._BatchNorm,)


def classifier_head(model: nn.Module) -> nn.Module | None:
    """The linear layer that outputs the logits: timm's ``get_classifier()``, else the last ``nn.Linear``."""
    getter = getattr(model, "get_classifier", None)
    head = getter() if callable(getter) else None
    if isinstance(head, nn.Linear):
        return head
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def model_num_classes(model: nn.Module) -> int:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    for value in (getattr(model, "num_classes", None), cfg.get("num_classes")):
        if isinstance(value, int) and value > 0:
            return value
    head = classifier_head(model)
    if head is None:
        raise ModelError(f"{type(model).__name__} has no classifier head (no nn.Linear and no get_classifier()); "
                         "forgetting classes needs a model that outputs one logit per class")
    return head.out_features


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
    ``features.value`` with their autograd graph, for any model whose head :func:`classifier_head`
    finds (timm, zoo, or a plain ``nn.Linear``).
    """

    def __init__(self, model: nn.Module):
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


@torch.no_grad()
def check_linear_head(model: nn.Module, input_size: Sequence[int]) -> None:
    """Refuse (:class:`~zeroshot_unlearn.errors.ModelError`) a model whose logits are not its head applied to one
    feature vector per image: training that head alone, on features captured at its input, would then train
    something other than what the model outputs (a distilled ViT averages two heads; a model may scale, pool
    or mix its logits after the last linear layer). One forward pass of two random images, in eval mode. A model
    under an output mask (``logit_mask``'s, ``.unmasked``) is checked on its weights: the mask is not a layer."""
    model = getattr(model, "unmasked", model)
    head = classifier_head(model)
    if head is None:
        raise ModelError(f"{type(model).__name__} has no linear classifier head, so the head-only path cannot serve "
                         "it: use a recipe with train_scope: all")
    getter = getattr(model, "get_classifier", None)
    declared = getter() if callable(getter) else None
    if isinstance(declared, (tuple, list)):
        raise ModelError(f"{type(model).__name__} has {len(declared)} classifier heads (e.g. a distilled ViT's head and "
                         "head_dist, averaged): training one on its own features would not remove a class from the "
                         "output, so the head-only path cannot serve it: use a recipe with train_scope: all")
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        device = next(model.parameters()).device
        x = torch.rand(2, *input_size, generator=torch.Generator().manual_seed(0)).to(device)
        with HeadInput(model) as captured:
            logits = model(x)
        calls = len(captured.values)
        direct = head(captured.value) if calls == 1 else None
    finally:
        for module, training in modes:
            module.training = training
    if not isinstance(logits, torch.Tensor) or direct is None or direct.shape != logits.shape or not torch.allclose(
            direct, logits, rtol=1e-4, atol=1e-4):
        why = (f"its last linear layer ran {calls} times in one forward pass" if calls != 1 else
               "its logits are not its last linear layer's output")
        raise ModelError(f"{type(model).__name__}: {why}, so the head-only path (train_scope: head, features at the "
                         "head's input) cannot serve it: use a recipe with train_scope: all (recipe=NAME)")


@torch.no_grad()
def fresh_rows(head: nn.Linear, rows: Sequence[int], seed: int) -> None:
    """Replace ``rows`` of ``head`` (weights and biases) with those a new ``nn.Linear`` of its shape draws
    (its own initialisation, seeded): rows that carry nothing of what the head had learnt."""
    fresh = nn.Linear(head.in_features, head.out_features, bias=head.bias is not None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh.reset_parameters()
    index = torch.as_tensor(list(rows), device=head.weight.device)
    head.weight[index] = fresh.weight.to(head.weight)[index]
    if head.bias is not None:
        head.bias[index] = fresh.bias.to(head.bias)[index]


def backbone_stages(model: nn.Module) -> list[str]:
    """The names of the modules whose outputs are the backbone's stages, in order, from timm's ``feature_info``
    (every timm model has one; so do the zoo's own models). Empty where the model does not describe its stages."""
    info = getattr(model, "feature_info", None)
    if info is None:
        return []
    entries = info.get_dicts() if hasattr(info, "get_dicts") else info
    names = [entry.get("module") for entry in entries if isinstance(entry, Mapping)]
    return [name for name in names if name] if all(names) else []


def _pooled(out: torch.Tensor) -> torch.Tensor:
    # (N, C, H, W) maps pooled over space, (N, tokens, C) token sequences over tokens: one vector per image.
    if out.ndim == 4:
        return out.mean((2, 3))
    if out.ndim == 3:
        return out.mean(1)
    return out.flatten(1)


class StageOutputs:
    """Captures the output of every backbone stage (:func:`backbone_stages`), pooled to one vector per image.

    ``with StageOutputs(model) as stages: model(x)`` leaves ``stages.values[name]``: a list of (N, C) float
    tensors on the CPU, one per forward pass.
    """

    def __init__(self, model: nn.Module):
        self.names = backbone_stages(model)
        self.modules = {name: model.get_submodule(name) for name in self.names}
        self.values: dict[str, list[torch.Tensor]] = {name: [] for name in self.names}
        self.handles: list = []

    def __enter__(self) -> "StageOutputs":
        for name, module in self.modules.items():
            def hook(_module, _args, out, name=name):
                self.values[name].append(_pooled(out.detach()).float().cpu())
            self.handles.append(module.register_forward_hook(hook))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []


def _in_scope(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def unknown_prefixes(model: nn.Module, scope: Sequence[str]) -> list[str]:
    """The entries of ``scope`` that name no parameter of ``model``."""
    names = [n for n, _ in model.named_parameters()]
    return [prefix for prefix in scope if not any(_in_scope(n, prefix) for n in names)]


def scoped_weights(model: nn.Module, scope: Sequence[str], named: bool = False) -> list:
    """Weight tensors (ndim > 1) whose names start with one of the prefixes ``scope`` (with ``named``:
    ``(name, tensor)`` pairs)."""
    found = [(n, p) for n, p in model.named_parameters() if p.ndim > 1 and any(_in_scope(n, s) for s in scope)]
    return found if named else [p for _, p in found]


def conv_weights_in(model: nn.Module, scope: Sequence[str]) -> dict[str, nn.Module]:
    """The convolutions under ``scope``, by the name of their weight tensor (as ``named_parameters`` gives it)."""
    return {f"{name}.weight": module for name, module in model.named_modules()
            if isinstance(module, nn.modules.conv._ConvNd) and any(_in_scope(name, s) for s in scope)}


@torch.no_grad()
def shrink_perturb(model: nn.Module, scope: Sequence[str], shrink: float, noise: float, seed: int,
                   rows: Mapping[str, torch.Tensor] | None = None) -> int:
    """Shrink and perturb (Ash & Adams, NeurIPS 2020) the weights under ``scope``: multiply by
    ``shrink``, add Gaussian noise of ``noise`` times each tensor's standard deviation.
    ``rows``: for the weights it names, only those output rows (channels) change.
    Returns how many tensors changed."""
    if not scope or (shrink == 1.0 and noise == 0.0):
        return 0
    rng = torch.Generator().manual_seed(seed)
    weights = scoped_weights(model, scope, named=True)
    for name, param in weights:
        std = float(param.std())
        change = param * shrink + torch.randn(param.shape, generator=rng).to(param) * std * noise
        if rows is not None and name in rows:
            param[rows[name]] = change[rows[name]]
        else:
            param.copy_(change)
    return len(weights)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Re-estimate every BatchNorm layer's running statistics as the plain average over ``batches``
    (forward passes in train mode, no gradients); everything else stays as it was. Returns the
    number of layers re-estimated."""
    layers = batchnorm_modules(model)
    momenta = [m.momentum for m in layers]
    was_training = model.training
    model.eval()
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
        m.train()
    try:
        for x in batches:
            model(x)
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        model.train(was_training)
    return len(layers)


def reset_weights(model: nn.Module, seed: int) -> nn.Module:
    """Re-initialise every layer that knows how (``reset_parameters``; BatchNorm statistics too), seeded."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in model.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return model
