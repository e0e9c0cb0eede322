"""Recipes: the hyper-parameters of a forgetting run, as data.

One YAML file per architecture family lives in the top-level ``recipes/`` folder. A file
lists what differs from its base: ``base: NAME`` (another registered recipe), or the built-in
defaults, which are the ``default`` recipe. Each file is parsed into the frozen
:class:`Recipe`; unknown keys, wrong types and out-of-range values raise
:class:`~zeroshot_unlearn.errors.RecipeError` naming the key. ``recipe="auto"`` picks the
file whose ``matches`` patterns fit the model's architecture name (the most specific wins).

:class:`Recipe` holds what the project's methods share (the generator, the augmentation, the
impair and repair phases, the BatchNorm policy, precision, the self-check); every other method
declares its own section (``masked_kd:``, ``gkt:``, ...) with its settings class, see
:mod:`zeroshot_unlearn.settings`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from ._resources import recipes_dir
from .errors import RecipeError
from .settings import SECTIONS, Settings, build, field_names, not_recording, suggest

IDENTITY_KEYS = ("name", "description", "matches")
"""Keys that describe a recipe file rather than configure a run: never inherited through ``base:``."""


@dataclass(frozen=True)
class GeneratorConfig(Settings):
    """How anti-memories are synthesised."""

    kind: str = "network"
    """Registered generator name: ``network`` (class-conditional net) or ``noise`` (per-class tensors)."""
    objective: str = "impression"
    """``impression``: samples the original's features recognise as the forget class;
    ``error_max``: maximise the model's loss on the forget label (UNSIR)."""
    steps: int = 60
    """Optimisation steps of the fit (Adam, ``lr``), ``batch_size`` samples each."""
    batch_size: int = 32
    lr: float = 0.01
    latent_dim: int = 32
    """Latent size of the ``network`` generator; ``width`` its base channel count."""
    width: int = 32
    samples_per_class: int = 8
    """Per-class tensors of the ``noise`` generator."""
    bound_weight: float = 0.1
    """Keeps samples bounded (their mean squared magnitude in input space)."""
    diversity_weight: float = 0.1
    """Pushes samples of the same class apart."""
    bn_prior_weight: float = 0.05
    """Match the original's BatchNorm running statistics (the DeepInversion prior); 0 for models without."""

    rules = {"objective": ("error_max", "impression"), "steps": (0, None), "batch_size": (1, None),
             "lr": (0.0, 10.0, "open"), "latent_dim": (1, 4096), "width": (1, 4096), "samples_per_class": (1, 100_000),
             "bound_weight": (0.0, None), "diversity_weight": (0.0, None), "bn_prior_weight": (0.0, None)}


@dataclass(frozen=True)
class AugmentConfig(Settings):
    """kornia augmentations applied to anti-memories (and retained batches) in the loop."""

    crop_padding: int = 4
    flip: bool = True
    color_jitter: float = 0.0
    noise_std: float = 0.0

    rules = {"crop_padding": (0, 64), "color_jitter": (0.0, 1.0), "noise_std": (0.0, 1.0)}


@dataclass(frozen=True)
class PhaseConfig(Settings):
    """One training phase of the shared engine: its length, optimiser, schedule and batch size."""

    epochs: float = 1.0
    """Passes over the retained subset (fractions allowed)."""
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.9
    """SGD's momentum (Adam keeps its own betas)."""
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup: float = 0.0
    """Fraction of the phase's steps over which the learning rate rises linearly from 0 before the
    schedule (with ``cosine``: the one-cycle shape, up then down to 0)."""
    batch_size: int = 128
    grad_clip: float = 5.0

    rules = {"epochs": (0.0, 1000.0), "lr": (0.0, 10.0), "optimizer": ("sgd", "adam"), "momentum": (0.0, 1.0),
             "weight_decay": (0.0, 1.0), "schedule": ("cosine", "constant"), "warmup": (0.0, 1.0),
             "batch_size": (1, None), "grad_clip": (0.0, None)}


@dataclass(frozen=True)
class RetainedPhase(PhaseConfig):
    """A phase on retained images: label cross-entropy plus distillation from the masked teacher."""

    ce_weight: float = 1.0
    """Cross-entropy on the retained labels."""
    distill_weight: float = 0.0
    """KL to the original model with the forget logits removed (masked teacher)."""
    distill_temperature: float = 4.0

    rules = {"ce_weight": (0.0, None), "distill_weight": (0.0, None), "distill_temperature": (0.0, 100.0, "open")}


@dataclass(frozen=True)
class AntiMemoryPhase(RetainedPhase):
    """A phase of the project's methods: retained images, optionally mixed with anti-memories."""

    anti_memory_batch: int = 0
    """Anti-memory samples per step (0 = none; repair must use 0)."""
    anti_memory_weight: float = 1.0
    anti_memory_target: str = "masked_teacher"
    """``masked_teacher``: anti-memories pushed to the masked teacher's retained-class distribution;
    ``forget_label``: labelled with their forget class (UNSIR)."""
    anti_memory_scope: str = "head"
    """Which weights the anti-memory loss trains: ``head`` (features detached, so only the classifier
    learns from synthetic samples and the backbone only from real ones), or ``all``."""
    feature_weight: float = 0.0
    """Representation term on anti-memories, on the student's penultimate features of them (trains
    the backbone, whatever ``anti_memory_scope`` says); ``feature_objective`` says what it asks."""
    feature_objective: str = "prototype"
    """``prototype``: each anti-memory's features pulled to the original model's mean feature of the
    retained class the masked teacher assigns it (SCAR's push to the nearest other class);
    ``contract``: pulled to zero (OPC's one-point contraction); ``disperse``: the features of the
    same forget class pushed apart, their mean pairwise cosine similarity minimised (Spotter's
    intra-class dispersion)."""
    retain_feature_weight: float = 0.0
    """Keep the student's penultimate features of retained images at the original model's."""
    span_weight: float = 0.0
    """Squeeze the retained images' penultimate features into the span of the original head's
    retained-class rows (about the retained mean): the part outside it is penalised, relative to the
    original features' spread. The masked head reads only that span, so retained logits need none
    of the rest; whatever of the forget classes lives outside it goes. No forget data, no generator."""
    span_drop_forget: bool = False
    """Take the forget-class rows' directions out of that span as well (6 of 8 directions left on a
    10-class request for 2 classes)."""
    class_mean_weight: float = 0.0
    """Cross-entropy of a class-mean-feature classifier on retained images (the CMF head of Gao et al.,
    "An Illusion of Unlearning?"): scaled cosine similarity of the student's features to running means
    of its own features per retained class, so the features, not only the linear head, carry the
    retained classes and the head cannot hide what the features keep."""
    recalibrate_bn: bool = False
    """After the phase, re-estimate every BatchNorm layer's running statistics on the retained subset
    (without augmentation), replacing the averages the phase's moving updates left."""
    perturb_scope: tuple[str, ...] = ()
    """Parameter-name prefixes (e.g. ``layer3``) whose weights are shrunk and perturbed when the
    phase starts (shrink-and-perturb, Ash & Adams 2020): the phase then re-grows them from the
    masked teacher and the anti-memories instead of starting from weights that encode the classes."""
    shrink: float = 1.0
    """Factor the weights in ``perturb_scope`` are multiplied by."""
    perturb: float = 0.0
    """Gaussian noise added to them, in units of each tensor's standard deviation."""
    perturb_channels: float = 1.0
    """Fraction of the output channels of each convolution in ``perturb_scope`` that are shrunk and
    perturbed: those the forget classes drive most, ranked on the generator's anti-memories (mean
    absolute activation on anti-memories over that on retained images, the ranking of
    Class-Discriminative Pruning). 1: every weight, no ranking and no generator needed for it."""

    rules = {"anti_memory_batch": (0, None), "anti_memory_weight": (0.0, None),
             "anti_memory_target": ("forget_label", "masked_teacher"), "anti_memory_scope": ("all", "head"),
             "feature_weight": (0.0, None), "feature_objective": ("contract", "disperse", "prototype"),
             "retain_feature_weight": (0.0, None), "span_weight": (0.0, None), "class_mean_weight": (0.0, None),
             "shrink": (0.0, 1.0), "perturb": (0.0, 10.0), "perturb_channels": (0.0, 1.0, "open")}

    def ranks_channels(self) -> bool:
        """Whether the phase ranks output channels before shrink-and-perturb (it needs the generator)."""
        return bool(self.perturb_scope) and self.perturb_channels < 1

    def retained_feature_terms(self) -> list[str]:
        """The keys of the phase's terms that compare with the original's features of retained images."""
        return [key for key in ("feature_weight", "retain_feature_weight", "span_weight", "class_mean_weight")
                if getattr(self, key)]


@dataclass(frozen=True)
class SelfCheckConfig(Settings):
    """How ``forget_classes`` checks its own result before returning it, without forget-class images
    (:mod:`zeroshot_unlearn.selfcheck`).

    The original is inverted into impressions of the forget classes before the run (a model that
    does not recognise ``min_original_figure`` % of its own is refused under ``strict``); after it,
    the run counts as not forgotten when the new model calls more than ``max_figure`` % of the
    original's confident impressions (``figure: inversion``: or of its own inversions) a forget class.
    With an evaluation split, its Df must also stay at most ``max_test_df``.
    """

    enabled: bool = True
    figure: str = "impressions"
    """``impressions``: the share of the original's confident impressions the new model calls a forget class;
    ``inversion``: also the new model's own inversions (catches partial forgetting, fails more runs that did
    forget, a second inversion's cost; measured in benchmarks/selfcheck/)."""
    impressions_per_class: int = 16
    max_impressions: int = 256
    """Impressions in all: a request of many classes gets fewer per class (at least 2), so the check's
    cost stops growing with the class count."""
    steps: int = 30
    """Optimisation steps of each inversion (30: about 1.2 s per forget class on the CIFAR ResNet20, one
    CPU thread; the check inverts twice, the original and the new model)."""
    min_confidence: float = 0.9
    """The original's confidence an impression needs to count among its confident impressions."""
    min_original_figure: float = 50.0
    """Below this % of its own impressions called their class with ``min_confidence``, the original
    cannot be inverted (random or untrained weights, or too few ``steps``) and the check can say nothing."""
    max_figure: float = 10.0
    """The figure (percent) above which the run did not forget."""
    max_test_df: float = 2.5
    """Df (percent) on an evaluation split above which the run did not forget, when it has one; between
    the project's goals (a run at Df <= 1 passes, one at Df >= 5 fails)."""

    rules = {"figure": ("impressions", "inversion"), "impressions_per_class": (1, 1024), "max_impressions": (2, 100_000), "steps": (1, 10_000),
             "min_confidence": (0.0, 1.0), "min_original_figure": (0.0, 100.0), "max_figure": (0.0, 100.0),
             "max_test_df": (0.0, 100.0)}


@dataclass(frozen=True)
class Recipe(Settings):
    """A complete, resolved recipe. Immutable: overrides produce a new one.

    Its defaults are the ``default`` recipe. Method sections (``masked_kd``, ``gkt``, ...) are in
    ``sections`` when the recipe sets them; :meth:`section` returns any of them, defaults included.
    """

    name: str = "default"
    description: str = ""
    matches: tuple[str, ...] = ("*",)
    method: str = "anti_memory"
    bn_policy: str = "real_only"
    """``real_only``: BatchNorm statistics update from real retained batches only, synthetic
    batches are normalised with the running statistics; ``frozen``: statistics never change."""
    retain_augment: bool = True
    precision: str = "fp32"
    """``fp32``, or ``bf16``: autocast of the training steps on CUDA (ignored on CPU, which stays fp32)."""
    channels_last: bool = False
    """channels_last memory format for model and batches on CUDA (ignored on CPU)."""
    min_per_class: int = 4
    """Fewest retained samples per retained class the recipe accepts."""
    min_epoch_images: int = 2500
    """The schedule's floor: a phase epoch of the project's methods covers ``max(len(retain),
    min_epoch_images)`` images, so a small retained subset repeats (reshuffled and augmented) and the
    number of optimisation steps and anti-memory batches stays what the recipe was measured with
    (2,500: 5% of CIFAR-10). 0: epochs of the retained subset as given (UNSIR as published)."""
    impair_scaling: str = "forget_ratio"
    """``forget_ratio``: a request that forgets more classes than it keeps gets a longer impair, its
    steps times sqrt(forget classes / retained classes) (8 of 10 classes: twice the steps), because the
    few retained classes must then push every forget class out of the head. Requests that forget no
    more classes than they keep are unchanged. ``none``: the impair as the recipe states it."""
    self_check: SelfCheckConfig = field(default_factory=SelfCheckConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    impair: AntiMemoryPhase = field(default_factory=lambda: AntiMemoryPhase(
        lr=0.03, distill_weight=1.0, anti_memory_batch=32, anti_memory_weight=6.0))
    """Impair: retained batches mixed with anti-memories, pushed to the masked teacher through the head."""
    repair: AntiMemoryPhase = field(default_factory=lambda: AntiMemoryPhase(epochs=0.5, distill_weight=1.0))
    """Repair: retained batches only."""
    amortised: dict[str, Any] = field(default_factory=dict)
    """Overrides (dotted keys, e.g. ``impair.epochs``) for the default method when ``forget_classes``
    gets a pre-fitted generator: the request pays no generator fit, and its schedule can be the
    shorter one measured with that generator. The caller's overrides still win."""
    depth: str = "output"
    """How deep the forgetting goes. ``output``: the classes are gone from the outputs at the retained
    accuracy ceiling, fast (the features still separate them: a linear probe finds them). ``representation``:
    the recipe's ``representation`` overrides apply, bought with time and some retained accuracy, to
    make the features forget too (measured per family in the README). The shipped settings regrow the
    last stages from the masked teacher on retained images and switch the anti-memories off: on the
    CIFAR ResNet20 they moved the result along the Dr / probe-Df trade line without improving it
    (benchmarks/RESULTS.md §11), so the deep setting spends no time fitting a generator."""
    representation: dict[str, Any] = field(default_factory=dict)
    """Overrides (dotted keys) that make ``depth: representation`` for this family; empty: not measured
    here, and the depth is refused. The caller's overrides still win."""
    sections: Mapping[str, Settings] = field(default_factory=dict, metadata={"yaml": False})
    """The method sections this recipe sets, by name (written at the top level of the YAML)."""

    rules = {"bn_policy": ("real_only", "frozen"), "precision": ("fp32", "bf16"), "min_per_class": (1, None),
             "min_epoch_images": (0, None), "depth": ("output", "representation"),
             "impair_scaling": ("forget_ratio", "none")}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.repair.anti_memory_batch:
            raise RecipeError("repair.anti_memory_batch must be 0: repair trains on retained data only")
        self.placed_at("")
        for name in ("self_check", "generator", "augment", "impair", "repair"):
            getattr(self, name).placed_at(f"{name}.")
        for name, section in self.sections.items():
            section.placed_at(f"{name}.")

    def section(self, name: str) -> Settings:
        """The settings of method section ``name``: as this recipe sets them, or that section's defaults."""
        if name not in SECTIONS:
            _register_methods()
        given = object.__getattribute__(self, "sections").get(name)
        return given if given is not None else SECTIONS[name]().placed_at(f"{name}.")

    def __getattr__(self, name: str) -> Settings:
        # ``recipe.masked_kd`` reads like the shared sections; only called when no field has the name.
        if not name.startswith("_"):
            _register_methods()
            if name in SECTIONS:
                return self.section(name)
        raise AttributeError(f"recipe has no key {name!r}")

    def to_dict(self, keys: set[str] | frozenset[str] | None = None) -> dict[str, Any]:
        """The recipe as YAML-ready data; with ``keys`` (dotted, as :func:`~zeroshot_unlearn.settings.recording_reads`
        records them) only those settings, plus the recipe's ``name`` and ``method``."""
        with not_recording():
            data = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)
                    if f.metadata.get("yaml", True)}
            for name, section in self.sections.items():
                data[name] = section.to_dict()
        if keys is not None:
            data = _only(data, set(keys) | {"name", "method"})
        return data

    def to_yaml(self, keys: set[str] | frozenset[str] | None = None) -> str:
        return yaml.safe_dump(self.to_dict(keys), sort_keys=False)

    def replace(self, overrides: Mapping[str, Any] | None) -> "Recipe":
        """A new recipe with nested ``overrides`` applied (validated like a file)."""
        if not overrides:
            return self
        return recipe_from_dict(_deep_merge(self.to_dict(), _expand_dotted(overrides)), source="overrides")


def _plain(value: Any) -> Any:
    if isinstance(value, Settings):
        return value.to_dict()
    if isinstance(value, tuple):
        return list(value)
    return value


def _only(data: dict[str, Any], keys: set[str], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if path in keys:
            out[key] = value
        elif isinstance(value, dict) and any(k.startswith(path + ".") for k in keys):
            out[key] = _only(value, keys, path + ".")
    return out


def _register_methods() -> None:
    from . import methods  # noqa: F401  (registering the methods registers their recipe sections)


# --------------------------------------------------------------------------- parsing


def recipe_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> Recipe:
    """A :class:`Recipe` from YAML-shaped data; a ``base:`` key starts from that registered recipe."""
    with not_recording():  # validating a recipe reads every setting; that is not a run using them
        return _parse(data, source)


def _parse(data: Mapping[str, Any], source: str) -> Recipe:
    if not isinstance(data, Mapping):
        raise RecipeError(f"{source}: a recipe must be a mapping of keys, got {type(data).__name__}")
    data = _with_base(dict(data), source, seen=())
    _register_methods()
    shared = {k: v for k, v in data.items() if k not in SECTIONS}
    sections = {}
    for name in sorted(set(data) & set(SECTIONS)):
        if not isinstance(data[name], Mapping):
            raise RecipeError(f"{source}: recipe key '{name}' must be a mapping, got {type(data[name]).__name__}")
        sections[name] = build(SECTIONS[name], data[name], source, prefix=f"{name}.")
    recipe = build(Recipe, shared, source, extra=sorted(SECTIONS))
    if sections:
        recipe = dataclasses.replace(recipe, sections=sections)
    # The conditional overrides must make a valid recipe too, checked now rather than when they apply.
    conditional = [("amortised", recipe.amortised), ("representation", recipe.representation)]
    if "data_free" in sections:
        conditional.append(("data_free.overrides", sections["data_free"].overrides))
    for where, extra in conditional:
        if not extra:
            continue
        expanded = _expand_dotted(extra)
        if {"amortised", "representation", "depth"} & set(expanded) or "overrides" in expanded.get("data_free", {}):
            raise RecipeError(f"{source}: '{where}' cannot set 'amortised', 'representation', 'depth' or "
                              "'data_free.overrides'")
        plain = recipe.to_dict()
        plain["amortised"], plain["representation"] = {}, {}
        plain.pop("data_free", None)
        _parse(_deep_merge(plain, expanded), f"{source} ({where} section)")
    return recipe


def _with_base(data: dict[str, Any], source: str, seen: tuple[str, ...]) -> dict[str, Any]:
    """``data`` on top of its ``base:`` recipe's keys (recursively; identity keys are not inherited)."""
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise RecipeError(f"{source}: recipe key 'base' must be the name of a registered recipe, got {base!r}")
    files = _recipe_files()
    if base not in files:
        raise RecipeError(f"{source}: unknown base recipe {base!r}.{suggest(base, list(files))} "
                          f"Registered recipes: {', '.join(files)}")
    if base in seen:
        raise RecipeError(f"{source}: recipes inherit in a circle: {' -> '.join((*seen, base))}")
    inherited = _with_base(_read_yaml(files[base]), str(files[base]), (*seen, base))
    for key in IDENTITY_KEYS:
        inherited.pop(key, None)
    return _deep_merge(inherited, data)


def _expand_dotted(overrides: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        parts = str(key).split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise RecipeError(f"override '{key}' conflicts with another override")
        if isinstance(value, Mapping):
            node[parts[-1]] = _deep_merge(node.get(parts[-1], {}), _expand_dotted(value))
        else:
            node[parts[-1]] = value
    return out


def _deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """``impair.lr=0.02`` -> ("impair.lr", 0.02); the value is parsed as YAML."""
    if "=" not in text:
        raise RecipeError(f"recipe override {text!r} must look like key=value, e.g. impair.lr=0.02")
    key, raw = text.split("=", 1)
    return key.strip(), yaml.safe_load(raw)


def recipe_keys() -> list[str]:
    """Every top-level key a recipe accepts: the shared ones and the registered method sections."""
    _register_methods()
    return field_names(Recipe) + sorted(SECTIONS)


# --------------------------------------------------------------------------- registry


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise RecipeError(f"{path}: not valid YAML: {err}") from None
    if data is not None and not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping of keys, got {type(data).__name__}")
    return dict(data or {})


@functools.lru_cache(maxsize=None)
def _load_file(path: str, mtimes: tuple[float, ...]) -> Recipe:
    data = _read_yaml(Path(path))
    data.setdefault("name", Path(path).stem)
    return recipe_from_dict(data, source=str(path))


def _recipe_files() -> dict[str, Path]:
    folder = recipes_dir()
    if not folder.is_dir():
        raise RecipeError(f"recipe folder {folder} does not exist (set ZEROSHOT_UNLEARN_RECIPES)")
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def list_recipes() -> dict[str, tuple[str, ...]]:
    """Registered recipe names with the architecture patterns each one matches."""
    return {name: load_recipe(name).matches for name in _recipe_files()}


def load_recipe(name_or_path: str | os.PathLike, overrides: Mapping[str, Any] | None = None) -> Recipe:
    """Load a recipe by registered name or from a YAML path, then apply ``overrides``."""
    path = Path(name_or_path)
    files = _recipe_files()
    if str(name_or_path) in files:
        path = files[str(name_or_path)]
    elif not (path.suffix in (".yaml", ".yml") and path.is_file()):
        raise RecipeError(f"unknown recipe {str(name_or_path)!r}.{suggest(str(name_or_path), list(files))} "
                          f"Registered recipes: {', '.join(files)}; or pass a path to a .yaml file")
    # A base recipe edited on disk must invalidate the recipes built on it: key the cache on every file.
    mtimes = (path.stat().st_mtime, *(p.stat().st_mtime for p in files.values()))
    return _load_file(str(path), mtimes).replace(overrides)


def resolve_recipe_name(architecture: str) -> str:
    """The registered recipe whose most specific ``matches`` pattern fits ``architecture``."""
    best: tuple[int, str] | None = None
    for name in _recipe_files():
        for pattern in load_recipe(name).matches:
            if fnmatch.fnmatchcase(architecture.lower(), pattern.lower()):
                score = len(pattern.replace("*", ""))
                if best is None or score > best[0]:
                    best = (score, name)
    if best is None:
        raise RecipeError(f"no recipe matches architecture {architecture!r}; pass recipe=NAME or a YAML path "
                          f"(registered: {', '.join(_recipe_files())})")
    return best[1]


def resolve_recipe(recipe: "str | os.PathLike | Recipe | Mapping[str, Any]", architecture: str,
                   overrides: Mapping[str, Any] | None = None) -> Recipe:
    if isinstance(recipe, Recipe):
        return recipe.replace(overrides)
    if isinstance(recipe, Mapping):
        return recipe_from_dict(recipe, source="recipe dict").replace(overrides)
    if isinstance(recipe, (str, os.PathLike)):
        name = resolve_recipe_name(architecture) if str(recipe) == "auto" else recipe
        return load_recipe(name, overrides)
    raise RecipeError(f"recipe must be 'auto', a name, a YAML path, a dict or a Recipe; got {type(recipe).__name__}")
