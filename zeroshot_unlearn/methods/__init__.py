"""Forgetting methods, registered by name. ``forget_classes(..., method=NAME)`` picks one.

A method is one file: its class (data needs, loss, schedule) and, when it has settings of its
own, their dataclass, which registering the method makes a recipe section.
"""

from __future__ import annotations

import difflib

from ..errors import InvalidRequestError
from ..settings import SECTIONS
from .amnesiac import Amnesiac
from .anti_memory import UNSIR, AntiMemory, AntiMemoryDataFree, AntiMemoryFeatures, AntiMemoryWithoutGenerator
from .base import ForgetContext, Method, describe_needs
from .gkt import GKT
from .logit_mask import LogitMask, LogitMaskMethod
from .masked_kd import FineTune, MaskedKD, Retrain
from .ssd import SSD
from .teachers import SCRUB, BadTeacher
from .with_forget_data import GradientAscent, RandomLabel

METHODS: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Make ``cls`` available as ``method=cls.name``; its ``settings`` become the recipe section it names."""
    section = cls.section_name()
    if section is not None:
        if section in SECTIONS and SECTIONS[section] is not cls.settings:
            raise ValueError(f"recipe section {section!r} is already declared by another method")
        SECTIONS[section] = cls.settings
    METHODS[cls.name] = cls
    return cls


def list_methods() -> dict[str, str]:
    """Registered method names with the data each one needs."""
    return {name: describe_needs(cls.needs) for name, cls in sorted(METHODS.items())}


def get_method(name: str) -> Method:
    if name not in METHODS:
        close = difflib.get_close_matches(name, list(METHODS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise InvalidRequestError(f"unknown method {name!r}.{hint} Registered methods: {', '.join(sorted(METHODS))}")
    return METHODS[name]()


register_method(AntiMemory)
register_method(AntiMemoryWithoutGenerator)
register_method(AntiMemoryFeatures)
register_method(AntiMemoryDataFree)
register_method(LogitMaskMethod)
register_method(MaskedKD)
register_method(FineTune)
register_method(UNSIR)
register_method(GradientAscent)
register_method(RandomLabel)
register_method(BadTeacher)
register_method(SCRUB)
register_method(SSD)
register_method(GKT)
register_method(Retrain)
register_method(Amnesiac)

__all__ = ["ForgetContext", "Method", "LogitMask", "METHODS", "register_method", "list_methods", "get_method"]
