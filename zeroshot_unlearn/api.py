"""``forget_classes``: the one entry point, and the :class:`ForgetResult` it returns."""

from __future__ import annotations

import copy
import datetime
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from . import seeds
from ._version import __version__
from .data.datasets import ImageTensorDataset, in_memory, is_streamed, materialise
from .errors import (DataError, ForgettingFailedError, ForgettingWarning, InvalidRequestError,  # noqa: F401
                     RecipeError, UncheckableModelError)
from .generators import AntiMemoryGenerator, create_generator
from .io import atomic_dir, jsonable, save_state_dict, sha256_state_dict, write_text
from .methods import ForgetContext, Method, get_method
from .recipes import Recipe, list_recipes, load_recipe, resolve_recipe
from .runtime import Runtime, current_world, make_runtime
from .selfcheck import SelfCheck, check_baseline, check_forgetting, uncheckable_message
from .settings import recording_reads
from .surgery import model_num_classes
from .training_log import TrainingLog
from .validate import (first_images, item_shape, retained_coverage, validate_check_data, validate_classes, validate_forget_data,
                       validate_model, validate_retain)
from .zoo.loading import METADATA_KEY, forget_of

log = logging.getLogger(__name__)


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

    def metrics_row(self, original: nn.Module | None = None, evaluation: Dataset | None = None) -> dict[str, Any]:
        """The run as one results row (``forget``'s ``metrics.json``): the request, its time per phase, peak
        memory and self-check and whether it forgot; with ``evaluation`` (a split holding images of the forget
        and retained classes) Df and Dr on it, beside ``original``'s."""
        from .evaluation import forget_retain_accuracy, original_columns
        from .runtime import peak_memory

        entry = self.history[-1] if self.history else {}
        check = self.self_check
        failures = [] if check is None or check.passed is not False else [f"self-check: {check.describe()}"]
        if check is not None and check.passed is None:
            failures.append(f"self-check inconclusive: {check.describe()}")
        device = entry.get("device", "cpu")
        peak = peak_memory(device)
        row: dict[str, Any] = {
            "method": self.method, "forget": self.forget, "requested": self.requested, "depth": self.recipe.depth,
            "time_s": round(self.timings.get("total", 0.0), 2), "peak_memory_gib": round(peak["gib"], 3),
            "peak_memory": peak["what"], "world_size": entry.get("world_size", 1), "device": device,
            "gradient_sync": entry.get("gradient_sync"), "retained_images": self.retained_images,
            "forget_images_used": self.forget_images_used, "data_free": self.retained_images == 0,
            "timings": {k: round(v, 2) for k, v in self.timings.items()},
            "self_check": check.as_dict() if check is not None else None}
        if evaluation is not None:
            df, dr = forget_retain_accuracy(self.model, evaluation, self.forget)
            row.update(df=round(df, 2), dr=round(dr, 2))
            if original is not None:
                row.update({key: round(value, 2) for key, value in
                            original_columns(original, evaluation, self.forget).items()})
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


def model_architecture(model: nn.Module) -> str:
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    return str(cfg.get("architecture") or type(model).__name__.lower())


@dataclass(frozen=True)
class ForgetPlan:
    """A validated request: what :func:`forget_classes` will run, resolved before any work."""

    forget: list[int]
    """Every class the result must not know: the requested ones and those forgotten earlier."""
    requested: list[int]
    method: Method
    recipe: Recipe
    retain: ImageTensorDataset | None
    forget_data: ImageTensorDataset | None
    num_classes: int
    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    pretrained_cfg: dict[str, Any]
    runtime: Runtime
    generator: nn.Module | None = None
    """A pre-fitted amortised generator to use instead of fitting one."""
    training_log: TrainingLog | None = None
    """The model's training log, for the methods that undo training steps (checked against the model)."""
    check_data: ImageTensorDataset | None = None
    """The evaluation split the self-check measures Df on after the run (never shown to the method)."""


def forgotten_classes(model: nn.Module) -> list[int]:
    """Classes the model forgot in earlier ``forget_classes`` calls (from ``model.unlearning_history``)."""
    return sorted({int(c) for entry in getattr(model, "unlearning_history", None) or []
                   for c in forget_of(entry)})


@dataclass(frozen=True)
class CheckedRequest:
    """A request checked without its data (:func:`check_request`): classes, recipe and method, resolved."""

    num_classes: int
    requested: list[int]
    """The classes this request asks for."""
    forget: list[int]
    """Every class the result must not know: the requested ones and those the model forgot earlier (they stay
    out of the retained data too)."""
    earlier: list[int]
    recipe: Recipe
    method: Method
    imposed: dict
    """The recipe keys the method's own variant sets (data-free mode, ablations), before the caller's overrides."""


def _resolve_request(model: nn.Module, classes: Sequence[int | str], *, data_free: bool,
                     recipe: str | os.PathLike | Recipe | Mapping[str, Any], method: str | None,
                     overrides: Mapping[str, Any] | None, seed: int, forget_data_given: bool,
                     training_log_given: bool = False) -> CheckedRequest:
    validate_model(model)
    num_classes = model_num_classes(model)
    requested = validate_classes(class_ids(model, classes), num_classes)
    earlier = forgotten_classes(model)
    # A model that already forgot classes keeps them forgotten: the new run masks them in the
    # teacher and synthesises them again, so a retained-only repair cannot bring them back.
    forget = validate_classes(sorted(set(requested) | set(earlier)), num_classes) if earlier else requested
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidRequestError(f"seed must be an integer, got {seed!r}")
    resolved = resolve_recipe(recipe, model_architecture(model), overrides)
    if resolved.depth == "representation":
        if not resolved.representation:
            families = [n for n in list_recipes() if load_recipe(n).representation]
            raise RecipeError(f"recipe {resolved.name!r} has no measured depth='representation' setting (its "
                              f"'representation' section is empty); recipes that have one: "
                              f"{', '.join(families) or 'none'}. Give the overrides yourself or use depth='output'")
        resolved = resolved.replace(resolved.representation).replace(overrides)
    algorithm = get_method(method or resolved.method)
    if data_free and getattr(algorithm, "data_free_variant", None):
        log.info("retain=None: %s runs in its data-free mode (%s)", algorithm.name, algorithm.data_free_variant)
        algorithm = get_method(algorithm.data_free_variant)
    imposed = algorithm.overrides_for(resolved)
    if imposed:  # a named variant: its settings first, the caller's overrides still win
        resolved = resolved.replace(imposed).replace(overrides)
    algorithm.check(model, resolved, data_free=data_free, forget_data_given=forget_data_given,
                    training_log_given=training_log_given)
    return CheckedRequest(num_classes, requested, forget, earlier, resolved, algorithm, imposed)


def class_ids(model: nn.Module, classes: Sequence[int | str]) -> Sequence[int | str]:
    """``classes`` with every class name replaced by its id (:func:`~zeroshot_unlearn.data.names.class_ids_by_name`:
    a label name such as a wnid, a description or one of its synonyms, e.g. ``"tench"`` on an ImageNet head).

    Ids pass through unchanged (``validate_classes`` checks them); a name the model does not
    know is an :class:`InvalidRequestError` listing the names it does know.
    """
    if isinstance(classes, (str, bytes)) or not isinstance(classes, (Sequence, set, frozenset, torch.Tensor)):
        return classes  # validate_classes explains the expected form
    values = classes.tolist() if isinstance(classes, torch.Tensor) else list(classes)
    names = [v for v in values if isinstance(v, str)]
    if not names:
        return values
    from .data.names import class_ids_by_name

    found = iter(class_ids_by_name(model, names))
    return [next(found) if isinstance(v, str) else v for v in values]


def check_request(model: nn.Module, classes: Sequence[int | str], *,
                  recipe: str | os.PathLike | Recipe | Mapping[str, Any] = "auto", method: str | None = None,
                  overrides: Mapping[str, Any] | None = None, seed: int = 0, data_free: bool = False,
                  forget_data_given: bool = False,
                  generator: str | os.PathLike | nn.Module | None = None,
                  training_log: str | os.PathLike | None = None) -> CheckedRequest:
    """The checks of :func:`validate_request` that need no data; returns the request resolved (the requested
    class ids, every class to forget, the recipe and the method).

    The command line runs these before it reads any data or draws a retained subset, so a bad
    request is refused before any work; :func:`validate_request` repeats them with the data.
    """
    request = _resolve_request(model, classes, data_free=data_free, recipe=recipe, method=method,
                               overrides=overrides, seed=seed, forget_data_given=forget_data_given,
                               training_log_given=training_log is not None)
    if training_log is not None:
        TrainingLog(training_log).check_matches(model)
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    if generator is not None and cfg.get("input_size"):
        _check_generator(generator, model, request.method, request.recipe, request.num_classes,
                         tuple(cfg["input_size"]))
    return request


def validate_request(model: nn.Module, classes: Sequence[int | str], *, retain: Dataset | None,
                     recipe: str | os.PathLike | Recipe | Mapping[str, Any] = "auto", method: str | None = None,
                     overrides: Mapping[str, Any] | None = None, seed: int = 0,
                     forget_data: Dataset | None = None, device: str | torch.device = "auto",
                     generator: str | os.PathLike | nn.Module | None = None,
                     training_log: str | os.PathLike | None = None, check_data: Dataset | None = None) -> ForgetPlan:
    """Every check :func:`forget_classes` makes before it touches anything; returns the resolved plan.

    Raises an :class:`~zeroshot_unlearn.errors.UnlearnError` subclass naming what is wrong and how
    to fix it. Reads ``model`` and ``retain``; never modifies them.
    """
    request = _resolve_request(model, classes, data_free=retain is None, recipe=recipe, method=method,
                               overrides=overrides, seed=seed, forget_data_given=forget_data is not None,
                               training_log_given=training_log is not None)
    updates = None
    if training_log is not None:
        updates = TrainingLog(training_log)
        updates.check_matches(model)
    num_classes, requested, forget, earlier = request.num_classes, request.requested, request.forget, request.earlier
    resolved, algorithm, imposed = request.recipe, request.method, request.imposed
    retain_data = materialise(retain) if retain is not None else None
    if retain_data is not None and algorithm.holds_images and is_streamed(retain_data):
        log.info("method %s holds its data in memory: loading the %d retained images", algorithm.name, len(retain_data))
        retain_data = in_memory(retain_data)
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    input_size = tuple(cfg.get("input_size") or (item_shape(retain_data) if retain_data is not None else ()))
    if len(input_size) != 3:
        raise InvalidRequestError("the model's input size is unknown: set model.pretrained_cfg['input_size'] = "
                                  "(C, H, W)")
    if retain_data is not None:
        if earlier:
            leaked = sorted(set(retain_data.y.unique().tolist()) & set(earlier) - set(requested))
            if leaked:
                raise DataError(f"the retained data contains class(es) {leaked}, which this model forgot in an "
                                "earlier request (see model.unlearning_history); leave them out")
        validate_retain(retain_data, forget, num_classes, input_size, resolved.min_per_class)
        shown, total = retained_coverage(retain_data.y, forget, num_classes)
        if shown < total:
            log.info("the retained data shows %d of the %d retained classes; the masked teacher keeps the other %d",
                     shown, total, total - shown)
    forget_set = None
    if forget_data is not None:
        forget_set = materialise(forget_data)
        validate_forget_data(forget_set, forget, input_size)
    check_set = None
    if check_data is not None:
        if not resolved.self_check.enabled:
            raise InvalidRequestError("check_data is read by the self-check, which the recipe turns off "
                                      "(self_check.enabled: false); drop one of the two")
        check_set = materialise(check_data)
        validate_check_data(check_set, forget, num_classes, input_size)
    channels = input_size[0]
    mean = tuple(cfg.get("mean") or (0.0,) * channels)
    std = tuple(cfg.get("std") or (1.0,) * channels)
    amortised = _check_generator(generator, model, algorithm, resolved, num_classes, input_size)
    if amortised is not None and resolved.amortised and not imposed and resolved.depth == "output":
        # A variant with settings of its own (data-free, ablations) keeps them.
        log.info("pre-fitted generator: the recipe's amortised schedule applies (%s)", resolved.amortised)
        resolved = resolved.replace(resolved.amortised).replace(overrides)
    if resolved.method != algorithm.name:  # the recipe says which method ran (a saved one reruns it)
        resolved = resolved.replace({"method": algorithm.name})
    runtime = make_runtime(device, resolved.precision, resolved.channels_last)
    if runtime.distributed:
        if not algorithm.supports_distributed:
            raise InvalidRequestError(f"method {algorithm.name!r} does not run data-parallel (torchrun); run it in "
                                      "one process")
        _check_same_request_on_every_rank(runtime, forget, seed, retain_data, algorithm.name)
    return ForgetPlan(forget, requested, algorithm, resolved, retain_data, forget_set, num_classes, input_size, mean,
                      std, cfg, runtime, amortised, updates, check_set)


def _check_generator(generator, model: nn.Module, algorithm: Method, recipe: Recipe, num_classes: int,
                     input_size: tuple) -> nn.Module | None:
    """A pre-fitted generator: loaded (a folder is checked against the model) and checked for fit."""
    if generator is None:
        return None
    if not algorithm.uses_generator or recipe.impair.anti_memory_batch == 0:
        raise InvalidRequestError(f"method {algorithm.name!r} does not synthesise with a generator; drop generator=")
    if isinstance(generator, (str, os.PathLike)):
        from .generators.amortised import load_amortised

        generator = load_amortised(generator, model)
    if not isinstance(generator, AntiMemoryGenerator):
        raise InvalidRequestError(f"generator must be a folder written by `zeroshot-unlearn generator fit` or an "
                                  f"AntiMemoryGenerator, got {type(generator).__name__}")
    if generator.num_classes != num_classes or tuple(generator.input_size) != tuple(input_size):
        raise InvalidRequestError(f"the generator makes {generator.num_classes} classes of {tuple(generator.input_size)} "
                                  f"images; this model has {num_classes} classes of {tuple(input_size)}")
    return generator


def _check_same_request_on_every_rank(runtime: Runtime, classes: list[int], seed: int,
                                      retain: ImageTensorDataset | None, method: str) -> None:
    """Under torchrun every rank must be asked the same thing, or the collectives would pair up wrong steps."""
    import zlib

    fingerprint = [float(zlib.crc32(json.dumps([classes, seed, method]).encode())),
                   float(len(retain) if retain is not None else -1),
                   float(first_images(retain, 64).double().sum()) if retain is not None else 0.0]
    if not runtime.same_on_every_rank(torch.tensor(fingerprint, dtype=torch.float64, device=runtime.device)):
        raise InvalidRequestError(f"rank {runtime.rank}: the ranks of this torchrun job were given different requests "
                                  "(classes, seed, method or retained data); give every rank the same arguments")


def forget_classes(model: nn.Module, classes: Sequence[int | str], *, retain: Dataset | None,
                   recipe: str | os.PathLike | Recipe | Mapping[str, Any] = "auto", method: str | None = None,
                   overrides: Mapping[str, Any] | None = None, seed: int = 0, inplace: bool = False,
                   progress: bool = True, forget_data: Dataset | None = None,
                   device: str | torch.device = "auto",
                   generator: str | os.PathLike | nn.Module | None = None, strict: bool = True,
                   training_log: str | os.PathLike | None = None, depth: str | None = None,
                   check_data: Dataset | None = None) -> ForgetResult:
    """Make ``model`` forget ``classes`` without any image of them.

    Args:
        model: a classifier (timm model, zoo model, or any ``nn.Module`` with a linear head), float32 on CPU.
        classes: class ids to forget, or class names where the model carries them
            (``pretrained_cfg["label_names"]``, e.g. ``["cat", "horse"]`` for the CIFAR-10 zoo models).
        retain: a small set of retained-class samples (images normalised for the model, labels); it must
            not contain any forget-class sample.
        recipe: ``"auto"`` (by architecture), a registered recipe name, a YAML path, a dict or a ``Recipe``.
        method: a registered method name (default: the recipe's ``method``).
        overrides: recipe values to change, nested or dotted (``{"impair.lr": 0.02}``).
        seed: makes the run reproducible on CPU; the caller's global RNG state is left as it was.
        inplace: write the result into ``model`` as well (otherwise ``model`` is untouched). On any
            failure ``model`` is left exactly as it was, also with ``inplace=True``.
        progress: show tqdm progress bars.
        forget_data: forget-class images, accepted only by the comparison baselines that need them
            (``list_methods()`` shows each method's needs); the project's methods refuse it. The count
            used is recorded in the result and its history.
        device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``/``"cuda:N"`` or a
            ``torch.device``. The result lives there; ``model`` stays where it is. Under ``torchrun``
            (an initialised process group) the run is data-parallel: see :mod:`zeroshot_unlearn.runtime`.
        generator: a pre-fitted amortised generator (a ``generators/<model-id>/`` folder or the module)
            to use instead of fitting one; refused if fitted for another model.
        strict: before returning, the run checks its own forgetting without forget-class images
            (:mod:`zeroshot_unlearn.selfcheck`, recipe section ``self_check``). When the check says the
            classes were not forgotten, a :class:`ForgettingFailedError` is raised (its ``result``
            holds the model); with ``strict=False`` the result is returned with a loud warning and
            ``result.self_check.passed`` False. A model the check cannot judge (the original does not
            recognise its own class impressions: random or untrained weights) is refused before any
            work with an :class:`UncheckableModelError`; with ``strict=False`` the run goes on and
            ``passed`` is None (inconclusive), with a warning. Either way the figure and its meaning are
            in the result and its history.
        check_data: an evaluation split with labels (e.g. the test split, all classes): after the run the
            self-check also measures Df on it and fails the run above ``self_check.max_test_df``, the
            verdict the command line gives with its test split. Read only after the run, never by the
            method.
        depth: ``"output"`` (the recipe's default: gone from the outputs at the retained-accuracy ceiling,
            fast; the features still separate the classes) or ``"representation"`` (the recipe family's
            measured ``representation`` setting: the features forget too, at a price in time and retained
            accuracy stated in the README). Same as ``overrides={"depth": ...}``.
        training_log: the model's training log (``zeroshot-unlearn train --record-updates``), accepted only by
            ``method="amnesiac"``; refused unless it was recorded for exactly this model.

    Every check runs first (:func:`validate_request`); bad input raises before any work.
    """
    if depth is not None:
        overrides = {**(overrides or {}), "depth": depth}
    # Which recipe settings the request and the run read: the saved recipe holds exactly those.
    with recording_reads() as keys_read:
        plan = validate_request(model, classes, retain=retain, recipe=recipe, method=method, overrides=overrides,
                                seed=seed, forget_data=forget_data, device=device, generator=generator,
                                training_log=training_log, check_data=check_data)
        result = _run(model, plan, seed=seed, progress=progress, inplace=inplace, strict=strict,
                      keys_read=keys_read)
    return result


def _pre_run_check(model: nn.Module, original: nn.Module, plan: ForgetPlan, *, seed: int, strict: bool):
    """The self-check's view of the original, taken before any work: a model it cannot judge is refused
    under ``strict`` (otherwise the run goes on with an inconclusive check). None when the check is off."""
    cfg = plan.recipe.self_check
    if not cfg.enabled:
        return None
    earlier = set(forgotten_classes(model))
    baseline = check_baseline(original, plan.forget, cfg, plan.input_size, plan.mean, plan.std,
                              seed=seed + seeds.SELF_CHECK, known=[c for c in plan.forget if c not in earlier])
    if not baseline.conclusive:
        message = uncheckable_message(baseline, cfg, plan.pretrained_cfg.get("weights"))
        if strict:
            raise UncheckableModelError(message + "; strict=False runs anyway, with an inconclusive check")
        log.warning("%s; strict=False: running anyway, the check will be inconclusive", message)
    return baseline


def _history_entry(plan: ForgetPlan, ctx: ForgetContext, checked: SelfCheck | None, *, seed: int,
                   input_sha256: str, output_sha256: str) -> dict[str, Any]:
    """What the model's history records of this request."""
    runtime, algorithm, resolved = plan.runtime, plan.method, plan.recipe
    return {
        "forget": plan.forget, "requested": plan.requested, "method": algorithm.name, "recipe": resolved.name,
        "depth": resolved.depth,
        "seed": seed, "device": str(runtime.device), "world_size": runtime.world_size,
        "gradient_sync": dict(ctx.gradient_sync) if runtime.distributed else None,
        "generator": (f"amortised {getattr(plan.generator, 'card', {}).get('model_id', '(in memory)')}"
                      if plan.generator is not None else ("fitted" if ctx.generator is not None else None)),
        "retained_images": len(plan.retain) if plan.retain is not None and "retain" in algorithm.needs else 0,
        "retained_classes_shown": (retained_coverage(plan.retain.y, plan.forget, plan.num_classes)[0]
                                   if plan.retain is not None and "retain" in algorithm.needs else 0),
        "retained_classes": plan.num_classes - len(plan.forget),
        "forget_images_used": len(plan.forget_data) if plan.forget_data is not None else 0,
        "training_log": str(plan.training_log.folder) if plan.training_log is not None else None,
        "check_images": len(plan.check_data) if plan.check_data is not None else 0,
        "method_details": dict(ctx.details) or None,
        "self_check": checked.as_dict() if checked is not None else None,
        "input_sha256": input_sha256, "output_sha256": output_sha256,
        "version": __version__, "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _run(model: nn.Module, plan: ForgetPlan, *, seed: int, progress: bool, inplace: bool, strict: bool,
         keys_read: set[str]) -> ForgetResult:
    runtime = plan.runtime
    forget, algorithm, resolved, retain_data, cfg = (plan.forget, plan.method, plan.recipe, plan.retain,
                                                     plan.pretrained_cfg)
    num_classes, input_size, mean, std = plan.num_classes, plan.input_size, plan.mean, plan.std

    start = time.perf_counter()
    original_hash = sha256_state_dict(model.state_dict())
    cuda = [runtime.device] if runtime.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        # Each rank draws its own augmentations and anti-memories (rank 0 = the one-process run).
        torch.manual_seed(seed + seeds.RANK_STRIDE * runtime.rank)
        memory_format = torch.channels_last if runtime.channels_last else torch.preserve_format
        original = copy.deepcopy(model).to(runtime.device, memory_format=memory_format).eval()
        for p in original.parameters():
            p.requires_grad_(False)
        baseline = _pre_run_check(model, original, plan, seed=seed, strict=strict)
        student = copy.deepcopy(model).to(runtime.device, memory_format=memory_format)
        synced = runtime.distributed and runtime.device.type == "cuda"
        if synced:  # BatchNorm statistics over the global batch (SyncBatchNorm is GPU-only in PyTorch)
            student = nn.SyncBatchNorm.convert_sync_batchnorm(student)
        ctx = ForgetContext(original=original, student=student, forget=forget, retain=retain_data,
                            forget_data=plan.forget_data, training_log=plan.training_log, recipe=resolved,
                            seed=seed, num_classes=num_classes, input_size=input_size, mean=mean, std=std,
                            progress=progress and runtime.is_main, runtime=runtime,
                            generator=copy.deepcopy(plan.generator).to(runtime.device) if plan.generator else None)
        algorithm.run(ctx)
    if synced:  # back to the caller's layer types, same weights
        plain = copy.deepcopy(model).to(runtime.device)
        plain.load_state_dict(ctx.student.state_dict())
        ctx.student = plain
    student = ctx.student.eval()
    runtime.check_in_sync(student)
    checked = None
    if baseline is not None:
        checked = check_forgetting(baseline, student, forget, resolved.self_check, input_size, mean, std,
                                   seed=seed + seeds.SELF_CHECK, check_data=plan.check_data)
        ctx.timings["self_check"] = checked.seconds
    timings = dict(ctx.timings)
    timings["total"] = time.perf_counter() - start
    entry = _history_entry(plan, ctx, checked, seed=seed, input_sha256=original_hash,
                           output_sha256=sha256_state_dict(student.state_dict()))
    history = list(getattr(model, "unlearning_history", [])) + [entry]
    student.pretrained_cfg = cfg
    student.unlearning_history = history

    def result_with(returned: nn.Module) -> ForgetResult:
        return ForgetResult(model=returned, generator=ctx.generator, recipe=resolved, method=algorithm.name,
                            forget=forget, requested=plan.requested, timings=timings, retained_images=entry["retained_images"],
                            forget_images_used=entry["forget_images_used"], history=history, self_check=checked,
                            recipe_keys_read=frozenset(keys_read))

    if checked is not None and checked.passed is None:
        message = f"self-check of classes {forget}: {checked.describe()}; nothing says these classes were forgotten"
        warnings.warn(message, ForgettingWarning, stacklevel=3)
        log.warning("%s", message)
    if checked is not None and checked.passed is False:
        message = _not_forgotten_message(checked, forget, entry["retained_images"], entry["retained_classes_shown"])
        if strict:  # before inplace touches the caller's model: a failed run leaves it as it was
            raise ForgettingFailedError(message, result_with(student))
        warnings.warn(message, ForgettingWarning, stacklevel=3)  # the caller of forget_classes
        log.warning("NOT FORGOTTEN: %s", message)
    if checked is not None and checked.passed and retain_data is None and checked.test_df is None:
        # Measured: in data-free mode the figure read 0.0 on runs left at Df 1.6-6.7 (benchmarks/data-free/).
        log.warning("data-free run: the self-check passed on its figure alone, which has passed partial forgetting "
                    "in this mode; check_data (CLI --eval-data) measures Df on real images "
                    "(docs/amortised-and-data-free.md)")
    if inplace:
        model.load_state_dict(student.state_dict())
        model.unlearning_history = history
        student = model
    result = result_with(student)
    log.info("forgot classes %s with %s in %.1fs", forget, algorithm.name, timings["total"])
    return result


def _not_forgotten_message(checked: SelfCheck, forget: list[int], retained_images: int, shown: int) -> str:
    per_class = retained_images // max(1, shown) if retained_images else 0
    budget = (f" The run had {retained_images} retained images ({per_class} per class of the {shown} they show)"
              + (", few enough to be the cause: give more retained images, or" if 0 < per_class < 30 else ";")
              if retained_images else " It ran without retained data;")
    return (f"classes {forget} were not forgotten: {checked.describe()}.{budget} lengthen the schedule "
            "(overrides: impair.epochs, min_epoch_images) or use the recipe's defaults if they were overridden; "
            "pass strict=False (CLI: --no-strict) to get the model anyway")


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


