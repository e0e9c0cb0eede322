"""The method registry: ``@register_method`` on each method class makes it ``forget_classes(..., method=NAME)``."""

from __future__ import annotations

import difflib
from typing import Any, ClassVar, Protocol, Sequence, TypeVar

from ..errors import InvalidRequestError
from ..settings import SECTIONS


class MethodClass(Protocol):
    """What the registry reads of a method class (:class:`~zeroshot_unlearn.methods.base.Method` has it all):
    the registry is a leaf, which the methods import and which imports none of them."""

    name: ClassVar[str]
    needs: ClassVar[frozenset[str]]
    settings: ClassVar[Any]

    @classmethod
    def section_name(cls) -> str | None: ...


M = TypeVar("M", bound=MethodClass)

METHODS: dict[str, Any] = {}
"""Registered method classes by name."""


def register_method(cls: type[M]) -> type[M]:
    """Make ``cls`` available as ``method=cls.name``; its ``settings`` become the recipe section it names."""
    section = cls.section_name()
    if section is not None:
        if section in SECTIONS and SECTIONS[section] is not cls.settings:
            raise InvalidRequestError(f"method {cls.name!r} declares recipe section {section!r}, which another method "
                                      "already declares; give its settings another section name (Method.section)")
        SECTIONS[section] = cls.settings
    METHODS[cls.name] = cls
    return cls


def describe_needs(needs: Sequence[str]) -> str:
    return ", ".join(sorted(needs)) or "none"


def list_methods() -> dict[str, str]:
    """Registered method names with the data each one needs."""
    return {name: describe_needs(cls.needs) for name, cls in sorted(METHODS.items())}


def get_method(name: str) -> Any:
    """A new instance of the method registered as ``name`` (a :class:`~zeroshot_unlearn.methods.base.Method`)."""
    if name not in METHODS:
        close = difflib.get_close_matches(name, list(METHODS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise InvalidRequestError(f"unknown method {name!r}.{hint} Registered methods: {', '.join(sorted(METHODS))}")
    return METHODS[name]()
