"""zeroshot-unlearn: make a trained image classifier forget whole classes without the forget data.

The public names are imported on first use (PEP 562), so ``import zeroshot_unlearn`` and the
command line's ``--help`` do not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

_EXPORTS = {
    "forget_classes": "api", "ForgetResult": "result", "load_generator": "result",
    "plan_request": "plan", "check_request": "plan", "ForgetPlan": "plan", "CheckedRequest": "plan",
    "ModelSpec": "spec",
    "ForgettingWarning": "errors",
    "audit": "audit", "AuditReport": "audit",
    "load_model": "zoo", "list_models": "zoo", "describe_model": "zoo",
    "list_recipes": "recipes", "load_recipe": "recipes", "Recipe": "recipes",
    "list_methods": "methods",
    "UnlearnError": "errors", "InvalidRequestError": "errors", "RecipeError": "errors",
    "CheckpointError": "errors", "DataError": "errors", "ModelError": "errors", "DivergenceError": "errors",
    "OutputError": "errors", "ForgettingFailedError": "errors", "UncheckableModelError": "errors",
}

_DEPRECATED = {"validate_request": "plan"}
"""Old names still served (each warns when called), not advertised in ``__all__``."""

__all__ = [*_EXPORTS, "__version__"]  # noqa: PLE0604 (the keys of _EXPORTS: names, lazily imported)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name) or _DEPRECATED.get(name)
    if module is None:
        raise AttributeError(f"module 'zeroshot_unlearn' has no attribute {name!r}")
    imported = importlib.import_module(f".{module}", __name__)
    # ``audit`` is the audit package itself, which is callable: ``audit(original, unlearned, ...)`` runs it, and
    # ``zeroshot_unlearn.audit.metrics`` and the rest are its modules (no function shadowing the package).
    value = imported if name == module == "audit" else getattr(imported, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
