"""What a run returns: :class:`ForgetResult`, its files (:meth:`ForgetResult.save`), and
:func:`load_generator`, which reads a saved run's generator back."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from .errors import InvalidRequestError
from .generators import AntiMemoryGenerator, create_generator
from .io import atomic_dir, jsonable, save_state_dict, write_text
from .recipes import Recipe, load_recipe
from .runtime import current_world
from .selfcheck import SelfCheck
from .surgery import model_num_classes
from .zoo.loading import METADATA_KEY, forget_of


@dataclass
class ForgetResult:
    """What :func:`forget_classes` returns. ``model`` is new unless ``inplace=True`` was asked."""

    model: nn.Module
    generator: nn.Module | None
    recipe: Recipe
    method: str
    forget: list[int]
    """Every class the model does not know: the requested ones and any it forgot in earlier requests."""
    requested: list[int]
    """The classes this request asked for."""
    timings: dict[str, float]
    retained_images: int
    forget_images_used: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    self_check: SelfCheck | None = None
    """What the run's own check of its forgetting measured (None when the recipe turns it off)."""
    recipe_keys_read: frozenset[str] = frozenset()
    """The recipe settings the run read (dotted keys); ``recipe.yaml`` holds these and no others."""
    device: str = "cpu"
    """Where the run ran (and the model lives)."""
    world_size: int = 1
    """Processes of a data-parallel (torchrun) run; 1 otherwise."""
    gradient_sync: dict[str, int] | None = None
    """Data-parallel runs: training steps whose gradients each mechanism averaged (None in one process)."""

    def save(self, folder: str | os.PathLike, *, overwrite: bool = False, format: str = "native") -> Path:
        """Write ``model.safetensors`` (with its config and history), ``recipe.yaml`` and the generator.

        ``format="timm"`` adds timm's ``config.json`` (written by timm), so the folder is also a model
        in timm's own zoo format: ``timm.create_model("local-dir:FOLDER")`` loads it unchanged, and
        ``config.json`` records the forgotten classes and the history. The folder appears complete
        or not at all (built beside it, then renamed); a non-empty ``folder`` is refused unless
        ``overwrite``. Under torchrun only rank 0 writes (every rank holds the same result); the
        others wait until it has.
        """
        check_save_format(self.model, format)
        rank, world_size = current_world()
        if rank == 0:
            with atomic_dir(folder, overwrite=overwrite) as tmp:
                self.write_into(tmp, format=format)
        if world_size > 1:
            torch.distributed.barrier()
        return Path(folder)

    def metrics_row(self, original: nn.Module | None = None, eval_data: Dataset | None = None) -> dict[str, Any]:
        """The run as one results row (``forget``'s ``metrics.json``): the request, its time per phase, peak
        memory and self-check and whether it forgot; with ``eval_data`` (a split holding images of the forget
        and retained classes) Df and Dr on it, beside ``original``'s."""
        from .evaluation import forget_retain_accuracy, original_columns
        from .runtime import peak_memory

        check = self.self_check
        failures = [] if check is None or check.passed is not False else [f"self-check: {check.describe()}"]
        if check is not None and check.passed is None:
            failures.append(f"self-check inconclusive: {check.describe()}")
        peak = peak_memory(self.device)
        row: dict[str, Any] = {
            "method": self.method, "forget": self.forget, "requested": self.requested, "depth": self.recipe.depth,
            "time_s": round(self.timings.get("total", 0.0), 2), "peak_memory_gib": round(peak["gib"], 3),
            "peak_memory": peak["what"], "world_size": self.world_size, "device": self.device,
            "gradient_sync": self.gradient_sync, "retained_images": self.retained_images,
            "forget_images_used": self.forget_images_used, "data_free": self.retained_images == 0,
            "timings": {k: round(v, 2) for k, v in self.timings.items()},
            "self_check": check.as_dict() if check is not None else None}
        if eval_data is not None:
            df, dr = forget_retain_accuracy(self.model, eval_data, self.forget)
            row.update(df=round(df, 2), dr=round(dr, 2))
            if original is not None:
                row.update({key: round(value, 2) for key, value in
                            original_columns(original, eval_data, self.forget).items()})
        row["forgotten"] = not failures
        row["forgetting_failures"] = failures
        return row

    def write_into(self, folder: Path, *, format: str = "native") -> None:
        """The files of :meth:`save`, written into an existing folder (each file atomically)."""
        check_save_format(self.model, format)
        cfg = dict(getattr(self.model, "pretrained_cfg", {}) or {})
        metadata = {METADATA_KEY: json.dumps({"pretrained_cfg": jsonable(cfg), "history": self.history})}
        save_state_dict(folder / "model.safetensors", self.model.state_dict(), metadata)
        write_text(folder / "recipe.yaml", self.recipe.to_yaml(self.recipe_keys_read or None))
        if self.generator is not None:
            save_state_dict(folder / "generator.safetensors", self.generator.state_dict(),
                            {METADATA_KEY: json.dumps({"kind": self.recipe.generator.kind, "forget": self.forget})})
        if format == "timm":
            from .zoo.timm_format import write_timm_config

            write_timm_config(self.model, folder, forget=self.forget, history=self.history)


SAVE_FORMATS = ("native", "timm")


def check_save_format(model: nn.Module, format: str) -> None:
    """Refuse a format ``model`` cannot be written in, before anything is computed or written."""
    if format not in SAVE_FORMATS:
        raise InvalidRequestError(f"unknown save format {format!r}; choose one of: {', '.join(SAVE_FORMATS)}")
    if format == "timm":
        from .zoo.timm_format import check_exportable

        check_exportable(model)


def load_generator(source: str | os.PathLike, model: nn.Module) -> AntiMemoryGenerator:
    """The anti-memory generator of a forget run (its output folder or ``generator.safetensors``, with
    ``recipe.yaml`` beside it) or an amortised generator folder, ready to sample for ``model``."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from .generators.amortised import CARD, load_amortised

    path = Path(source)
    folder = path.parent if path.is_file() else path
    if (folder / CARD).is_file():
        return load_amortised(folder, model)
    weights, recipe_file = folder / "generator.safetensors", folder / "recipe.yaml"
    if not weights.is_file() or not recipe_file.is_file():
        raise InvalidRequestError(f"{source} holds no generator: expected a forget output folder (generator.safetensors "
                                  "and recipe.yaml) or an amortised generator folder (card.json)")
    with safe_open(str(weights), "pt") as handle:
        meta = json.loads((handle.metadata() or {}).get(METADATA_KEY, "{}"))
    cfg = model.pretrained_cfg
    generator = create_generator(load_recipe(recipe_file).generator, num_classes=model_num_classes(model),
                                 input_size=cfg["input_size"], mean=cfg["mean"], std=cfg["std"],
                                 forget=forget_of(meta))
    try:
        generator.load_state_dict(load_file(str(weights)))
    except RuntimeError as err:
        raise InvalidRequestError(f"{weights} does not fit this model's generator: {str(err).splitlines()[0]}") from None
    return generator.eval()
