"""Model zoo: the classic CIFAR ResNets, the digits demo CNN, and any timm model."""

from .describe import describe_model
from .loading import build_model, load_model, read_state_dict
from .registry import ModelEntry, checkpoint_registry, list_models, model_entry, register_model

__all__ = ["build_model", "describe_model", "load_model", "read_state_dict", "list_models", "register_model", "model_entry",
           "ModelEntry", "checkpoint_registry"]
