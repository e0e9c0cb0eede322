"""timm's own model-zoo format: a folder holding ``config.json`` and ``model.safetensors``.

It is what ``timm.models.save_for_hf`` and ``push_to_hub`` write and what
``timm.create_model("local-dir:PATH")`` and ``"hf-hub:NAME"`` read. Reading goes through timm's
own loader; a hub name is read from the local Hugging Face cache only (this library never
downloads a model). Writing uses timm's config writer, so serving code that loads models with
timm loads an unlearned one unchanged; the unlearning history and the forgotten classes travel
in ``config.json`` under :data:`CONFIG_KEY`, which timm ignores.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Sequence

import torch.nn as nn

from ..errors import CheckpointError, InvalidRequestError
from ..io import jsonable

CONFIG = "config.json"
WEIGHTS = ("model.safetensors", "pytorch_model.bin")
CONFIG_KEY = "zeroshot_unlearn"
SOURCES = ("local-dir:", "hf-hub:")


def is_timm_folder(path: str | Path) -> bool:
    return Path(path).is_dir() and (Path(path) / CONFIG).is_file()


def is_timm_source(name: str | None) -> bool:
    """``local-dir:PATH``, ``hf-hub:NAME``, or the path of a folder in timm's format."""
    return isinstance(name, str) and (name.startswith(SOURCES) or is_timm_folder(name))


def _cached_snapshot(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:  # HF_HUB_CACHE is read here, not only when huggingface_hub was imported
        return Path(snapshot_download(repo_id, local_files_only=True, cache_dir=os.environ.get("HF_HUB_CACHE")))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError) as err:
        raise CheckpointError(f"hf-hub:{repo_id} is not in the local Hugging Face cache ({type(err).__name__}). This "
                              "library never downloads models: fetch it once (huggingface-cli download "
                              f"{repo_id}) and retry, or pass local-dir:PATH") from None


def timm_folder(name: str) -> Path:
    """The folder ``name`` points at: a ``local-dir:`` path, a cached ``hf-hub:`` snapshot, or a plain path."""
    if name.startswith("hf-hub:"):
        folder = _cached_snapshot(name[len("hf-hub:"):])
    else:
        folder = Path(name[len("local-dir:"):] if name.startswith("local-dir:") else name)
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is not a folder; a model in timm's format is a folder with {CONFIG} and "
                              f"{WEIGHTS[0]}")
    if not (folder / CONFIG).is_file():
        raise CheckpointError(f"{folder} has no {CONFIG}: not a model in timm's format")
    if not any((folder / w).is_file() for w in WEIGHTS):
        raise CheckpointError(f"{folder} has {CONFIG} but no weights ({' or '.join(WEIGHTS)})")
    return folder


def load_timm_folder(name: str, *, sha256: str | None = None) -> nn.Module:
    """A model from timm's format through ``timm.create_model("local-dir:...")``, in eval mode.

    ``pretrained_cfg`` is timm's (input size, mean/std, ``label_names``); the unlearning history of
    a model this library wrote comes back as ``model.unlearning_history``. ``sha256``: the weights
    file must have it (checked before timm reads the file).
    """
    import timm

    from .registry import verify_checksum

    folder = timm_folder(name)
    weights = next(folder / w for w in WEIGHTS if (folder / w).is_file())
    digest = verify_checksum(weights, sha256)
    config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    architecture = config.get("architecture") or (config.get("pretrained_cfg") or {}).get("architecture")
    if not architecture or not timm.is_model(architecture):
        raise CheckpointError(f"{folder / CONFIG} names architecture {architecture!r}, which timm does not know")
    try:
        model = timm.create_model(f"local-dir:{folder}", pretrained=True)
    except Exception as err:  # timm's own message says what does not fit
        raise CheckpointError(f"timm could not load {folder}: {err}") from None
    cfg = dict(model.pretrained_cfg or {})
    cfg["architecture"] = architecture
    labels = cfg.get("label_names")
    if isinstance(labels, dict):  # timm allows {id: name}; the project keeps a list in class order
        cfg["label_names"] = [labels.get(str(i), labels.get(i, str(i))) for i in range(model.num_classes)]
    cfg["checkpoint_sha256"] = digest
    cfg["weights"] = f"timm folder {folder} ({weights.name}, sha256 {digest[:12]})"
    model.pretrained_cfg = cfg
    ours = config.get(CONFIG_KEY) or {}
    if ours.get("history"):
        model.unlearning_history = list(ours["history"])
    return model.eval()


def check_exportable(model: nn.Module) -> None:
    """Refuse, before any work, a model that ``timm.create_model`` could not rebuild from ``config.json``."""
    import timm

    cfg = getattr(model, "pretrained_cfg", None) or {}
    architecture = cfg.get("architecture")
    if not architecture or not timm.is_model(architecture) or not type(model).__module__.startswith("timm."):
        raise InvalidRequestError(f"the timm format needs a timm model; this one is {architecture or type(model).__name__!r} "
                                  f"({type(model).__name__}), which timm cannot build from {CONFIG}. Save it in the "
                                  "library's own format (the default)")


def write_timm_config(model: nn.Module, folder: Path, *, forget: Sequence[int], history: list[dict[str, Any]]) -> None:
    """``config.json`` for ``model.safetensors`` in ``folder``, written by timm's own config writer."""
    from timm.models._hub import save_config_for_hf
    from timm.models._pretrained import PretrainedCfg

    check_exportable(model)
    full = dict(model.pretrained_cfg)
    timm_keys = {f.name for f in dataclasses.fields(PretrainedCfg)}
    labels = list(full.get("label_names") or [])
    ours = {"forgotten_classes": list(forget), "history": jsonable(history),
            "forgotten_label_names": [labels[c] for c in forget] if labels else None}
    model_config: dict[str, Any] = {CONFIG_KEY: ours}
    if labels:
        model_config["label_names"] = labels
    data_config = {k: tuple(full[k]) for k in ("input_size", "mean", "std") if full.get(k)}
    # timm's writer reads model.pretrained_cfg and refuses keys it does not define (this library's own).
    model.pretrained_cfg = {k: v for k, v in full.items() if k in timm_keys}
    try:  # into the folder being built (ForgetResult.save builds it beside its target and renames it)
        save_config_for_hf(model, str(folder / CONFIG), model_config=model_config, data_config=data_config)
    finally:
        model.pretrained_cfg = full
