"""Forgetting methods, registered by name. ``forget_classes(..., method=NAME)`` picks one.

A method is one class in a file (or, for the project's own method, a package: ``anti_memory/``): its data
needs and its ``run``, which returns a ``MethodOutput``; a method with settings of its own names their dataclass
(built-in ones live in ``sections.py``), which registering the method makes a recipe section.
"""

from __future__ import annotations

# Importing each method's module registers it (``@register_method`` on its class).
from .amnesiac import Amnesiac
from .anti_memory import UNSIR, AntiMemory, AntiMemoryDataFree, AntiMemoryFeatures, AntiMemoryWithoutGenerator
from .base import ForgetContext, Method, MethodOutput
from .gkt import GKT
from .logit_mask import LogitMask, LogitMaskMethod
from .masked_kd import FineTune, MaskedKD, Retrain
from .ssd import SSD
from .teachers import SCRUB, BadTeacher
from .with_forget_data import GradientAscent, RandomLabel
from .registry import METHODS, describe_needs, get_method, list_methods, register_method

__all__ = ["ForgetContext", "Method", "MethodOutput", "LogitMask", "METHODS", "register_method", "list_methods", "get_method",
           "describe_needs", "Amnesiac", "UNSIR", "AntiMemory", "AntiMemoryDataFree", "AntiMemoryFeatures",
           "AntiMemoryWithoutGenerator", "GKT", "LogitMaskMethod", "FineTune", "MaskedKD", "Retrain", "SSD", "SCRUB",
           "BadTeacher", "GradientAscent", "RandomLabel"]
