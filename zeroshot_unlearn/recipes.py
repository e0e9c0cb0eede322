"""Recipes: the hyper-parameters of a forgetting run, as data.

One YAML file per architecture family lives in the top-level ``recipes/`` folder.
Each is parsed into the frozen :class:`Recipe` dataclass; unknown keys, wrong types
and out-of-range values raise :class:`~zeroshot_unlearn.errors.RecipeError` naming
the key. ``recipe="auto"`` picks the file whose ``matches`` patterns fit the model's
architecture name (the most specific pattern wins).
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import functools
import math
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from ._resources import recipes_dir
from .errors import RecipeError


@dataclass(frozen=True)
class GeneratorConfig:
    """How anti-memories are synthesised."""

    kind: str = "network"
    """Registered generator name: ``network`` (class-conditional net) or ``noise`` (per-class tensors)."""
    objective: str = "error_max"
    """``error_max``: maximise the model's loss on the forget label (UNSIR);
    ``impression``: samples the model recognises as the forget class."""
    steps: int = 40
    batch_size: int = 32
    lr: float = 0.01
    latent_dim: int = 32
    width: int = 32
    samples_per_class: int = 8
    bound_weight: float = 0.1
    diversity_weight: float = 0.1
    bn_prior_weight: float = 0.0

    def __post_init__(self) -> None:
        _check_choice("generator.objective", self.objective, ("error_max", "impression"))
        _check_range("generator.steps", self.steps, 0, None)
        _check_range("generator.batch_size", self.batch_size, 1, None)
        _check_range("generator.lr", self.lr, 0.0, 10.0, open_low=True)
        _check_range("generator.latent_dim", self.latent_dim, 1, 4096)
        _check_range("generator.width", self.width, 1, 4096)
        _check_range("generator.samples_per_class", self.samples_per_class, 1, 100_000)
        for name in ("bound_weight", "diversity_weight", "bn_prior_weight"):
            _check_range(f"generator.{name}", getattr(self, name), 0.0, None)


@dataclass(frozen=True)
class AugmentConfig:
    """kornia augmentations applied to anti-memories (and retained batches) in the loop."""

    crop_padding: int = 4
    flip: bool = True
    color_jitter: float = 0.0
    noise_std: float = 0.0

    def __post_init__(self) -> None:
        _check_range("augment.crop_padding", self.crop_padding, 0, 64)
        _check_range("augment.color_jitter", self.color_jitter, 0.0, 1.0)
        _check_range("augment.noise_std", self.noise_std, 0.0, 1.0)


@dataclass(frozen=True)
class PhaseConfig:
    """One training phase (impair or repair) of the shared engine."""

    epochs: float = 1.0
    """Passes over the retained subset (fractions allowed)."""
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    batch_size: int = 128
    ce_weight: float = 1.0
    """Cross-entropy on the retained labels."""
    distill_weight: float = 0.0
    """KL to the original model with the forget logits removed (masked teacher)."""
    distill_temperature: float = 4.0
    anti_memory_batch: int = 0
    """Anti-memory samples per step (0 = none; repair must use 0)."""
    anti_memory_weight: float = 1.0
    anti_memory_target: str = "forget_label"
    """``forget_label``: anti-memories labelled with their forget class (UNSIR);
    ``masked_teacher``: pushed to the masked teacher's retained-class distribution."""
    anti_memory_scope: str = "all"
    """Which weights the anti-memory loss trains: ``all``, or ``head`` (features detached, so only
    the classifier learns from synthetic samples and the backbone only from real ones)."""
    feature_weight: float = 0.0
    """Representation term on anti-memories: pull the student's penultimate features of each
    anti-memory to the original model's mean feature of the retained class the masked teacher
    assigns it (trains the backbone, whatever ``anti_memory_scope`` says)."""
    retain_feature_weight: float = 0.0
    """Keep the student's penultimate features of retained images at the original model's."""
    perturb_scope: tuple[str, ...] = ()
    """Parameter-name prefixes (e.g. ``layer3``) whose weights are shrunk and perturbed when the
    phase starts (shrink-and-perturb, Ash & Adams 2020): the phase then re-grows them from the
    masked teacher and the anti-memories instead of starting from weights that encode the classes."""
    shrink: float = 1.0
    """Factor the weights in ``perturb_scope`` are multiplied by."""
    perturb: float = 0.0
    """Gaussian noise added to them, in units of each tensor's standard deviation."""
    forget_batch: int = 32
    """Forget-class images per step, for the baselines that read them (``needs`` has ``forget``)."""
    forget_weight: float = 1.0
    """Weight of the forget-image term of those baselines."""
    grad_clip: float = 5.0

    def __post_init__(self) -> None:
        _check_range("forget_batch", self.forget_batch, 1, None)
        _check_range("forget_weight", self.forget_weight, 0.0, None)
        _check_range("feature_weight", self.feature_weight, 0.0, None)
        _check_range("shrink", self.shrink, 0.0, 1.0)
        _check_range("perturb", self.perturb, 0.0, 10.0)
        _check_range("retain_feature_weight", self.retain_feature_weight, 0.0, None)
        _check_choice("anti_memory_scope", self.anti_memory_scope, ("all", "head"))
        _check_range("epochs", self.epochs, 0.0, 1000.0)
        _check_range("lr", self.lr, 0.0, 10.0)
        _check_choice("optimizer", self.optimizer, ("sgd", "adam"))
        _check_range("momentum", self.momentum, 0.0, 1.0)
        _check_range("weight_decay", self.weight_decay, 0.0, 1.0)
        _check_choice("schedule", self.schedule, ("cosine", "constant"))
        _check_range("batch_size", self.batch_size, 1, None)
        _check_range("ce_weight", self.ce_weight, 0.0, None)
        _check_range("distill_weight", self.distill_weight, 0.0, None)
        _check_range("distill_temperature", self.distill_temperature, 0.0, 100.0, open_low=True)
        _check_range("anti_memory_batch", self.anti_memory_batch, 0, None)
        _check_range("anti_memory_weight", self.anti_memory_weight, 0.0, None)
        _check_choice("anti_memory_target", self.anti_memory_target, ("forget_label", "masked_teacher"))
        _check_range("grad_clip", self.grad_clip, 0.0, None)


@dataclass(frozen=True)
class ScrubConfig(PhaseConfig):
    """SCRUB (Kurmanji et al., NeurIPS 2023): alternating max steps on forget images and min steps on
    retained ones. ``ce_weight`` is the paper's gamma, ``distill_weight`` its alpha."""

    max_epochs: int = 2
    """Epochs (of the first ``epochs``) that begin with a max pass over the forget images ("msteps")."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_range("scrub.max_epochs", self.max_epochs, 0, None)


@dataclass(frozen=True)
class SSDConfig:
    """Selective Synaptic Dampening (Foster et al., AAAI 2024); no training loop."""

    selection_weight: float = 10.0
    """alpha: a parameter is selected when its forget importance exceeds alpha x its overall importance."""
    dampening: float = 1.0
    """lambda: selected parameters are multiplied by min(lambda x overall / forget importance, 1)."""
    batch_size: int = 64
    """Batch size of the squared-gradient (diagonal Fisher) importance estimate."""

    def __post_init__(self) -> None:
        _check_range("ssd.selection_weight", self.selection_weight, 0.0, None, open_low=True)
        _check_range("ssd.dampening", self.dampening, 0.0, None, open_low=True)
        _check_range("ssd.batch_size", self.batch_size, 1, None)


@dataclass(frozen=True)
class GKTConfig:
    """Gated knowledge transfer (Chundawat et al., IEEE TIFS 2023): no real data at all."""

    iterations: int = 200
    """Pseudo batches (outer iterations), ``student_steps`` student updates each. The paper runs
    thousands (hours on a GPU); 200 is what this project's CPU budget affords."""
    generator_steps: int = 1
    student_steps: int = 10
    batch_size: int = 64
    generator_lr: float = 1e-3
    student_lr: float = 2e-3
    latent_dim: int = 128
    width: int = 32
    threshold: float = 0.01
    """Band-pass gate: pseudo samples whose teacher probability of the forget classes exceeds it are dropped."""
    distill_temperature: float = 1.0
    student_init: str = "random"
    """``random`` (the paper: a student trained from scratch never learns the forget classes) or
    ``original`` (a copy of the model; then nothing but the gate acts on the forget classes)."""
    mask_forget_logits: bool = False
    """Distil from the masked teacher (forget-class logits removed) instead of the full one. Off, as
    published: a pseudo sample that passes the gate still carries up to ``threshold`` of
    forget-class probability, and on ``digits`` {6} that was enough for the class to come back
    after fine-tuning on retained data (rebound Df 94.8; masked 0.0; benchmarks/RESULTS.md §5)."""

    def __post_init__(self) -> None:
        for name in ("iterations", "generator_steps", "student_steps", "batch_size", "latent_dim", "width"):
            _check_range(f"gkt.{name}", getattr(self, name), 1, None)
        for name in ("generator_lr", "student_lr", "distill_temperature"):
            _check_range(f"gkt.{name}", getattr(self, name), 0.0, 10.0, open_low=True)
        _check_range("gkt.threshold", self.threshold, 0.0, 1.0, open_low=True)
        _check_choice("gkt.student_init", self.student_init, ("original", "random"))


@dataclass(frozen=True)
class DataFreeConfig:
    """The data-free mode (``retain=None``): generator memories stand in for the retained data."""

    memories_per_epoch: int = 2560
    """Memories one phase epoch draws (``impair.epochs`` x this / batch size = steps)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Recipe keys (dotted) this family sets in data-free mode, on top of the mode's own settings
    (no label cross-entropy, distillation on, 1.5 impair epochs); the caller's overrides still win."""

    def __post_init__(self) -> None:
        _check_range("data_free.memories_per_epoch", self.memories_per_epoch, 1, None)


@dataclass(frozen=True)
class SelfCheckConfig:
    """How ``forget_classes`` checks its own result before returning it, without forget-class images.

    The original model is inverted into class impressions of each forget class (DeepInversion-style
    pixel optimisation, independent of the anti-memory generator); those it assigns to their class
    with at least ``min_confidence`` are shown to the new model, and the run counts as not forgotten
    when the new model still calls more than ``max_forget_rate`` % of them a forget class.
    """

    enabled: bool = True
    impressions_per_class: int = 16
    steps: int = 30
    """Optimisation steps of the inversion (30: about 1.2 s per forget class on the CIFAR ResNet20, one
    CPU thread; at 1,000 retained images and the old schedule it read 47% where the test Df was 56)."""
    min_confidence: float = 0.9
    max_forget_rate: float = 10.0
    """Percent of the original's confident impressions the new model may still call a forget class."""
    max_test_df: float = 5.0
    """Df (percent) on a test split above which the command line reports failure, when it has one."""

    def __post_init__(self) -> None:
        _check_range("self_check.impressions_per_class", self.impressions_per_class, 1, 1024)
        _check_range("self_check.steps", self.steps, 1, 10_000)
        _check_range("self_check.min_confidence", self.min_confidence, 0.0, 1.0)
        _check_range("self_check.max_forget_rate", self.max_forget_rate, 0.0, 100.0)
        _check_range("self_check.max_test_df", self.max_test_df, 0.0, 100.0)


@dataclass(frozen=True)
class Recipe:
    """A complete, resolved recipe. Immutable: overrides produce a new one."""

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
    number of optimisation steps and anti-memory batches stays what the recipe was measured with.
    0: epochs of the retained subset as given (UNSIR as published)."""
    self_check: SelfCheckConfig = field(default_factory=SelfCheckConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    impair: PhaseConfig = field(default_factory=lambda: PhaseConfig(anti_memory_batch=32))
    repair: PhaseConfig = field(default_factory=PhaseConfig)
    masked_kd: PhaseConfig = field(default_factory=lambda: PhaseConfig(
        epochs=4, lr=0.01, ce_weight=0.0, distill_weight=1.0, distill_temperature=8.0))
    """The ``masked_kd`` baseline (MEASUREMENTS.md's gentle masked distillation: T 8, SGD lr 0.01, 4 epochs)."""
    finetune: PhaseConfig = field(default_factory=lambda: PhaseConfig(epochs=4, lr=0.02))
    """The ``finetune`` baseline: cross-entropy on retained images, same budget as ``masked_kd``."""
    gradient_ascent: PhaseConfig = field(default_factory=lambda: PhaseConfig(epochs=4, lr=0.01))
    """The ``gradient_ascent`` baseline (reads forget images): retained CE minus forget CE."""
    random_label: PhaseConfig = field(default_factory=lambda: PhaseConfig(epochs=4, lr=0.01))
    """The ``random_label`` baseline (reads forget images): forget images relabelled at random."""
    bad_teacher: PhaseConfig = field(default_factory=lambda: PhaseConfig(
        epochs=1, lr=1e-4, optimizer="adam", weight_decay=0.0, schedule="constant", batch_size=256,
        distill_temperature=1.0))
    """The ``bad_teacher`` baseline (reads forget images): Chundawat et al., AAAI 2023 settings."""
    scrub: ScrubConfig = field(default_factory=lambda: ScrubConfig(
        epochs=3, max_epochs=2, lr=5e-4, weight_decay=5e-4, schedule="constant", batch_size=64, forget_batch=32,
        ce_weight=0.99, distill_weight=0.001, distill_temperature=4.0))
    """The ``scrub`` baseline (reads forget images): the official code's small-scale CIFAR settings."""
    ssd: SSDConfig = field(default_factory=SSDConfig)
    """The ``ssd`` baseline (reads forget images)."""
    gkt: GKTConfig = field(default_factory=GKTConfig)
    """The ``gkt`` baseline (reads no real image)."""
    data_free: DataFreeConfig = field(default_factory=DataFreeConfig)
    """The data-free mode of ``anti_memory`` (``retain=None``)."""
    retrain: PhaseConfig = field(default_factory=lambda: PhaseConfig(epochs=30, lr=0.05))
    """The ``retrain`` reference: from scratch on the retained data it is given."""
    amortised: dict[str, Any] = field(default_factory=dict)
    """Overrides (dotted keys, e.g. ``impair.epochs``) for the default method when ``forget_classes``
    gets a pre-fitted generator: the request pays no generator fit, and its schedule can be the
    shorter one measured with that generator. The caller's overrides still win."""

    def __post_init__(self) -> None:
        _check_choice("bn_policy", self.bn_policy, ("real_only", "frozen"))
        _check_choice("precision", self.precision, ("fp32", "bf16"))
        _check_range("min_per_class", self.min_per_class, 1, None)
        _check_range("min_epoch_images", self.min_epoch_images, 0, None)
        for name in ("repair", "masked_kd", "finetune", "gradient_ascent", "random_label", "bad_teacher", "scrub",
                     "retrain"):
            if getattr(self, name).anti_memory_batch:
                raise RecipeError(f"{name}.anti_memory_batch must be 0: {name} trains on retained data only")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["matches"] = list(self.matches)
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def replace(self, overrides: Mapping[str, Any] | None) -> "Recipe":
        """A new recipe with nested ``overrides`` applied (validated like a file)."""
        if not overrides:
            return self
        return recipe_from_dict(_deep_merge(self.to_dict(), _expand_dotted(overrides)), source="overrides")


# --------------------------------------------------------------------------- parsing


def _check_range(name: str, value, low, high, open_low: bool = False) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise RecipeError(f"recipe key '{name}' = {value!r} must be a finite number")
    if low is not None and (value < low or (open_low and value == low)):
        raise RecipeError(f"recipe key '{name}' = {value!r} is out of range: must be {'>' if open_low else '>='} {low}")
    if high is not None and value > high:
        raise RecipeError(f"recipe key '{name}' = {value!r} is out of range: must be <= {high}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise RecipeError(f"recipe key '{name}' = {value!r} is not valid; choose one of: {', '.join(choices)}")


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def _coerce(name: str, value: Any, annotation: Any, source: str) -> Any:
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, Mapping):
            raise RecipeError(f"{source}: recipe key '{name}' must be a mapping, got {type(value).__name__}")
        return _build(annotation, value, source, prefix=f"{name}.")
    if annotation is bool:
        if not isinstance(value, bool):
            raise RecipeError(f"{source}: recipe key '{name}' must be true/false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(f"{source}: recipe key '{name}' must be an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, str):  # YAML 1.1 reads 3e-4 (no dot) as a string; the user means the number
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecipeError(f"{source}: recipe key '{name}' must be a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise RecipeError(f"{source}: recipe key '{name}' must be a string, got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise RecipeError(f"{source}: recipe key '{name}' must be a mapping of recipe keys, got {value!r}")
        return dict(value)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise RecipeError(f"{source}: recipe key '{name}' must be a list of strings, got {value!r}")
        return tuple(value)
    raise RecipeError(f"{source}: unsupported recipe key '{name}'")  # pragma: no cover


def _build(cls, data: Mapping[str, Any], source: str, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in valid:
            raise RecipeError(f"{source}: unknown recipe key '{prefix}{key}'.{_suggest(str(key), valid)} "
                              f"Valid keys here: {', '.join(valid)}")
        kwargs[key] = _coerce(prefix + key, value, hints[key], source)
    try:
        return cls(**kwargs)
    except RecipeError as err:
        raise RecipeError(f"{source}: {err}") from None


def recipe_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> Recipe:
    if not isinstance(data, Mapping):
        raise RecipeError(f"{source}: a recipe must be a mapping of keys, got {type(data).__name__}")
    merged = dict(data)
    # A phase given partially keeps the other defaults of that phase.
    recipe = _build(Recipe, merged, source)
    # The conditional sections' keys and values must make a valid recipe too.
    for section, extra in (("amortised", recipe.amortised), ("data_free.overrides", recipe.data_free.overrides)):
        if not extra:
            continue
        expanded = _expand_dotted(extra)
        if "amortised" in expanded or "overrides" in expanded.get("data_free", {}):
            raise RecipeError(f"{source}: '{section}' cannot set 'amortised' or 'data_free.overrides'")
        plain = recipe.to_dict()
        plain["amortised"] = {}
        plain["data_free"] = {**plain["data_free"], "overrides": {}}
        _build(Recipe, _deep_merge(plain, expanded), f"{source} ({section} section)")
    return recipe


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


# --------------------------------------------------------------------------- registry


@functools.lru_cache(maxsize=None)
def _load_file(path: str, mtime: float) -> Recipe:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise RecipeError(f"{path}: not valid YAML: {err}") from None
    data = dict(data or {})
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
        raise RecipeError(f"unknown recipe {str(name_or_path)!r}.{_suggest(str(name_or_path), list(files))} "
                          f"Registered recipes: {', '.join(files)}; or pass a path to a .yaml file")
    return _load_file(str(path), path.stat().st_mtime).replace(overrides)


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
