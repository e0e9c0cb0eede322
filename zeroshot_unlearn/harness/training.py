"""Supervised training on the shared engine: zoo-style checkpoints (cached by content hash) and retrain references."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._resources import cache_dir
from ..augment import Augment
from ..data.datasets import DataSplits, ImageTensorDataset
from ..engine import BatchStream, train_phase
from ..errors import InvalidRequestError
from ..io import atomic_path, save_state_dict
from ..runtime import Runtime, resolve_device
from ..sections import AugmentConfig, PhaseConfig
from ..training_log import UpdateRecorder, log_folder
from .specs import TrainConfig, TrainSpec, get_train_spec, list_train_specs

log = logging.getLogger(__name__)


def _timm_optimizer(model: nn.Module, cfg: TrainConfig, steps: int, steps_per_epoch: int):
    """timm's optimizer and a per-step cosine schedule with linear warm-up."""
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    optimizer = create_optimizer_v2(model, opt=cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                    momentum=cfg.momentum, filter_bias_and_bn=cfg.no_decay_on_norm_and_bias)
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    # One scheduler "epoch" per optimiser step, so fractional epochs and warm-up are exact.
    scheduler, _ = create_scheduler_v2(optimizer, sched="cosine", num_epochs=steps, warmup_epochs=warmup,
                                       warmup_lr=cfg.lr * 0.01 if warmup else 1e-5, min_lr=0.0)
    return optimizer, scheduler.step


RESUME_SUFFIX = ".resume.pt"


def _device_name(device: torch.device) -> str:
    """What a card records about where an epoch ran: ``cpu`` or the GPU's name."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def _rng_snapshot(stream: BatchStream, device: torch.device) -> dict:
    """Everything random a training run draws from: the global RNG (augmentations; on CUDA also the
    device's generator) and the batch stream."""
    state = {"torch_rng": torch.get_rng_state(), "stream": stream.state_dict()}
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    return state


def _restore_rng(stream: BatchStream, state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch_rng"])
    if device.type == "cuda" and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    stream.load_state_dict(state["stream"])


def train_classifier(model: nn.Module, data: ImageTensorDataset, cfg: TrainConfig = TrainConfig(), *, seed: int = 0,
                     exclude: Sequence[int] = (), progress: bool = True,
                     recorder: UpdateRecorder | None = None, resume: Path | None = None,
                     resume_key: str = "", device: str | torch.device = "cpu") -> nn.Module:
    """Train ``model`` in place with cross-entropy on ``data`` minus the ``exclude`` classes.

    ``recorder`` (inside its ``with`` block) logs every step's update and batch classes; it only
    reads the model, so the weights are the same with or without it.

    ``resume``: a file the run writes (atomically) after every epoch: weights, optimiser, the step
    count and every RNG state. A run that finds one with the same ``resume_key`` continues from it
    and ends with the weights an uninterrupted run would have; the file is removed at the end.
    ``model.training_epochs`` then lists each epoch's last loss, wall and process CPU seconds.

    ``device``: where the steps run (``"cpu"``, ``"cuda"``, ``"auto"``). The model comes back on the
    CPU either way. A state saved on one device resumes on another, but only a run that stays on
    the CPU is bit-reproducible across machines.
    """
    if exclude:
        keep = ~torch.isin(data.y, torch.as_tensor(list(exclude)))
        data = data.subset(torch.nonzero(keep).flatten())
    if resume is not None and recorder is not None:
        raise InvalidRequestError("a training log is recorded in one uninterrupted run; drop resume or recorder")
    runtime = Runtime(resolve_device(device))
    mean = getattr(model, "pretrained_cfg", {}).get("mean", (0.0,) * data.x.shape[1])
    std = getattr(model, "pretrained_cfg", {}).get("std", (1.0,) * data.x.shape[1])
    augment = Augment(AugmentConfig(crop_padding=cfg.crop_padding, flip=cfg.flip), mean, std,
                      data.x.shape[2:]).to(runtime.device)
    model.to(runtime.device)
    phase = PhaseConfig(epochs=cfg.epochs, lr=cfg.lr, weight_decay=cfg.weight_decay, batch_size=cfg.batch_size)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    if cfg.channels_last:
        model.to(memory_format=memory_format)
    with torch.random.fork_rng(devices=[runtime.device] if runtime.device.type == "cuda" else []):
        torch.manual_seed(seed)
        stream = BatchStream(data.x, data.y, cfg.batch_size, seed, runtime)
        steps = stream.steps_for(cfg.epochs)
        per_epoch = stream.steps_for(1.0)
        optimizer, schedule = _timm_optimizer(model, cfg, steps, per_epoch)
        done, epochs_log = 0, []
        if resume is not None and resume.is_file():
            state = torch.load(resume, map_location="cpu", weights_only=True)
            if state.get("key") != resume_key:
                raise InvalidRequestError(f"{resume} holds the state of another training run (key "
                                          f"{state.get('key')!r}, this one {resume_key!r}); move it away")
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            _restore_rng(stream, state, runtime.device)
            done, epochs_log = int(state["step"]), list(state["epochs"])
            log.info("resuming from %s at step %d of %d (epoch %d)", resume, done, steps, len(epochs_log))

        def loss_fn(_step: int) -> torch.Tensor:
            x, y = next(stream)
            if recorder is not None:
                recorder.step(y)
            if cfg.channels_last:
                x = x.contiguous(memory_format=memory_format)
            return F.cross_entropy(model(augment(x)), y, label_smoothing=cfg.label_smoothing)

        total_epochs = math.ceil(steps / per_epoch)
        while done < steps:
            chunk = min(per_epoch, steps - done)
            offset = done
            wall, cpu = time.perf_counter(), time.process_time()
            stats = train_phase(model, phase, chunk, loss_fn, name=f"train epoch {len(epochs_log) + 1}/{total_epochs}",
                                progress=progress, optimizer=optimizer, runtime=runtime,
                                schedule=lambda step_done, offset=offset: schedule(offset + step_done))
            done += chunk
            epochs_log.append({"epoch": len(epochs_log) + 1, "last_loss": round(stats.last_loss, 4),
                               "seconds": round(time.perf_counter() - wall, 1),
                               "cpu_seconds": round(time.process_time() - cpu, 1),
                               "device": _device_name(runtime.device)})
            log.info("epoch %d/%d: last loss %.4f, %.0f s", len(epochs_log), total_epochs, stats.last_loss,
                     epochs_log[-1]["seconds"])
            if resume is not None and done < steps:
                with atomic_path(resume) as tmp:
                    torch.save({"key": resume_key, "step": done, "model": model.state_dict(),
                                "optimizer": optimizer.state_dict(), "epochs": epochs_log,
                                **_rng_snapshot(stream, runtime.device)},
                               tmp)
    model.to("cpu")  # the caller gets the model on the CPU, in the usual layout
    if cfg.channels_last:
        model.to(memory_format=torch.contiguous_format)
    if resume is not None and resume.is_file():
        resume.unlink()
    model.training_epochs = epochs_log
    return model.eval()


@dataclass(frozen=True)
class TrainedCheckpoint:
    """A checkpoint built by :func:`train_checkpoint`: the safetensors file and its card."""

    path: Path
    card: dict


def _hash_dataset(digest, data: ImageTensorDataset) -> None:
    """Feed a dataset's pixels and labels into a cache key."""
    digest.update(data.x.numpy().tobytes())
    digest.update(data.y.numpy().tobytes())


def _data_digest(data: DataSplits) -> str:
    digest = hashlib.sha256()
    for split in (data.train, data.test):
        if split is not None:
            _hash_dataset(digest, split)
    return digest.hexdigest()


def train_checkpoint(spec: TrainSpec, data: DataSplits, *, seed: int = 0, progress: bool = True,
                     cache: Path | None = None, record_updates: bool = False,
                     state_dir: Path | None = None, device: str | torch.device = "cpu") -> TrainedCheckpoint:
    """Train ``spec`` on ``data.train`` and save a zoo-style checkpoint, or return the cached one.

    The cache key is the content hash of the spec (architecture, constructor arguments, input
    size, training settings), the seed, the library versions that change numerics and the data,
    so benchmarks never retrain a model they already have. The file is safetensors with the
    model's ``pretrained_cfg`` (architecture, constructor arguments, num_classes, input size,
    mean/std) in its metadata, so ``load_model(checkpoint=path)`` rebuilds it; a JSON card beside
    it records the test accuracy and the training time.

    ``record_updates``: also write the training log amnesiac unlearning reads (every step's update
    and its batch's classes, :mod:`zeroshot_unlearn.training_log`) beside the checkpoint as
    ``NAME.updates/``, its size in the card. Recording does not change the weights; a cached
    checkpoint without a log is trained again to record one.

    Training can be interrupted: after every epoch its state is saved as ``NAME-KEY.resume.pt`` in
    ``state_dir`` (default: the cache folder), and the next call with the same spec, seed and data
    continues from it (see :func:`train_classifier`). The card's ``epochs`` lists every epoch and
    the device it ran on (``device``: see :func:`train_classifier`).
    """
    import timm

    from ..evaluation import accuracy
    from ..io import jsonable, sha256_file, write_json
    from ..zoo.loading import METADATA_KEY

    key = hashlib.sha256(json.dumps({"spec": spec.key(), "seed": seed, "torch": torch.__version__.split("+")[0],
                                     "timm": timm.__version__, "data": _data_digest(data)},
                                    sort_keys=True).encode()).hexdigest()[:16]
    folder = cache or cache_dir() / "trained"
    path = folder / f"{spec.name}-{key}.safetensors"
    card_path = path.with_suffix(".json")
    updates = log_folder(path)
    if path.is_file() and card_path.is_file() and (not record_updates or (updates / "index.json").is_file()):
        log.info("using the cached checkpoint %s", path)
        return TrainedCheckpoint(path, json.loads(card_path.read_text()))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = spec.build()
    log.info("training %s on %d images for %s epochs (cached afterwards as %s)", spec.name, len(data.train),
             spec.train.epochs, path.name)
    recorder = UpdateRecorder(model, updates) if record_updates else None
    resume = None if record_updates else Path(state_dir or folder) / f"{path.stem}{RESUME_SUFFIX}"
    with recorder or contextlib.nullcontext():
        train_classifier(model, data.train, spec.train, seed=seed, progress=progress, recorder=recorder,
                         resume=resume, resume_key=key, device=device)
    epochs = model.training_epochs
    seconds = sum(e["seconds"] for e in epochs)  # over every process that trained it, when resumed
    test_accuracy = None if data.test is None else round(accuracy(model, data.test), 2)
    folder.mkdir(parents=True, exist_ok=True)
    metadata = {METADATA_KEY: json.dumps({"pretrained_cfg": jsonable(model.pretrained_cfg)})}
    save_state_dict(path, model.state_dict(), metadata)
    card = {"name": spec.name, "architecture": spec.architecture, "model_kwargs": dict(spec.model_kwargs),
            "input_size": list(spec.input_size), "data": data.name, "train_images": len(data.train),
            "test_images": 0 if data.test is None else len(data.test), "train": asdict(spec.train), "seed": seed,
            "test_accuracy": test_accuracy, "train_seconds": round(seconds, 1),
            "train_cpu_seconds": round(sum(e["cpu_seconds"] for e in epochs), 1), "epochs": epochs, "cache_key": key,
            "sha256": sha256_file(path), "versions": {"torch": torch.__version__, "timm": timm.__version__}}
    if recorder is not None:
        index = recorder.index
        card["training_log"] = {"folder": updates.name, "steps": index["steps"], "bytes": index["bytes"],
                                "mb_per_epoch": round(index["bytes"] / 1e6 / spec.train.epochs, 1),
                                "final_sha256": index["final_sha256"]}
    write_json(card_path, card)
    return TrainedCheckpoint(path, card)


def _retrain_key(name: str, data: ImageTensorDataset, forget: Sequence[int], cfg: TrainConfig, seed: int) -> str:
    key = hashlib.sha256()
    key.update(json.dumps({"name": name, "forget": sorted(forget), "cfg": cfg.key(), "seed": seed}).encode())
    _hash_dataset(key, data)
    return key.hexdigest()[:16]


def _shipped_retrain(name: str, key: str) -> tuple[Path, dict] | None:
    """A retrain reference shipped in ``checkpoints/`` whose card records exactly this cache key."""
    from .._resources import checkpoints_dir

    for card_path in sorted(checkpoints_dir().glob(f"{name}-retrain-*.json")):
        card = json.loads(card_path.read_text(encoding="utf-8"))
        weights = card_path.with_suffix(".safetensors")
        if card.get("cache_key") == key and weights.is_file():
            return weights, card
    return None


def retrain_reference_source(name: str, data: ImageTensorDataset, forget: Sequence[int],
                             cfg: TrainConfig = TrainConfig(), *, seed: int = 0) -> str | None:
    """Where :func:`retrain_reference` would take this reference from: ``"shipped"``, ``"cached"`` or None
    (it would train one)."""
    key = _retrain_key(name, data, forget, cfg, seed)
    if _shipped_retrain(name, key) is not None:
        return "shipped"
    return "cached" if (cache_dir() / "retrain" / f"{name}-{key}.safetensors").is_file() else None


def retrain_reference(name: str, data: ImageTensorDataset, forget: Sequence[int], cfg: TrainConfig = TrainConfig(), *,
                      seed: int = 0, progress: bool = True, state_dir: Path | None = None,
                      device: str | torch.device = "cpu") -> tuple[nn.Module, float]:
    """A model of architecture ``name`` trained from scratch without ``forget``; shipped, cached or trained.

    A reference shipped in ``checkpoints/`` (``<name>-retrain-*.safetensors`` with a card holding
    the same cache key: same data, classes, settings and seed) is used as it is; otherwise the one
    cached by content hash, otherwise one is trained and cached. Returns the model and the seconds
    its training took (recorded with the file, so a shipped or cached reference still reports
    what retraining costs). An interrupted training continues from its last epoch (the state is
    kept in ``state_dir``, default the cache folder; see :func:`train_classifier`).
    """
    return _retrain(name, data, forget, cfg, _retrain_key(name, data, forget, cfg, seed), seed=seed, progress=progress,
                    state_dir=state_dir, device=device)


def _retrain(name: str, data: ImageTensorDataset, forget: Sequence[int], cfg: TrainConfig, key: str, *, seed: int,
             progress: bool, state_dir: Path | None, device: str | torch.device) -> tuple[nn.Module, float]:
    """:func:`retrain_reference` for a cache key already computed (hashing the training set takes a while)."""
    from safetensors import safe_open

    from ..zoo import build_model, load_model
    from ..zoo.registry import model_entry

    shipped = _shipped_retrain(name, key)
    if shipped is not None:
        weights, card = shipped
        return load_model(name, weights, sha256=card["sha256"]), float(card["train_seconds"])
    path = cache_dir() / "retrain" / f"{name}-{key}.safetensors"
    if path.is_file():
        with safe_open(str(path), "pt") as handle:
            seconds = float((handle.metadata() or {}).get("train_seconds", "nan"))
        return load_model(name, path), seconds
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # A timm family this project trains (resnet10t, ...) is built as its suite builds it (CIFAR
        # input size, 10 classes); a zoo model by its zoo entry.
        model = build_model(name) if model_entry(name) is not None or name not in list_train_specs() \
            else get_train_spec(name).build()
    resume = Path(state_dir or path.parent) / f"{path.stem}{RESUME_SUFFIX}"
    train_classifier(model, data, cfg, seed=seed, exclude=forget, progress=progress, resume=resume, resume_key=key,
                     device=device)
    seconds = sum(e["seconds"] for e in model.training_epochs)
    cpu_seconds = sum(e["cpu_seconds"] for e in model.training_epochs)
    from ..io import jsonable
    from ..zoo.loading import METADATA_KEY

    save_state_dict(path, model.state_dict(), {"train_seconds": f"{seconds:.3f}", "train_cpu_seconds": f"{cpu_seconds:.3f}",
                                               "epochs": json.dumps(model.training_epochs),
                                               METADATA_KEY: json.dumps({"pretrained_cfg": jsonable(model.pretrained_cfg)})})
    return model, seconds


def retrain_checkpoint(spec: TrainSpec, data: DataSplits, forget: Sequence[int], *, seed: int = 0,
                       progress: bool = True, state_dir: Path | None = None,
                       device: str | torch.device = "cpu") -> TrainedCheckpoint:
    """The retrain reference of ``spec`` without ``forget`` (:func:`retrain_reference`) as a file and a card.

    The card records what :func:`retrain_reference` matches a shipped reference by (``cache_key``),
    the accuracy on the test split's retained and forget classes, and every epoch's time and device.
    Copied into ``checkpoints/`` as ``<name>-retrain-*.safetensors`` beside its ``.json`` card, the
    reference is used by every later request with the same data, classes, settings and seed.
    """
    import timm
    from safetensors import safe_open

    from ..evaluation import forget_retain_accuracy
    from ..io import sha256_file, write_json

    forget = sorted(int(c) for c in forget)
    key = _retrain_key(spec.name, data.train, forget, spec.train, seed)
    model, seconds = _retrain(spec.name, data.train, forget, spec.train, key, seed=seed, progress=progress,
                              state_dir=state_dir, device=device)
    shipped = _shipped_retrain(spec.name, key)
    path = shipped[0] if shipped is not None else cache_dir() / "retrain" / f"{spec.name}-{key}.safetensors"
    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata() or {}
    df = dr = None
    if data.test is not None:
        df, dr = (round(v, 2) for v in forget_retain_accuracy(model, data.test, forget))
    card = {"model": spec.name, "architecture": spec.architecture,
            "purpose": f"retrain reference for request {forget}: trained from scratch without those classes",
            "data": data.name, "train_images": int((~torch.isin(data.train.y, torch.as_tensor(forget))).sum()),
            "excluded_classes": forget, "train": asdict(spec.train), "seed": seed, "cache_key": key,
            "test_accuracy_retained": dr, "test_accuracy_forget": df, "train_seconds": round(seconds, 1),
            "train_cpu_seconds": round(float(metadata.get("train_cpu_seconds", "nan")), 1),
            "epochs": json.loads(metadata.get("epochs", "[]")), "sha256": sha256_file(path),
            "versions": {"torch": torch.__version__, "timm": timm.__version__}}
    card_path = path.with_suffix(".json")
    if shipped is None:
        write_json(card_path, card)
    return TrainedCheckpoint(path, card)
