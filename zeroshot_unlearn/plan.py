"""A request, checked and resolved before any work: :func:`check_request` (no data) and :func:`plan_request`.

``plan_request`` is every check :func:`~zeroshot_unlearn.forget_classes` makes before it touches anything; it
returns one frozen :class:`ForgetPlan` (the model's :class:`~zeroshot_unlearn.spec.ModelSpec`, the classes,
the resolved recipe and method, the data and the runtime) that the run reads and the result is made from.
``check_request`` makes the checks that need no data and returns a :class:`CheckedRequest`, the part of the
plan known before any data is read (the command line runs it before it reads a dataset).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence, Union

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from .data.datasets import ImageTensorDataset, in_memory, is_streamed, materialise
from .errors import DataError, InvalidRequestError, RecipeError
from .generators import AntiMemoryGenerator
from .methods import Method, get_method
from .recipes import Recipe, choose_recipe, list_recipes, load_recipe, resolve_recipe
from .runtime import Runtime, make_runtime
from .settings import RecordedReads
from .spec import ModelSpec
from .surgery import check_linear_head
from .training_log import TrainingLog
from .validate import (first_images, item_shape, retained_coverage, validate_eval_data, validate_classes,
                       validate_forget_data, validate_model, validate_retain)
from .zoo.loading import forget_of

log = logging.getLogger(__name__)

RecipeSource = Union[str, os.PathLike, Recipe, Mapping[str, Any]]
"""What ``recipe=`` accepts: ``"auto"``, a registered name, a YAML path, a ``Recipe`` or a mapping."""


def forgotten_classes(model: nn.Module) -> list[int]:
    """Classes the model forgot in earlier ``forget_classes`` calls (from ``model.unlearning_history``)."""
    return sorted({int(c) for entry in getattr(model, "unlearning_history", None) or []
                   for c in forget_of(entry)})


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


@dataclass(frozen=True)
class CheckedRequest:
    """A request checked without its data (:func:`check_request`): the model's spec, the classes, the recipe and
    the method, resolved; the training log and a pre-fitted generator, loaded and checked against the model."""

    spec: ModelSpec
    requested: list[int]
    """The classes this request asks for."""
    forget: list[int]
    """Every class the result must not know: the requested ones and those the model forgot earlier (they stay
    out of the retained data too)."""
    earlier: list[int]
    """The classes the model forgot in earlier requests."""
    recipe: Recipe
    method: Method
    imposed: dict
    """The recipe keys the method's own variant sets (data-free mode, ablations), before the caller's overrides."""
    seed: int
    generator: AntiMemoryGenerator | None = None
    """A pre-fitted amortised generator to use instead of fitting one."""
    training_log: TrainingLog | None = None
    """The model's training log, for the methods that undo training steps (checked against the model)."""
    recipe_keys_read: frozenset[str] = frozenset()
    """The recipe settings the checks read (dotted keys); the run adds its own and ``recipe.yaml`` holds them."""
    recipe_reason: str = ""
    """Why ``recipe="auto"`` picked this recipe, in words (empty where the caller named one)."""

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes


@dataclass(frozen=True)
class ForgetPlan(CheckedRequest):
    """A validated request with its data: what :func:`~zeroshot_unlearn.forget_classes` runs, resolved before
    any work (:func:`plan_request`)."""

    retain: ImageTensorDataset | None = None
    forget_data: ImageTensorDataset | None = None
    eval_data: ImageTensorDataset | None = None
    """The evaluation split the self-check measures Df on after the run (never shown to the method)."""
    runtime: Runtime | None = None

    @property
    def retained_images(self) -> int:
        """Retained images the method reads (0 for a method that reads none, and in the data-free mode)."""
        return len(self.retain) if self.retain is not None and "retain" in self.method.needs else 0


def check_request(model: nn.Module, classes: Sequence[int | str], *, recipe: RecipeSource = "auto",
                  method: str | None = None, overrides: Mapping[str, Any] | None = None, seed: int = 0,
                  data_free: bool = False, forget_data_given: bool = False,
                  generator: str | os.PathLike | nn.Module | None = None,
                  training_log: str | os.PathLike | None = None) -> CheckedRequest:
    """Every check of :func:`plan_request` that needs no data; returns the request resolved (the model's spec,
    the requested class ids, every class to forget, the recipe and the method).

    The command line runs it before it reads any data or draws a retained subset, so a bad request is refused
    before any work; :func:`plan_request` starts with it.
    """
    validate_model(model)
    spec = ModelSpec.of(model)
    requested = validate_classes(class_ids(model, classes), spec.num_classes)
    earlier = forgotten_classes(model)
    # A model that already forgot classes keeps them forgotten: the new run masks them in the
    # teacher and synthesises them again, so a retained-only repair cannot bring them back.
    forget = validate_classes(sorted(set(requested) | set(earlier)), spec.num_classes) if earlier else requested
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidRequestError(f"seed must be an integer, got {seed!r}")
    reads: set[str] = set()
    reason = ""
    if isinstance(recipe, (str, os.PathLike)) and str(recipe) == "auto":
        choice = choose_recipe(spec.architecture, spec.input_size)
        recipe, reason = choice.name, choice.reason
        log.info("recipe %r: %s", choice.name, reason)
    resolved = RecordedReads(resolve_recipe(recipe, spec.architecture, overrides), reads)
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
                    training_log_given=training_log is not None)
    updates = None
    if training_log is not None:
        updates = TrainingLog(training_log)
        updates.check_matches(model)
    amortised = _check_generator(generator, model, algorithm, resolved, spec)
    if amortised is not None and resolved.amortised and not imposed and resolved.depth == "output":
        # A variant with settings of its own (data-free, ablations) keeps them.
        log.info("pre-fitted generator: the recipe's amortised schedule applies (%s)", resolved.amortised)
        resolved = resolved.replace(resolved.amortised).replace(overrides)
    if resolved.method != algorithm.name:  # the recipe says which method ran (a saved one reruns it)
        resolved = resolved.replace({"method": algorithm.name})
    return CheckedRequest(spec=spec, requested=requested, forget=forget, earlier=earlier, recipe=resolved.unwrap(),
                          method=algorithm, imposed=imposed, seed=seed, generator=amortised, training_log=updates,
                          recipe_keys_read=frozenset(reads), recipe_reason=reason)


def plan_request(model: nn.Module, classes: Sequence[int | str], *, retain: Dataset | None,
                 recipe: RecipeSource = "auto", method: str | None = None,
                 overrides: Mapping[str, Any] | None = None, seed: int = 0,
                 forget_data: Dataset | None = None, device: str | torch.device = "auto",
                 generator: str | os.PathLike | nn.Module | None = None,
                 training_log: str | os.PathLike | None = None, eval_data: Dataset | None = None) -> ForgetPlan:
    """Every check :func:`~zeroshot_unlearn.forget_classes` makes before it touches anything; returns the plan.

    Raises an :class:`~zeroshot_unlearn.errors.UnlearnError` subclass naming what is wrong and how
    to fix it. Reads ``model`` and ``retain``; never modifies them.
    """
    request = check_request(model, classes, recipe=recipe, method=method, overrides=overrides, seed=seed,
                            data_free=retain is None, forget_data_given=forget_data is not None,
                            generator=generator, training_log=training_log)
    retain_data = materialise(retain) if retain is not None else None
    if not request.spec.input_size and retain_data is not None and isinstance(recipe, (str, os.PathLike)) \
            and str(recipe) == "auto":
        # The model does not say its input size, so the recipe was chosen by its name alone: now that the data
        # says it, choose again by what the model is (the same checks, the recipe that fits its size).
        choice = choose_recipe(request.spec.architecture, item_shape(retain_data))
        if choice.name != request.recipe.name:
            log.info("recipe %r: %s", choice.name, choice.reason)
            request = dataclasses.replace(
                check_request(model, classes, recipe=choice.name, method=method, overrides=overrides, seed=seed,
                              data_free=False, forget_data_given=forget_data is not None, generator=generator,
                              training_log=training_log), recipe_reason=choice.reason)
    reads = set(request.recipe_keys_read)
    algorithm, resolved, forget = request.method, RecordedReads(request.recipe, reads), request.forget
    if retain_data is not None and algorithm.holds_images and is_streamed(retain_data):
        log.info("method %s holds its data in memory: loading the %d retained images", algorithm.name, len(retain_data))
        retain_data = in_memory(retain_data)
    spec = request.spec.with_input_size(item_shape(retain_data) if retain_data is not None else ())
    if len(spec.input_size) != 3:
        raise InvalidRequestError("the model's input size is unknown: set model.pretrained_cfg['input_size'] = "
                                  "(C, H, W)")
    if resolved.train_scope == "head" and not request.spec.input_size:  # checked by check_request where it knew it
        check_linear_head(model, spec.input_size)
    if request.generator is not None:  # its image size, checked again now that the model's is known
        _check_generator_fits(request.generator, spec)
    if retain_data is not None:
        if request.earlier:
            leaked = sorted(set(retain_data.y.unique().tolist()) & set(request.earlier) - set(request.requested))
            if leaked:
                raise DataError(f"the retained data contains class(es) {leaked}, which this model forgot in an "
                                "earlier request (see model.unlearning_history); leave them out")
        validate_retain(retain_data, forget, spec.num_classes, spec.input_size, resolved.min_per_class)
        shown, total = retained_coverage(retain_data.y, forget, spec.num_classes)
        if shown < total:
            log.info("the retained data shows %d of the %d retained classes; the masked teacher keeps the other %d",
                     shown, total, total - shown)
    forget_set = None
    if forget_data is not None:
        forget_set = materialise(forget_data)
        validate_forget_data(forget_set, forget, spec.input_size)
    eval_split = None
    if eval_data is not None:
        if not resolved.self_check.enabled:
            raise InvalidRequestError("eval_data is read by the self-check, which the recipe turns off "
                                      "(self_check.enabled: false); drop one of the two")
        eval_split = materialise(eval_data)
        validate_eval_data(eval_split, forget, spec.num_classes, spec.input_size)
    runtime = make_runtime(device, resolved.precision, resolved.channels_last)
    if runtime.distributed:
        if not algorithm.supports_distributed:
            raise InvalidRequestError(f"method {algorithm.name!r} does not run data-parallel (torchrun); run it in "
                                      "one process")
        _check_same_request_on_every_rank(runtime, forget, request.seed, retain_data, algorithm.name)
    checked = {f.name: getattr(request, f.name) for f in fields(CheckedRequest)}
    return ForgetPlan(**{**checked, "spec": spec, "recipe_keys_read": frozenset(reads)}, retain=retain_data,
                      forget_data=forget_set, eval_data=eval_split, runtime=runtime)


def _check_generator(generator, model: nn.Module, algorithm: Method, recipe: Recipe | RecordedReads,
                     spec: ModelSpec) -> AntiMemoryGenerator | None:
    """A pre-fitted generator: loaded (a folder is checked against the model) and checked for fit (its input
    size once the model's is known)."""
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
    _check_generator_fits(generator, spec)
    return generator


def _check_generator_fits(generator: AntiMemoryGenerator, spec: ModelSpec) -> None:
    """The generator makes the model's classes, at its input size where that is known."""
    if generator.num_classes != spec.num_classes or (
            spec.input_size and tuple(generator.input_size) != tuple(spec.input_size)):
        raise InvalidRequestError(f"the generator makes {generator.num_classes} classes of {tuple(generator.input_size)} "
                                  f"images; this model has {spec.num_classes} classes of {tuple(spec.input_size)}")


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


def validate_request(*args, check_data: Dataset | None = None, **kwargs) -> ForgetPlan:
    """The old name of :func:`plan_request` (deprecated; it will be removed), with its old ``check_data``."""
    import warnings

    warnings.warn("validate_request is now plan_request", DeprecationWarning, stacklevel=2)
    if check_data is not None:
        kwargs["eval_data"] = check_data
    return plan_request(*args, **kwargs)
