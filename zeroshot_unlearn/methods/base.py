"""What a forgetting method is: a small class with a data need and a loss, run by the shared engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn as nn

from ..augment import Augment
from ..data.datasets import ImageTensorDataset
from ..engine import BatchStream, batch_stream, train_phase
from ..errors import InvalidRequestError, ModelError, RecipeError
from ..generators import GENERATORS
from ..generators.features import head_input_prior
from ..losses import masked_distillation
from ..recipes import Recipe
from ..runtime import Runtime
from ..sections import PhaseConfig, RetainedPhase
from ..settings import Settings
from ..spec import ModelSpec
from ..surgery import check_linear_head, conv_weights_in, unknown_prefixes
from ..training_log import TrainingLog
from ..validate import retained_classes
from .registry import describe_needs, list_methods


@dataclass
class ForgetContext:
    """Everything a method may use. ``original`` is a frozen copy; ``student`` is the copy it trains."""

    original: nn.Module
    student: nn.Module
    forget: list[int]
    """Every class the result must not know: the requested ones and those forgotten earlier."""
    retain: ImageTensorDataset | None
    recipe: Recipe
    """The resolved recipe; in a run, read through a :class:`~zeroshot_unlearn.settings.RecordedReads` view that
    records the settings the method reads (``recipe.yaml`` holds those)."""
    seed: int
    spec: ModelSpec
    """The model's classes, input size and normalisation (read once, by the plan)."""
    progress: bool = True
    forget_data: ImageTensorDataset | None = None
    """Forget-class images: only for the comparison baselines whose ``needs`` include ``forget``."""
    training_log: "TrainingLog | None" = None
    """The model's training log: only for the baselines whose ``needs`` include ``training_log``."""
    generator: nn.Module | None = None
    """A pre-fitted generator the caller gave (a method that fits its own returns it in its output)."""
    runtime: Runtime = field(default_factory=Runtime)
    """Device, precision and data-parallel rank; streams shard and place batches with it."""
    gradient_sync: dict[str, int] = field(default_factory=lambda: {"ddp_reducer": 0, "all_reduce": 0})
    """Data-parallel runs: training steps whose gradients each mechanism averaged (kept by :meth:`train`, the
    engine's accounting, not a method's)."""
    retained: list[int] = field(init=False)
    """The classes the result keeps: every class not in ``forget``."""
    forget_tensor: torch.Tensor = field(init=False)
    """``forget`` as a tensor on the run's device (for indexing logits)."""

    def __post_init__(self) -> None:
        self.retained = retained_classes(self.num_classes, self.forget)
        self.forget_tensor = torch.as_tensor(self.forget, dtype=torch.long, device=self.device)

    @property
    def device(self) -> torch.device:
        return self.runtime.device

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    @property
    def input_size(self) -> tuple[int, ...]:
        return self.spec.input_size

    @property
    def mean(self) -> tuple[float, ...]:
        return self.spec.mean

    @property
    def std(self) -> tuple[float, ...]:
        return self.spec.std

    def augment(self) -> Augment:
        return Augment(self.recipe.augment, self.mean, self.std, self.input_size[1:]).to(self.device)

    def retained_augment(self):
        """What real batches go through: the augmentation, or nothing when ``retain_augment`` is off."""
        return self.augment() if self.recipe.retain_augment else (lambda x: x)

    def require(self, *names: str) -> None:
        """The run has each of ``names`` (``retain``, ``forget_data``, ``generator``). ``Method.check`` refuses a
        request without the data a method needs before any work; this names the gap should a method be run
        some other way (and, unlike ``assert``, stays under ``python -O``)."""
        missing = [name for name in names if getattr(self, name) is None]
        if missing:
            raise InvalidRequestError(f"this method reads {', '.join(missing)}, which the run was not given; "
                                      "forget_classes checks that before any work: call it, not Method.run")

    def retain_stream(self, cfg: PhaseConfig, offset: int = 0) -> BatchStream:
        self.require("retain")
        return batch_stream(self.retain, cfg.batch_size, self.seed + offset, self.runtime)

    def forget_stream(self, batch_size: int, offset: int = 0) -> BatchStream:
        self.require("forget_data")
        return BatchStream(self.forget_data.x, self.forget_data.y, batch_size, self.seed + offset, self.runtime)

    def train(self, cfg: PhaseConfig, steps: int, loss_fn, name: str):
        """The shared engine on the student, with the recipe's BN policy and this run's runtime.

        Data-parallel runs train through DistributedDataParallel: for the phase ``self.student``
        is the DDP wrapper, so the loss functions' ``ctx.student(x)`` calls reach its reducer.
        """
        inner = self.student
        replica = self.runtime.data_parallel(inner)
        if replica is not None:
            self.student = replica
        try:
            stats = train_phase(inner, cfg, steps, loss_fn, name=name, bn_policy=self.recipe.bn_policy,
                                progress=self.progress, runtime=self.runtime, replica=replica)
        finally:
            self.student = inner
        if replica is not None:
            self.gradient_sync["ddp_reducer"] += stats.ddp_steps
            self.gradient_sync["all_reduce"] += stats.steps - stats.ddp_steps
        return stats

    def train_on_retained(self, cfg: RetainedPhase, *, offset: int, name: str):
        """``cfg.epochs`` passes over the retained subset with :meth:`retained_loss` (augmented as the recipe says)."""
        stream = self.retain_stream(cfg, offset)
        augment = self.retained_augment()

        def loss_fn(_step: int) -> torch.Tensor:
            x, y = next(stream)
            x = augment(x)
            return self.retained_loss(self.student(x), x, y, cfg)

        return self.train(cfg, stream.steps_for(cfg.epochs), loss_fn, name=name)

    def retained_loss(self, logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor, cfg: RetainedPhase,
                      teacher: torch.Tensor | None = None) -> torch.Tensor:
        """The retained-data objective shared by methods: label CE plus masked distillation.

        ``teacher``: the original model's logits for ``x`` when the caller already has them.
        """
        loss = logits.new_zeros(())
        if cfg.ce_weight:
            loss = loss + cfg.ce_weight * torch.nn.functional.cross_entropy(logits, y)
        if cfg.distill_weight:
            if teacher is None:
                with torch.no_grad():
                    teacher = self.original(x)
            loss = loss + cfg.distill_weight * masked_distillation(logits, teacher, self.forget_tensor,
                                                                   cfg.distill_temperature)
        return loss


@dataclass
class MethodOutput:
    """What :meth:`Method.run` made: the trained student, the generator it fitted or used, and its report."""

    student: nn.Module
    generator: nn.Module | None = None
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per step of the method (``generator``, ``impair``, ...), recorded in the result."""
    details: dict[str, object] = field(default_factory=dict)
    """What the method reports about its run (recorded in the history), e.g. the training steps it undid."""


class Method:
    """Base class. Subclasses set ``name``, ``needs`` and implement :meth:`run` with the engine; ``run``
    reads its :class:`ForgetContext` and returns a :class:`MethodOutput` (it changes nothing in the context).

    A method with settings of its own gives their dataclass as ``settings`` (a
    :class:`~zeroshot_unlearn.settings.Settings`); they are the recipe section named ``section``
    (the method's name unless set), validated like every recipe key, and the method reads them
    with :meth:`settings_in`.
    """

    name: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset()
    """Data the method reads: ``retain``, ``forget`` (forget-class images), ``training_log``, or nothing."""
    settings: ClassVar[type[Settings] | None] = None
    section: ClassVar[str | None] = None
    uses_phases: ClassVar[bool] = False
    """Whether it runs the recipe's shared generator, impair and repair settings (the project's methods)."""
    uses_generator: ClassVar[bool] = False
    """Whether it synthesises with ``ctx.generator`` (and so accepts a pre-fitted amortised one)."""
    supports_distributed: ClassVar[bool] = True
    """Whether it runs data-parallel under torchrun (every rank runs the same loop on its shard)."""
    holds_images: ClassVar[bool] = False
    """Whether it reads its data as whole tensors (``retain.x``): retained images on disk are then loaded
    into memory before the run (the project's methods stream them)."""
    recipe_overrides: ClassVar[dict[str, object]] = {}
    """Applied to the resolved recipe before the caller's overrides (how named variants differ)."""
    summary: ClassVar[str] = ""
    """One line on what it is, for the method list of ``forget --help``."""

    @classmethod
    def describe(cls) -> str:
        """The data it reads and its summary: ``retain (baseline)``."""
        return describe_needs(cls.needs) + (f" ({cls.summary})" if cls.summary else "")

    def overrides_for(self, recipe: Recipe) -> dict[str, object]:
        """What this method sets on ``recipe`` before the caller's overrides: ``recipe_overrides``,
        plus whatever the recipe itself asks for this method (see the data-free mode)."""
        return dict(self.recipe_overrides)

    @classmethod
    def section_name(cls) -> str | None:
        """The recipe section holding this method's settings (None when it has none of its own)."""
        return (cls.section or cls.name) if cls.settings is not None else None

    def settings_in(self, recipe: Recipe):
        """This method's settings as ``recipe`` sets them (its section's defaults where it does not)."""
        return recipe.section(self.section_name())

    def check(self, model: nn.Module, recipe: Recipe, *, data_free: bool, forget_data_given: bool,
              training_log_given: bool) -> None:
        """Refuse, before any work, a request this method cannot run: data it needs and was not given, data
        it never reads and was given, and (for the methods on the shared phases) phase settings that do not
        fit the model or the data. A method with checks of its own extends this."""
        name = self.name
        if "forget" in self.needs and not forget_data_given:
            raise InvalidRequestError(f"method {name!r} needs forget-class images (forget_data=DATASET); it is a "
                                      "comparison baseline. The methods that need none: "
                                      f"{', '.join(n for n, d in list_methods().items() if 'forget' not in d)}")
        if forget_data_given and "forget" not in self.needs:
            raise InvalidRequestError(f"method {name!r} never reads forget-class images; drop forget_data "
                                      "(nothing of the forget classes should be handed to it)")
        if data_free and "retain" in self.needs:
            raise InvalidRequestError(f"method {name!r} needs retained data: pass retain=DATASET")
        if "training_log" in self.needs and not training_log_given:
            raise InvalidRequestError(f"method {name!r} needs the model's training log (training_log=FOLDER, "
                                      "written by `zeroshot-unlearn train ... --record-updates`)")
        if training_log_given and "training_log" not in self.needs:
            raise InvalidRequestError(f"method {name!r} does not read a training log; drop training_log "
                                      "(method='amnesiac' does)")
        if self.uses_phases:  # only the settings the method reads are checked against the model
            check_phases(model, recipe, data_free="retain" not in self.needs)

    def run(self, ctx: ForgetContext) -> MethodOutput:  # pragma: no cover - abstract
        raise NotImplementedError


def check_head_scope(model: nn.Module, recipe: Recipe, *, data_free: bool) -> None:
    """``train_scope: head`` (and the ``features`` generator, which only it reads) with settings it can run."""
    if recipe.train_scope != "head":
        raise RecipeError("generator.kind 'features' makes anti-memories at the classifier head's input, which only "
                          "train_scope: head reads; set train_scope: head or an image generator (network, noise)")
    input_size = (getattr(model, "pretrained_cfg", None) or {}).get("input_size")
    if input_size:  # the logits must be the head's output on one feature vector (ModelError where not)
        check_linear_head(model, input_size)
    if data_free:
        if recipe.generator.kind != "features":
            raise RecipeError("the data-free mode with train_scope: head makes its memories at the head's input: "
                              "set generator.kind: features")
        if input_size:  # the memories' prior is read off the model (ModelError where it cannot be)
            prior = head_input_prior(model, input_size, samples=2)
            if prior.norm == "layernorm" and prior.emit is None and not recipe.section("data_free").layernorm_prior:
                raise ModelError(f"{type(model).__name__}'s head reads the {prior.reads} output of a LayerNorm (a Swin's "
                                 "pooled tokens): the memories cannot be made as that norm's outputs, and the prior "
                                 "without that map lost 6 points of Dr where it was measured (docs/imagenet.md): pass "
                                 "retained images (retain=..., even a few per class), or set "
                                 "data_free.layernorm_prior: true to run it anyway")
    if recipe.generator.kind not in set(GENERATORS) | {"features"}:
        raise RecipeError(f"unknown generator.kind {recipe.generator.kind!r}; registered generators: "
                          f"{', '.join(sorted(GENERATORS))}, features")
    for name, phase in (("impair", recipe.impair), ("repair", recipe.repair)):
        unread = phase.retained_feature_terms() + (["perturb_scope"] if phase.perturb_scope else []) \
            + (["recalibrate_bn"] if phase.recalibrate_bn else [])
        if unread:
            raise RecipeError(f"{name}.{unread[0]} changes the backbone, which train_scope: head keeps the "
                              "original's; leave it at its default or use train_scope: all")


def check_phases(model: nn.Module, recipe: Recipe, *, data_free: bool = False) -> None:
    """The shared generator and impair/repair settings fit this model (and the data the run has)."""
    if recipe.generator.kind == "features" or recipe.train_scope == "head":
        check_head_scope(model, recipe, data_free=data_free)
    elif recipe.generator.kind not in GENERATORS:
        raise RecipeError(f"unknown generator.kind {recipe.generator.kind!r}; registered generators: "
                          f"{', '.join(sorted(GENERATORS))}, and 'features' with train_scope: head")
    for name, phase in (("impair", recipe.impair), ("repair", recipe.repair)):
        unknown = unknown_prefixes(model, phase.perturb_scope)
        if unknown:
            tops = sorted({n.split(".")[0] for n, _ in model.named_parameters()})
            raise RecipeError(f"{name}.perturb_scope entry {unknown[0]!r} names no parameter of {type(model).__name__}; "
                              f"its parameter names start with: {', '.join(tops)}")
        if phase.ranks_channels() and not conv_weights_in(model, phase.perturb_scope):
            raise RecipeError(f"{name}.perturb_channels < 1 ranks the output channels of convolutions, and "
                              f"{name}.perturb_scope {list(phase.perturb_scope)} holds none; set it to 1")
        if data_free:
            needs_retained = phase.retained_feature_terms() + (["perturb_channels"] if phase.ranks_channels() else [])
            if needs_retained:
                raise RecipeError(f"{name}.{needs_retained[0]} compares with retained images, and the data-free "
                                  "mode has none: leave it at its default or pass retain=DATASET")
