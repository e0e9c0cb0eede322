"""The project's method and its family: ``anti_memory`` (:mod:`.method`), the terms of its phase loss
(:mod:`.terms`), the channel ranking of its perturbation (:mod:`.channels`), its head-only runs
(:mod:`.head_only`), its data-free mode (:mod:`.data_free`), two ablations (:mod:`.variants`) and UNSIR, the
published baseline it grew from (:mod:`.unsir`). Importing the package registers all of them."""

from .data_free import AntiMemoryDataFree
from .method import AntiMemory, impair_scale
from .terms import ClassMeanHead, FeatureTargets, feature_objective_loss, feature_targets, retained_span
from .unsir import UNSIR
from .variants import AntiMemoryFeatures, AntiMemoryWithoutGenerator

__all__ = ["AntiMemory", "AntiMemoryDataFree", "AntiMemoryFeatures", "AntiMemoryWithoutGenerator", "UNSIR",
           "ClassMeanHead", "FeatureTargets", "feature_objective_loss", "feature_targets", "impair_scale",
           "retained_span"]
