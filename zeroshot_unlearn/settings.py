"""How recipe settings are declared, validated and accounted for.

Every section of a recipe is a frozen dataclass derived from :class:`Settings`; its ``rules``
declare each field's range or choices (checked on construction with :func:`check_range` and
:func:`check_choice`), and :func:`build` turns a mapping (a YAML section) into one, refusing
unknown keys with a suggestion and wrong types with the key's name. A method declares its own section by giving
its settings class (``Method.settings``); :data:`SECTIONS` maps section names to those classes.

The settings are plain frozen dataclasses. Which of them a run read is recorded by reading through a
:class:`RecordedReads` view, which the plan and the run put explicitly around the recipe they read: every
setting read through it is added to a set under its dotted key (``impair.lr``), so a run can save exactly
the settings it read.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import inspect
import math
import types
import typing
from typing import Any, ClassVar, Mapping

from .errors import RecipeError

SECTIONS: dict[str, type["Settings"]] = {}
"""Method sections of a recipe by name (``masked_kd``, ``gkt``, ...), filled as methods register."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Base of every recipe section: a frozen dataclass whose ``rules`` say what each field accepts.

    ``rules`` maps a field to ``(low, high)`` (inclusive; None = unbounded), ``(low, high, "open")``
    (low excluded) or a tuple of allowed strings; a subclass's rules add to its bases'. Checks that
    need more than one field go in ``__post_init__`` (calling ``super().__post_init__()``).
    """

    rules: ClassVar[Mapping[str, tuple]] = {}
    _all_rules: ClassVar[Mapping[str, tuple]] = {}

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls._all_rules = {**cls._all_rules, **cls.__dict__.get("rules", {})}  # the bases' rules, then its own

    def __post_init__(self) -> None:
        for name, rule in self._all_rules.items():
            value = getattr(self, name)
            if all(isinstance(r, str) for r in rule):
                check_choice(name, value, rule)
            else:
                check_range(name, value, rule[0], rule[1], open_low=rule[2:] == ("open",))

    def with_values(self, **changes: Any) -> "Settings":
        """A copy with ``changes`` (validated like the original)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class RecordedReads:
    """A read-only view of a recipe or one of its sections that adds the dotted key of every setting read
    through it to ``reads`` (``impair.lr``; a section read gives a view of the section, so its settings are
    recorded when they are read, not the section).

    The plan reads the recipe through one while it checks a request and the run hands one to the method,
    so ``recipe.yaml`` holds exactly the settings a run read. Methods of the settings classes run on the view
    (their reads are recorded too; a zero-argument ``super()`` in such a method would fail on the view, and none
    uses one); serialising (:meth:`to_dict`) and copying (:meth:`replace`, :meth:`with_values`) are bookkeeping,
    not reads. It is not a dataclass and not an instance of the settings class: code that needs either takes
    :meth:`unwrap`.
    """

    __slots__ = ("_settings", "_reads", "_path")

    def __init__(self, settings: Settings, reads: set[str], path: str = ""):
        object.__setattr__(self, "_settings", settings)
        object.__setattr__(self, "_reads", reads)
        object.__setattr__(self, "_path", path)

    def unwrap(self) -> Settings:
        """The settings object itself (reads of it are not recorded)."""
        return self._settings

    def _view(self, settings: Settings, name: str = "") -> "RecordedReads":
        return RecordedReads(settings, self._reads, f"{self._path}{name}." if name else self._path)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # own slots not yet set (copy, unpickling) and dunders: never a setting
            raise AttributeError(name)
        settings = self._settings
        value = getattr(settings, name)
        if isinstance(value, Settings):
            return self._view(value, name)
        field = settings.__dataclass_fields__.get(name)
        if field is not None:
            if field.metadata.get("yaml", True):
                self._reads.add(f"{self._path}{name}")
            return value
        member = inspect.getattr_static(type(settings), name, None)
        if isinstance(member, property):
            return member.fget(self)
        if inspect.isfunction(member):
            return types.MethodType(member, self)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"recipe settings are read-only: cannot assign to {name!r}")

    def section(self, name: str) -> "RecordedReads":
        """The method section ``name`` (``Recipe.section``), through the view."""
        return RecordedReads(self._settings.section(name), self._reads, f"{name}.")

    def with_values(self, **changes: Any) -> "RecordedReads":
        return self._view(self._settings.with_values(**changes))

    def replace(self, overrides: Mapping[str, Any] | None) -> "RecordedReads":
        """``Recipe.replace``, through the view (the new recipe's reads go to the same set)."""
        return self._view(self._settings.replace(overrides))

    def to_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._settings.to_dict(*args, **kwargs)

    def __copy__(self) -> "RecordedReads":
        return RecordedReads(self._settings, self._reads, self._path)

    def __deepcopy__(self, memo: dict) -> "RecordedReads":  # a copy made during a run still records into its set
        return RecordedReads(copy.deepcopy(self._settings, memo), self._reads, self._path)

    def __reduce__(self):
        return RecordedReads, (self._settings, set(self._reads), self._path)

    def __repr__(self) -> str:
        return f"RecordedReads({self._settings!r})"


# --------------------------------------------------------------------------- validation


class SettingError(RecipeError):
    """A value outside what its key accepts. :func:`build` adds where the key sits (``impair.``)."""

    def __init__(self, key: str, problem: str):
        self.key, self.problem = key, problem
        super().__init__(f"recipe key '{key}' {problem}")


def check_range(name: str, value, low, high, open_low: bool = False) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise SettingError(name, f"= {value!r} must be a finite number")
    if low is not None and (value < low or (open_low and value == low)):
        raise SettingError(name, f"= {value!r} is out of range: must be {'>' if open_low else '>='} {low}")
    if high is not None and value > high:
        raise SettingError(name, f"= {value!r} is out of range: must be <= {high}")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SettingError(name, f"= {value!r} is not valid; choose one of: {', '.join(choices)}")


def suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def _coerce(name: str, value: Any, annotation: Any, source: str, default: Any = None) -> Any:
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, Mapping):
            raise RecipeError(f"{source}: recipe key '{name}' must be a mapping, got {type(value).__name__}")
        if isinstance(default, Settings):  # a section given in part keeps the rest of its own defaults
            value = {**default.to_dict(), **value}
        return build(annotation, value, source, prefix=f"{name}.")
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


def field_names(cls: type) -> list[str]:
    """The keys a recipe section accepts (fields marked ``metadata={"yaml": False}`` are not keys)."""
    return [f.name for f in dataclasses.fields(cls) if f.init and f.metadata.get("yaml", True)]


def build(cls: type, data: Mapping[str, Any], source: str, prefix: str = "", *, extra: tuple[str, ...] | list[str] = ()):
    """``cls(**data)`` with every key checked: unknown keys (``extra`` are valid too, handled by the
    caller), types and, through ``cls.__post_init__``, values; errors name ``source`` and the key."""
    hints = typing.get_type_hints(cls)
    valid = field_names(cls)
    factories = {f.name: f.default_factory for f in dataclasses.fields(cls)
                 if f.default_factory is not dataclasses.MISSING}
    kwargs = {}
    for key, value in data.items():
        if key not in valid:
            choices = valid + list(extra)
            raise RecipeError(f"{source}: unknown recipe key '{prefix}{key}'.{suggest(str(key), choices)} "
                              f"Valid keys here: {', '.join(choices)}")
        default = factories[key]() if key in factories else None
        kwargs[key] = _coerce(prefix + key, value, hints[key], source, default)
    try:
        return cls(**kwargs)
    except SettingError as err:
        key = err.key if err.key.startswith(prefix) else prefix + err.key
        raise RecipeError(f"{source}: recipe key '{key}' {err.problem}") from None
    except RecipeError as err:
        raise RecipeError(f"{source}: {err}") from None
