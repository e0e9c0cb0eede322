"""Recipes: the hyper-parameters of a forgetting run, as data.

One YAML file per architecture family lives in the top-level ``recipes/`` folder. A file
lists what differs from its base: ``base: NAME`` (another registered recipe), or the built-in
defaults, which are the ``default`` recipe. Each file is parsed into the frozen
:class:`Recipe`; unknown keys, wrong types and out-of-range values raise
:class:`~zeroshot_unlearn.errors.RecipeError` naming the key. ``recipe="auto"`` picks the
file whose ``matches`` patterns fit the model's architecture name (the most specific wins).

:class:`Recipe` holds what the project's methods share (the generator, the augmentation, the
impair and repair phases, the BatchNorm policy, precision, the self-check); every other method
has its own section (``masked_kd:``, ``gkt:``, ...). All settings classes live in the leaf module
:mod:`zeroshot_unlearn.sections`, which registers the built-in methods' sections, so this module imports
no method and no torch: the methods import it, never the other way round.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from ._resources import recipes_dir
from .errors import RecipeError
# The shared sections, also importable from here as before (their home is the leaf module sections.py).
from .sections import (AntiMemoryPhase, AugmentConfig, GeneratorConfig, PhaseConfig,  # noqa: F401
                       RetainedPhase, SelfCheckConfig)
from .settings import SECTIONS, Settings, build, field_names, suggest

IDENTITY_KEYS = ("name", "description", "matches", "min_input_size")
"""Keys that describe a recipe file rather than configure a run: never inherited through ``base:``."""


@dataclass(frozen=True)
class Recipe(Settings):
    """A complete, resolved recipe. Immutable: overrides produce a new one.

    Its defaults are the ``default`` recipe. Method sections (``masked_kd``, ``gkt``, ...) are in
    ``sections`` when the recipe sets them; :meth:`section` returns any of them, defaults included.
    """

    name: str = "default"
    description: str = ""
    matches: tuple[str, ...] = ("*",)
    min_input_size: int = 0
    """The smallest input side (pixels) this recipe serves; 0: any. ``recipe="auto"`` picks, among the recipes
    whose ``matches`` fit the architecture, one with a ``min_input_size`` the model reaches before any that has
    none: the path is chosen by what the model is (its input size) before its name."""
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
    max_epoch_images: int = 0
    """The schedule's ceiling (0: none): a phase epoch of the project's methods covers at most this many
    images (never fewer than ``min_epoch_images``), so a retained subset larger than the schedule was
    measured with is sampled, not passed over whole, and the call costs what it costs at that size."""
    train_scope: str = "all"
    """Which weights the project's method trains. ``all``: the whole model. ``head``: the classifier head
    alone, on features of the retained images computed once, with anti-memories at the head's input
    (``generator.kind: features``) or an image generator's pool (``zeroshot_unlearn.methods.anti_memory.head_only``):
    forgetting at the output (``depth: output``) for the time of one pass over the retained images, the
    setting of 224-px ImageNet models on a CPU. No augmentation, feature terms or BatchNorm changes."""
    forget_rows: str = "trained"
    """``train_scope: head``: what the forget classes' rows of the head are at the end. ``trained``: as impair and
    repair left them (pushed down by the anti-memories); ``fresh``: drawn as a new head's rows are, so they
    carry nothing of the original's (the audit at 224 px: the trained rows took twice a never-learnt class's
    steps to relearn, which gives the deletion away; docs/imagenet.md)."""
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
             "min_epoch_images": (0, None), "max_epoch_images": (0, None), "min_input_size": (0, None), "depth": ("output", "representation"),
             "impair_scaling": ("forget_ratio", "none"), "forget_rows": ("trained", "fresh"),
             "train_scope": ("all", "head")}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.repair.anti_memory_batch:
            raise RecipeError("repair.anti_memory_batch must be 0: repair trains on retained data only")

    def section(self, name: str) -> Settings:
        """The settings of method section ``name``: as this recipe sets them, or that section's defaults."""
        given = self.sections.get(name)
        return given if given is not None else SECTIONS[name]()

    def __getattr__(self, name: str) -> Settings:
        # ``recipe.masked_kd`` reads like the shared sections; only called when no field has the name.
        if not name.startswith("_") and name in SECTIONS:
            return self.section(name)
        raise AttributeError(f"recipe has no key {name!r}")

    def to_dict(self, keys: set[str] | frozenset[str] | None = None) -> dict[str, Any]:
        """The recipe as YAML-ready data; with ``keys`` (dotted, as :class:`~zeroshot_unlearn.settings.RecordedReads`
        records them) only those settings, plus the recipe's ``name`` and ``method``."""
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


# --------------------------------------------------------------------------- parsing


def recipe_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> Recipe:
    """A :class:`Recipe` from YAML-shaped data; a ``base:`` key starts from that registered recipe."""
    return _parse(data, source)


def _parse(data: Mapping[str, Any], source: str) -> Recipe:
    if not isinstance(data, Mapping):
        raise RecipeError(f"{source}: a recipe must be a mapping of keys, got {type(data).__name__}")
    data = _with_base(dict(data), source, seen=())
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


@dataclass(frozen=True)
class RecipeChoice:
    """Which registered recipe ``recipe="auto"`` picks for a model, and why, in words a run can print."""

    name: str
    reason: str


def choose_recipe(architecture: str, input_size: Sequence[int] = ()) -> RecipeChoice:
    """The registered recipe for a model of ``architecture`` at ``input_size`` (``(C, H, W)``; empty: unknown).

    Among the recipes whose ``matches`` patterns fit the architecture, one whose ``min_input_size`` the model's
    smaller side reaches wins over any without one (the path follows what the model is: at ImageNet size the
    head-only path, whatever the family); then the most specific pattern wins.
    """
    side = min(input_size[1:]) if len(input_size) == 3 else 0
    best: tuple[tuple[int, int], str] | None = None
    by_name: tuple[int, str] | None = None
    for name in _recipe_files():
        recipe = load_recipe(name)
        for pattern in recipe.matches:
            if not fnmatch.fnmatchcase(architecture.lower(), pattern.lower()):
                continue
            score = len(pattern.replace("*", ""))
            if recipe.min_input_size == 0 and (by_name is None or score > by_name[0]):
                by_name = (score, name)
            if recipe.min_input_size and side < recipe.min_input_size:
                continue
            key = (recipe.min_input_size, score)
            if best is None or key > best[0]:
                best = (key, name)
    if best is None:
        raise RecipeError(f"no recipe matches architecture {architecture!r}; pass recipe=NAME or a YAML path "
                          f"(registered: {', '.join(_recipe_files())})")
    (min_size, _), name = best
    if min_size:
        other = f"recipe={by_name[1]!r}" if by_name else "a recipe with train_scope: all"
        reason = (f"input {side} px >= {min_size} px: the head alone is trained, on features computed once (forgetting "
                  f"at the output, the backbone kept); {other} trains the whole network instead, at many times the cost")
    else:
        sized = sorted(n for n in _recipe_files() if load_recipe(n).min_input_size)
        reason = (f"architecture {architecture!r} matches its patterns" + (f" (input {side} px)" if side else "")
                  + (f"; {', '.join(sized)} serve{'s' if len(sized) == 1 else ''} larger inputs" if sized else ""))
    return RecipeChoice(name, reason)


def resolve_recipe_name(architecture: str, input_size: Sequence[int] = ()) -> str:
    """The registered recipe ``recipe="auto"`` picks (:func:`choose_recipe`)."""
    return choose_recipe(architecture, input_size).name


def resolve_recipe(recipe: "str | os.PathLike | Recipe | Mapping[str, Any]", architecture: str,
                   overrides: Mapping[str, Any] | None = None, input_size: Sequence[int] = ()) -> Recipe:
    if isinstance(recipe, Recipe):
        return recipe.replace(overrides)
    if isinstance(recipe, Mapping):
        return recipe_from_dict(recipe, source="recipe dict").replace(overrides)
    if isinstance(recipe, (str, os.PathLike)):
        name = resolve_recipe_name(architecture, input_size) if str(recipe) == "auto" else recipe
        return load_recipe(name, overrides)
    raise RecipeError(f"recipe must be 'auto', a name, a YAML path, a dict or a Recipe; got {type(recipe).__name__}")
