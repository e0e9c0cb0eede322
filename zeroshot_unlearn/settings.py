"""How recipe settings are declared, validated and accounted for.

Every section of a recipe is a frozen dataclass derived from :class:`Settings`; its ``rules``
declare each field's range or choices (checked on construction with :func:`check_range` and
:func:`check_choice`), and :func:`build` turns a mapping (a YAML section) into one, refusing
unknown keys with a suggestion and wrong types with the key's name. A method declares its own section by giving
its settings class (``Method.settings``); :data:`SECTIONS` maps section names to those classes.

A section knows where it sits in its recipe, and while :func:`recording_reads` is active
every field read is recorded under its dotted key (``impair.lr``), so a run can save exactly
the settings it read.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import difflib
import math
import typing
from typing import Any, ClassVar, Iterator, Mapping

from .errors import RecipeError

SECTIONS: dict[str, type["Settings"]] = {}
"""Method sections of a recipe by name (``masked_kd``, ``gkt``, ...), filled as methods register."""

_reads: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar("recipe_reads", default=None)


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
        with not_recording():
            for name, rule in self._all_rules.items():
                value = getattr(self, name)
                if all(isinstance(r, str) for r in rule):
                    check_choice(name, value, rule)
                else:
                    check_range(name, value, rule[0], rule[1], open_low=rule[2:] == ("open",))

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        reads = _reads.get()
        # A nested section is not a setting; its fields record themselves when they are read.
        if reads is not None and name in type(self).__dataclass_fields__ and not isinstance(value, Settings):
            path = object.__getattribute__(self, "__dict__").get("_path")
            if path is not None:
                reads.add(f"{path}{name}")
        return value

    def placed_at(self, path: str) -> "Settings":
        """Mark this section as the one at ``path`` (``"impair."``; ``""`` for the recipe itself)."""
        object.__setattr__(self, "_path", path)
        return self

    def with_values(self, **changes: Any) -> "Settings":
        """``dataclasses.replace`` that keeps the section's place, so reads of the copy are recorded too."""
        with not_recording():  # the copy's validation reads every field
            copy = dataclasses.replace(self, **changes)
        path = object.__getattribute__(self, "__dict__").get("_path")
        return copy.placed_at(path) if path is not None else copy

    def to_dict(self) -> dict[str, Any]:
        with not_recording():
            return dataclasses.asdict(self)


@contextlib.contextmanager
def recording_reads() -> Iterator[set[str]]:
    """Record the dotted key of every recipe setting read inside the block into the yielded set."""
    reads: set[str] = set()
    token = _reads.set(reads)
    try:
        yield reads
    finally:
        _reads.reset(token)


@contextlib.contextmanager
def not_recording() -> Iterator[None]:
    """Reads inside the block are bookkeeping (serialising, comparing), not the run's use of a setting."""
    token = _reads.set(None)
    try:
        yield
    finally:
        _reads.reset(token)


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
