"""``load_model``: build an architecture and load a checkpoint safely.

Checkpoints are read with ``torch.load(weights_only=True)`` or safetensors; a pickle that
the safe loader refuses is only opened when the caller passes ``trust_checkpoint=True``.
Known files (``checkpoints/registry.yaml``) are checked against their sha256.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .._resources import cache_dir, checkpoints_dir
from ..errors import CheckpointError, InvalidRequestError
from .registry import checkpoint_registry, list_models, model_entry, pretrained_entry, verify_checksum

log = logging.getLogger(__name__)

METADATA_KEY = "zeroshot_unlearn"


def forget_of(entry: dict) -> list[int]:
    """Every class an unlearning history entry (or a generator's metadata) records as forgotten: its ``forget``
    key; files written before the rename call it ``classes``, and are read alike."""
    return list(entry.get("forget", entry.get("classes", [])))


def _suggest_models(name: str) -> str:
    import difflib

    import timm

    candidates = list_models() + timm.list_models()
    close = difflib.get_close_matches(name, candidates, n=3)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def build_model(name: str, num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """An untrained model by name: this project's zoo first, then timm."""
    entry = model_entry(name)
    if entry is not None and entry.timm_architecture is not None:
        model = build_model(entry.timm_architecture, num_classes=num_classes or entry.num_classes, **kwargs)
        model.pretrained_cfg.update(input_size=entry.input_size, mean=tuple(entry.mean), std=tuple(entry.std))
        if entry.label_names and model.pretrained_cfg["num_classes"] == len(entry.label_names):
            model.pretrained_cfg["label_names"] = list(entry.label_names)
        return model
    if entry is not None:
        classes = num_classes or entry.num_classes
        model = entry.builder(num_classes=classes, **kwargs)
        model.pretrained_cfg = {
            "architecture": name, "num_classes": classes, "input_size": entry.input_size,
            "mean": tuple(entry.mean), "std": tuple(entry.std),
        }
        if entry.label_names and classes == len(entry.label_names):
            model.pretrained_cfg["label_names"] = list(entry.label_names)
        return model
    import timm

    if not timm.is_model(name):
        raise InvalidRequestError(f"unknown model {name!r}.{_suggest_models(name)} "
                                  f"This project's zoo: {', '.join(list_models())}; any timm model name also works")
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    model = timm.create_model(name, pretrained=False, **kwargs)
    cfg = dict(getattr(model, "pretrained_cfg", {}) or {})
    input_size = tuple(cfg.get("input_size", (3, 224, 224)))
    if "img_size" in kwargs:
        size = kwargs["img_size"]
        input_size = (input_size[0], *((size, size) if isinstance(size, int) else size))
    cfg.update(architecture=name, num_classes=model.num_classes, input_size=input_size,
               mean=tuple(cfg.get("mean", (0.485, 0.456, 0.406))), std=tuple(cfg.get("std", (0.229, 0.224, 0.225))))
    # Constructor arguments travel with saved checkpoints, so load_model(checkpoint=...) rebuilds the same shape.
    cfg["model_kwargs"] = {k: v for k, v in kwargs.items() if k != "num_classes"}
    model.pretrained_cfg = cfg
    return model


def find_checkpoint(checkpoint: str | os.PathLike, *, download: bool = True) -> Path:
    """A local path for ``checkpoint``: an existing file, a shipped file, a cached or downloaded registry file."""
    path = Path(checkpoint).expanduser()
    if path.is_file():
        return path
    if path.is_dir() and (path / "model.safetensors").is_file():  # the output folder of an earlier forget
        return path / "model.safetensors"
    if path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} is not a file (nor a folder with model.safetensors)")
    for folder in (checkpoints_dir(), cache_dir() / "checkpoints"):
        candidate = folder / path.name
        if candidate.is_file():
            return candidate
    entry = checkpoint_registry().get(path.name)
    if entry is not None and entry.package:
        return packaged_checkpoint(entry)
    if entry is None or not entry.url:
        raise CheckpointError(f"checkpoint file {str(checkpoint)!r} not found (looked in the current folder, "
                              f"{checkpoints_dir()} and {cache_dir() / 'checkpoints'}); pass an existing path")
    if not download:
        raise CheckpointError(f"checkpoint {path.name!r} is not cached and download=False; get it from {entry.url}")
    target = cache_dir() / "checkpoints" / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s from %s", path.name, entry.url)
    try:
        torch.hub.download_url_to_file(entry.url, str(target), hash_prefix=None, progress=True)
    except Exception as err:  # network errors come in many types
        raise CheckpointError(f"could not download {entry.url}: {err}. Download it by hand and pass its path") from err
    return target


def packaged_checkpoint(entry) -> Path:
    """The file of a registry entry that a PyPI package ships, in the installed package (never downloaded)."""
    import importlib.util

    module = entry.package_file.split("/")[0]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        how = f'pip install "zeroshot-unlearn[{entry.extra}]"' if entry.extra else f"pip install {entry.package}"
        raise CheckpointError(f"the weights of {entry.model} ship in the PyPI package {entry.package!r}, which is not "
                              f"installed: {how} (or pip install {entry.package})")
    path = Path(list(spec.submodule_search_locations)[0]).parent / entry.package_file
    if not path.is_file():
        raise CheckpointError(f"the installed package {entry.package!r} has no {entry.package_file}; reinstall it "
                              f"(pip install --force-reinstall {entry.package})")
    return path


def renamed_in_order(state: dict[str, torch.Tensor], model: nn.Module, source: str) -> dict[str, torch.Tensor]:
    """``state`` under ``model``'s own names, matched by position (registry ``key_map: in_order``: the
    same network saved by another library); any difference in count or shape is a CheckpointError."""
    own = model.state_dict()
    if len(own) != len(state):
        raise CheckpointError(f"{source} holds {len(state)} tensors, the architecture {len(own)}: not the same network")
    renamed = {}
    for (theirs, tensor), (ours, target) in zip(state.items(), own.items()):
        if tensor.shape != target.shape:
            raise CheckpointError(f"{source}: tensor {theirs} {tuple(tensor.shape)} does not fit {ours} "
                                  f"{tuple(target.shape)}; not the same network")
        renamed[ours] = tensor
    return renamed


def read_state_dict(path: Path, *, trust_checkpoint: bool = False) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors of a checkpoint (``module.`` prefixes stripped) and its metadata."""
    metadata: dict = {}
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as fh:
                state = {k: fh.get_tensor(k) for k in fh.keys()}
                raw = (fh.metadata() or {}).get(METADATA_KEY)
        except Exception as err:
            raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupt): {err}") from None
        metadata = json.loads(raw) if raw else {}
    else:
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            if not trust_checkpoint:
                raise CheckpointError(
                    f"{path} contains Python objects that safe loading (weights_only=True) refuses: "
                    f"{str(err).splitlines()[0]} Loading it would run code from the file; if you trust its "
                    "source, pass trust_checkpoint=True (CLI: --trust-checkpoint)") from None
            log.warning("loading %s with weights_only=False because trust_checkpoint=True", path)
            obj = torch.load(str(path), map_location="cpu", weights_only=False)
        except Exception as err:
            raise CheckpointError(f"{path} could not be read (truncated or corrupt?): {err}") from None
        for key in ("state_dict_ema", "state_dict", "model_state_dict", "model"):
            if isinstance(obj, dict) and isinstance(obj.get(key), dict):
                obj = obj[key]
                break
        if isinstance(obj, nn.Module):
            obj = obj.state_dict()
        if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise CheckpointError(f"{path} holds no state dict of tensors (found {type(obj).__name__})")
        state = obj
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state, metadata


def load_state_dict_checked(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in state
              if k in own and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {', '.join(missing[:5])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first: {', '.join(unexpected[:5])})")
        if shapes:
            parts.append(f"{len(shapes)} with another shape (first: {'; '.join(shapes[:3])})")
        raise CheckpointError(f"{source} does not match the architecture: " + "; ".join(parts)
                              + ". Check the model name and num_classes")
    model.load_state_dict(state, strict=False)


def load_model(name: str | None = None, checkpoint: str | os.PathLike | None = None, *,
               pretrained: bool = False, num_classes: int | None = None, sha256: str | None = None,
               trust_checkpoint: bool = False, download: bool = True, **kwargs: Any) -> nn.Module:
    """Build model ``name`` and load ``checkpoint`` into it, in eval mode on the CPU.

    ``name`` is a zoo name (:func:`list_models`) or any timm model name; it may be left
    out for a ``.safetensors`` file written by this library (the architecture is in its
    metadata) and for a folder it wrote. As in timm, ``pretrained=False`` (the default) without a
    checkpoint builds random weights; ``pretrained=True`` loads the registered default checkpoint of a
    zoo model (downloaded and checksum-verified when not cached), which is what the command line's
    ``--model NAME`` loads. ``model.pretrained_cfg["weights"]`` says which weights were loaded.

    A model in timm's own format loads through timm: ``name`` ``"local-dir:PATH"``, ``"hf-hub:NAME"``
    (from the local Hugging Face cache only) or a folder path, or ``checkpoint`` a folder holding
    ``config.json`` (see :mod:`zeroshot_unlearn.zoo.timm_format`).
    """
    from .timm_format import is_timm_folder, is_timm_source, load_timm_folder

    folder = str(checkpoint) if checkpoint is not None and is_timm_folder(checkpoint) else None
    if folder is not None or is_timm_source(name):
        model = load_timm_folder(folder or name, sha256=sha256)
        if folder is not None and name and not is_timm_source(name) and name != model.pretrained_cfg["architecture"]:
            raise CheckpointError(f"{checkpoint} holds a {model.pretrained_cfg['architecture']!r}, not {name!r}")
        return model
    path: Path | None = None
    registered = checkpoint is None and pretrained
    if registered:
        entry = pretrained_entry(name or "")
        if entry is None or entry.default_checkpoint is None:
            raise InvalidRequestError(f"model {name!r} has no registered default checkpoint; pass checkpoint=PATH")
        name, checkpoint = entry.name, entry.default_checkpoint
    state: dict[str, torch.Tensor] | None = None
    metadata: dict = {}
    if checkpoint is not None:
        path = find_checkpoint(checkpoint, download=download)
        digest = verify_checksum(path, sha256)
        state, metadata = read_state_dict(path, trust_checkpoint=trust_checkpoint)
    cfg = metadata.get("pretrained_cfg", {})
    entry = model_entry(name or "")
    if entry is not None and entry.timm_architecture is not None:
        name = entry.timm_architecture  # trained weights of a timm model: built and named as timm's
    name = name or cfg.get("architecture")
    if name is None:
        raise InvalidRequestError("load_model needs a model name (this checkpoint does not record its architecture)")
    if cfg and cfg.get("architecture") not in (None, name):
        raise CheckpointError(f"{path} was saved from {cfg['architecture']!r}, not {name!r}")
    if num_classes is None and cfg.get("num_classes"):
        num_classes = int(cfg["num_classes"])
    if not kwargs and cfg.get("model_kwargs"):
        kwargs = dict(cfg["model_kwargs"])
    model = build_model(name, num_classes=num_classes, **kwargs)
    for key in ("input_size", "mean", "std"):  # what the checkpoint was trained at, e.g. 32x32 for a timm ResNet
        if cfg.get(key):
            model.pretrained_cfg[key] = tuple(cfg[key])
    if cfg.get("label_names"):
        model.pretrained_cfg["label_names"] = list(cfg["label_names"])
    if state is not None:
        known = checkpoint_registry().get(path.name)
        if known is not None and known.key_map == "in_order" and digest.startswith(known.sha256):
            state = renamed_in_order(state, model, str(path))
        load_state_dict_checked(model, state, str(path))
        model.pretrained_cfg["checkpoint_sha256"] = digest
        model.pretrained_cfg["weights"] = (f"{'registered checkpoint' if registered else 'checkpoint'} {path.name} "
                                           f"(sha256 {digest[:12]})")
        if metadata.get("history"):
            model.unlearning_history = metadata["history"]
    else:
        model.pretrained_cfg["weights"] = "random initialisation (no checkpoint, pretrained=False)"
        entry = model_entry(name)
        if entry is not None and entry.default_checkpoint:
            log.warning("load_model(%r) built random weights (pretrained=False, as in timm); pass pretrained=True for "
                        "the registered checkpoint %s", name, entry.default_checkpoint)
    log.info("%s: %s", name, model.pretrained_cfg["weights"])
    return model.eval()
