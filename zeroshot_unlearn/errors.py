"""Exception types. Every problem the library detects is an :class:`UnlearnError`.

The subclasses say which input was wrong, so callers (and the CLI's exit codes) can
tell a bad request from a bad file from a failed run.
"""

from __future__ import annotations


class UnlearnError(Exception):
    """Base class of every error raised on purpose by zeroshot-unlearn."""


class InvalidRequestError(UnlearnError, ValueError):
    """The forget request itself is wrong (classes, method, arguments)."""


class RecipeError(UnlearnError, ValueError):
    """A recipe has an unknown key, a wrong type or an out-of-range value."""


class CheckpointError(UnlearnError):
    """A checkpoint is missing, corrupt, untrusted or does not fit the architecture."""


class DataError(UnlearnError, ValueError):
    """A dataset has the wrong content, shape, dtype or labels for the request."""


class ModelError(UnlearnError, ValueError):
    """The model cannot be used as given (no classifier head, precision, device)."""


class UncheckableModelError(ModelError):
    """The self-check cannot judge a run on this model: the original does not recognise its own classes
    (untrained or random weights, or an inversion too short for it). Raised before any work."""


class DivergenceError(UnlearnError, RuntimeError):
    """Training produced NaN/Inf; the phase was rolled back and the run stopped."""


class OutputError(UnlearnError):
    """An output location cannot be written without losing something."""


class ForgettingFailedError(UnlearnError, RuntimeError):
    """The run finished but its self-check says the classes were not forgotten.

    ``result`` holds the :class:`~zeroshot_unlearn.result.ForgetResult` anyway, for inspection;
    ``forget_classes(..., strict=False)`` returns it instead of raising.
    """

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class ForgettingWarning(UserWarning):
    """``strict=False``: the run's self-check says the classes were not forgotten, or cannot judge the model."""
