"""The training log amnesiac unlearning needs: every step's update and the classes its batch held.

Amnesiac unlearning (Graves, Nagisetty and Ganesh, "Amnesiac Machine Learning", AAAI 2021)
undoes, on request, the updates of the training batches that held a sensitive sample; that needs
a record made while the model was trained, which :class:`UpdateRecorder` writes and
:class:`TrainingLog` reads. A log is a folder beside its checkpoint (``NAME.updates/``): shards of
safetensors, each holding the float state deltas (parameters and BatchNorm statistics) of a run
of consecutive steps, and ``index.json`` (written last) with the classes of every step's batch
and the sha256 of the state the log ends at, so a log is only ever applied to the model it was
recorded for. Neither side holds more than one shard in memory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator, Sequence

import torch
import torch.nn as nn

from .errors import CheckpointError, InvalidRequestError
from .io import atomic_dir, save_state_dict, sha256_state_dict, write_json

INDEX = "index.json"
FORMAT = 1


def log_folder(checkpoint: str | os.PathLike) -> Path:
    """Where the training log of ``checkpoint`` lives: ``NAME.updates/`` beside ``NAME.safetensors``."""
    return Path(checkpoint).with_suffix(".updates")


def _float_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in model.state_dict().items() if v.is_floating_point()}


class UpdateRecorder:
    """Records a training run step by step, as a context manager around the training loop::

        with UpdateRecorder(model, log_folder(checkpoint)) as recorder:
            ... recorder.step(labels) before each batch's forward pass ...

    The folder is built beside its target and appears, complete with ``index.json``, when the
    block ends without an error (``recorder.index`` then holds the index); otherwise not at all.
    """

    def __init__(self, model: nn.Module, folder: str | os.PathLike, *, shard_bytes: int = 256 * 2 ** 20):
        self.model = model
        self.folder = Path(folder)
        self.shard_bytes = shard_bytes
        self.about: dict = {}
        """Extra fields for the index (e.g. the training settings), set inside the block."""
        self.index: dict | None = None

    def __enter__(self) -> "UpdateRecorder":
        self._dir = atomic_dir(self.folder, overwrite=True)
        self._tmp = self._dir.__enter__()
        self.initial_sha256 = sha256_state_dict(self.model.state_dict())
        self._before = {k: v.clone() for k, v in _float_state(self.model).items()}
        self._pending: dict[str, torch.Tensor] = {}
        self._pending_bytes = 0
        self._first_pending = 0
        self.classes: list[list[int]] = []
        self.shards: list[dict] = []
        self.total_bytes = 0
        return self

    def step(self, labels: torch.Tensor) -> None:
        """Step ``len(self.classes)`` begins: record the update of the step before it, and this batch's classes."""
        if self.classes:
            self._record_update()
        self.classes.append(sorted(set(labels.tolist())))

    def _record_update(self) -> None:
        step = len(self.classes) - 1
        for key, value in _float_state(self.model).items():
            delta = value - self._before[key]
            self._pending[f"{step:08d}/{key}"] = delta.cpu()
            self._pending_bytes += delta.numel() * delta.element_size()
            self._before[key].copy_(value)
        if self._pending_bytes >= self.shard_bytes:
            self._flush(step + 1)

    def _flush(self, end: int) -> None:
        if not self._pending:
            return
        name = f"shard-{len(self.shards):05d}.safetensors"
        save_state_dict(self._tmp / name, self._pending, {})
        self.shards.append({"file": name, "first_step": self._first_pending, "end_step": end})
        self.total_bytes += (self._tmp / name).stat().st_size
        self._pending, self._pending_bytes, self._first_pending = {}, 0, end

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            try:
                if self.classes:
                    self._record_update()
                self._flush(len(self.classes))
                self.index = {"format": FORMAT, "steps": len(self.classes), "classes": self.classes,
                              "shards": self.shards, "initial_sha256": self.initial_sha256,
                              "final_sha256": sha256_state_dict(self.model.state_dict()), "bytes": self.total_bytes,
                              **self.about}
                write_json(self._tmp / INDEX, self.index)
            except BaseException as err:
                self._dir.__exit__(type(err), err, err.__traceback__)
                raise
        return bool(self._dir.__exit__(exc_type, exc, tb))


class TrainingLog:
    """A log written by :class:`UpdateRecorder`, opened and checked (nothing is loaded until used)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        index_path = self.folder / INDEX
        if not index_path.is_file():
            raise InvalidRequestError(f"{self.folder} is not a training log (no {INDEX}); write one with "
                                      "`zeroshot-unlearn train ... --record-updates`")
        try:
            self.index = json.loads(index_path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise CheckpointError(f"{index_path} is not valid JSON: {err}") from None
        if self.index.get("format") != FORMAT:
            raise CheckpointError(f"{self.folder}: training log format {self.index.get('format')!r}, expected {FORMAT}")
        missing = [s["file"] for s in self.index["shards"] if not (self.folder / s["file"]).is_file()]
        if missing:
            raise CheckpointError(f"{self.folder} is incomplete: {len(missing)} shard(s) missing (first: {missing[0]})")

    @property
    def steps(self) -> int:
        return int(self.index["steps"])

    def check_matches(self, model: nn.Module) -> None:
        """Refuse a log recorded for another model or another training run (its final state is not this model's)."""
        actual = sha256_state_dict(model.state_dict())
        if actual != self.index["final_sha256"]:
            raise InvalidRequestError(
                f"the training log {self.folder} was recorded for another model or training run: it ends at state "
                f"sha256 {self.index['final_sha256'][:12]}, this model is {actual[:12]}. Amnesiac unlearning undoes "
                "the updates of the run that produced exactly this model (and of no later change to it)")

    def steps_holding(self, classes: Sequence[int]) -> list[int]:
        wanted = set(classes)
        return [step for step, held in enumerate(self.index["classes"]) if wanted & set(held)]

    def updates(self, steps: Sequence[int]) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
        """``(step, {state key: delta})`` for ``steps``, one shard in memory at a time."""
        from safetensors import safe_open

        wanted = set(steps)
        for shard in self.index["shards"]:
            inside = sorted(s for s in wanted if shard["first_step"] <= s < shard["end_step"])
            if not inside:
                continue
            with safe_open(str(self.folder / shard["file"]), framework="pt") as handle:
                keys_of_step: dict[int, list[tuple[str, str]]] = {}
                for name in handle.keys():  # "00000042/layer1.0.conv1.weight"
                    step, key = name.split("/", 1)
                    keys_of_step.setdefault(int(step), []).append((name, key))
                for step in inside:
                    yield step, {key: handle.get_tensor(name) for name, key in keys_of_step.get(step, [])}

    @torch.no_grad()
    def subtract(self, model: nn.Module, steps: Sequence[int]) -> None:
        """Undo the updates of ``steps`` in ``model`` (in place)."""
        state = model.state_dict()
        for _step, delta in self.updates(steps):
            for key, value in delta.items():
                state[key].sub_(value.to(state[key].device))
