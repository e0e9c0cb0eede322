"""The run of a :class:`~zeroshot_unlearn.plan.ForgetPlan`: copies of the model, the method, the self-check,
the history entry, and the :class:`~zeroshot_unlearn.result.ForgetResult` made of them."""

from __future__ import annotations

import copy
import datetime
import logging
import time
import warnings
from typing import Any

import torch
import torch.nn as nn

from . import seeds
from ._version import __version__
from .errors import ForgettingFailedError, ForgettingWarning, UncheckableModelError
from .io import sha256_state_dict
from .methods import ForgetContext, MethodOutput
from .plan import ForgetPlan, forgotten_classes
from .result import ForgetResult
from .selfcheck import SelfCheck, check_baseline, check_forgetting, uncheckable_message
from .settings import RecordedReads
from .validate import retained_coverage

log = logging.getLogger(__name__)


def run_plan(model: nn.Module, plan: ForgetPlan, *, progress: bool, inplace: bool, strict: bool) -> ForgetResult:
    """Run ``plan`` on a copy of ``model`` and check what it forgot; ``model`` is written only with ``inplace``
    (and only once the run has passed its check)."""
    runtime, spec, seed = plan.runtime, plan.spec, plan.seed
    keys_read = set(plan.recipe_keys_read)  # the plan's reads, and the run's as it reads through ``recipe``
    recipe = RecordedReads(plan.recipe, keys_read)
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
        baseline = _pre_run_check(model, original, plan, recipe.self_check, strict=strict)
        student = copy.deepcopy(model).to(runtime.device, memory_format=memory_format)
        synced = runtime.distributed and runtime.device.type == "cuda"
        if synced:  # BatchNorm statistics over the global batch (SyncBatchNorm is GPU-only in PyTorch)
            student = nn.SyncBatchNorm.convert_sync_batchnorm(student)
        ctx = ForgetContext(original=original, student=student, forget=plan.forget, retain=plan.retain,
                            forget_data=plan.forget_data, training_log=plan.training_log, recipe=recipe,
                            seed=seed, spec=spec, progress=progress and runtime.is_main, runtime=runtime,
                            generator=copy.deepcopy(plan.generator).to(runtime.device) if plan.generator else None)
        output = plan.method.run(ctx)
    if not isinstance(output, MethodOutput):
        raise TypeError(f"method {plan.method.name!r}: run() returned {type(output).__name__}; it must return a "
                        "MethodOutput (zeroshot_unlearn.methods.MethodOutput(ctx.student, timings=...))")
    student = output.student
    if synced:  # back to the caller's layer types, same weights
        plain = copy.deepcopy(model).to(runtime.device)
        plain.load_state_dict(student.state_dict())
        student = plain
    student = student.eval()
    runtime.check_in_sync(student)
    timings = dict(output.timings)
    checked = None
    if baseline is not None:
        checked = check_forgetting(baseline, student, plan.forget, recipe.self_check, spec.input_size, spec.mean,
                                   spec.std, seed=seed + seeds.SELF_CHECK, eval_data=plan.eval_data)
        timings["self_check"] = checked.seconds
    timings["total"] = time.perf_counter() - start
    entry = history_entry(plan, recipe, output, dict(ctx.gradient_sync), checked, input_sha256=original_hash,
                          output_sha256=sha256_state_dict(student.state_dict()))
    history = list(getattr(model, "unlearning_history", [])) + [entry]
    student.pretrained_cfg = spec.pretrained_cfg
    student.unlearning_history = history

    def result_with(returned: nn.Module) -> ForgetResult:
        return ForgetResult(model=returned, generator=output.generator, recipe=plan.recipe, method=plan.method.name,
                            forget=plan.forget, requested=plan.requested, timings=timings,
                            retained_images=plan.retained_images, forget_images_used=entry["forget_images_used"],
                            history=history, self_check=checked, recipe_keys_read=frozenset(keys_read),
                            device=entry["device"], world_size=runtime.world_size,
                            gradient_sync=entry["gradient_sync"])

    if checked is not None and checked.passed is None:
        message = (f"self-check of classes {plan.forget}: {checked.describe()}; nothing says these classes were "
                   "forgotten")
        warnings.warn(message, ForgettingWarning, stacklevel=3)
        log.warning("%s", message)
    if checked is not None and checked.passed is False:
        message = not_forgotten_message(checked, plan.forget, plan.retained_images, entry["retained_classes_shown"])
        if strict:  # before inplace touches the caller's model: a failed run leaves it as it was
            raise ForgettingFailedError(message, result_with(student))
        warnings.warn(message, ForgettingWarning, stacklevel=3)  # the caller of forget_classes
        log.warning("NOT FORGOTTEN: %s", message)
    if checked is not None and checked.passed and plan.retain is None and checked.test_df is None:
        # Measured: in data-free mode the figure read 0.0 on runs left at Df 1.6-6.7 (benchmarks/data-free/).
        log.warning("data-free run: the self-check passed on its figure alone, which has passed partial forgetting "
                    "in this mode; eval_data (CLI --eval-data) measures Df on real images "
                    "(docs/amortised-and-data-free.md)")
    if inplace:
        model.load_state_dict(student.state_dict())
        model.unlearning_history = history
        student = model
    result = result_with(student)
    log.info("forgot classes %s with %s in %.1fs", plan.forget, plan.method.name, timings["total"])
    return result


def _pre_run_check(model: nn.Module, original: nn.Module, plan: ForgetPlan, cfg, *, strict: bool):
    """The self-check's view of the original, taken before any work: a model it cannot judge is refused
    under ``strict`` (otherwise the run goes on with an inconclusive check). None when the check is off.
    ``cfg``: the recipe's ``self_check`` section."""
    if not cfg.enabled:
        return None
    earlier = set(forgotten_classes(model))
    spec = plan.spec
    baseline = check_baseline(original, plan.forget, cfg, spec.input_size, spec.mean, spec.std,
                              seed=plan.seed + seeds.SELF_CHECK, known=[c for c in plan.forget if c not in earlier])
    if not baseline.conclusive:
        message = uncheckable_message(baseline, cfg, spec.pretrained_cfg.get("weights"))
        if strict:
            raise UncheckableModelError(message + "; strict=False runs anyway, with an inconclusive check")
        log.warning("%s; strict=False: running anyway, the check will be inconclusive", message)
    return baseline


def history_entry(plan: ForgetPlan, recipe: RecordedReads, output: MethodOutput, gradient_sync: dict[str, int],
                  checked: SelfCheck | None, *, input_sha256: str, output_sha256: str) -> dict[str, Any]:
    """What the model's history records of this request (``docs/glossary.md`` names each key); ``recipe``: the
    plan's, read through the run's view."""
    runtime, algorithm, resolved = plan.runtime, plan.method, recipe
    reads_retain = plan.retain is not None and "retain" in algorithm.needs
    return {
        "forget": plan.forget, "requested": plan.requested, "method": algorithm.name, "recipe": resolved.name,
        "depth": resolved.depth,
        "seed": plan.seed, "device": str(runtime.device), "world_size": runtime.world_size,
        "gradient_sync": gradient_sync if runtime.distributed else None,
        "generator": (f"amortised {getattr(plan.generator, 'card', {}).get('model_id', '(in memory)')}"
                      if plan.generator is not None else ("fitted" if output.generator is not None else None)),
        "retained_images": plan.retained_images,
        "retained_classes_shown": (retained_coverage(plan.retain.y, plan.forget, plan.num_classes)[0]
                                   if reads_retain else 0),
        "retained_classes": plan.num_classes - len(plan.forget),
        "forget_images_used": len(plan.forget_data) if plan.forget_data is not None else 0,
        "training_log": str(plan.training_log.folder) if plan.training_log is not None else None,
        "eval_images": len(plan.eval_data) if plan.eval_data is not None else 0,
        "method_details": dict(output.details) or None,
        "self_check": checked.as_dict() if checked is not None else None,
        "input_sha256": input_sha256, "output_sha256": output_sha256,
        "version": __version__, "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def not_forgotten_message(checked: SelfCheck, forget: list[int], retained_images: int, shown: int) -> str:
    per_class = retained_images // max(1, shown) if retained_images else 0
    budget = (f" The run had {retained_images} retained images ({per_class} per class of the {shown} they show)"
              + (", few enough to be the cause: give more retained images, or" if 0 < per_class < 30 else ";")
              if retained_images else " It ran without retained data;")
    return (f"classes {forget} were not forgotten: {checked.describe()}.{budget} lengthen the schedule "
            "(overrides: impair.epochs, min_epoch_images) or use the recipe's defaults if they were overridden; "
            "pass strict=False (CLI: --no-strict) to get the model anyway")
