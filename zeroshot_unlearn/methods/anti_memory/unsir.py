"""UNSIR as published: a comparison baseline on the project's impair/repair engine."""

from __future__ import annotations

from ..registry import register_method
from .method import AntiMemory


@register_method
class UNSIR(AntiMemory):
    """UNSIR as published (Tarun et al., "Fast Yet Effective Machine Unlearning", IEEE TNNLS 2023):
    one learnable error-maximising noise tensor bank per forget class (loss maximised at the forget
    label, with an L2 bound), then one impair epoch on noise labelled with its forget class plus
    retained data (Adam, lr 0.02) and one repair epoch on retained data (Adam, lr 0.01), cross-entropy
    only. One fix to the public notebook: each noise tensor carries its own forget class (the
    notebook labels all noise with class 0, which breaks multi-class requests)."""

    name = "unsir"
    summary = "UNSIR as published"
    uses_generator = False  # its own per-request noise tensors, as published
    data_free_variant = None
    recipe_overrides = {
        "min_epoch_images": 0,  # one pass over the retained subset, whatever its size
        "impair_scaling": "none",  # one impair epoch, as published, whatever the request
        "generator": {"kind": "noise", "objective": "error_max", "steps": 40, "lr": 0.1, "bound_weight": 0.1,
                      "diversity_weight": 0.0, "bn_prior_weight": 0.0},
        "impair": {"epochs": 1.0, "lr": 0.02, "optimizer": "adam", "weight_decay": 0.0, "schedule": "constant",
                   "ce_weight": 1.0, "distill_weight": 0.0, "anti_memory_batch": 64, "anti_memory_weight": 1.0,
                   "anti_memory_target": "forget_label", "anti_memory_scope": "all", "feature_weight": 0.0,
                   "perturb_scope": []},
        "repair": {"epochs": 1.0, "lr": 0.01, "optimizer": "adam", "weight_decay": 0.0, "schedule": "constant",
                   "ce_weight": 1.0, "distill_weight": 0.0, "perturb_scope": []},
    }
