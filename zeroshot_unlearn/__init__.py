"""zeroshot-unlearn: make a trained image classifier forget whole classes without the forget data."""

__version__ = "0.1.0"

from .api import ForgetPlan, ForgetResult, forget_classes, validate_request  # noqa: E402
from .audit import AuditReport, audit  # noqa: E402
from .errors import (CheckpointError, DataError, DivergenceError, InvalidRequestError, ModelError,  # noqa: E402
                     OutputError, RecipeError, UnlearnError)
from .methods import list_methods  # noqa: E402
from .recipes import Recipe, list_recipes, load_recipe  # noqa: E402
from .zoo import list_models, load_model  # noqa: E402

__all__ = ["forget_classes", "ForgetResult", "validate_request", "ForgetPlan", "audit", "AuditReport", "load_model",
           "list_models", "list_recipes", "load_recipe", "Recipe", "list_methods", "UnlearnError",
           "InvalidRequestError", "RecipeError", "CheckpointError", "DataError", "ModelError", "DivergenceError",
           "OutputError", "__version__"]
