"""The sections every recipe shares: the generator, the augmentation, the training phases and the self-check.

A leaf of the package: these settings classes import nothing but :mod:`zeroshot_unlearn.settings`, so
the code that reads them (the engine, the generators, the methods, the self-check) depends on this
module and not on the recipe loader (:mod:`zeroshot_unlearn.recipes`), which sits above the methods.
"""

from __future__ import annotations

from dataclasses import dataclass

from .settings import Settings

@dataclass(frozen=True)
class GeneratorConfig(Settings):
    """How anti-memories are synthesised."""

    kind: str = "network"
    """Registered generator name: ``network`` (class-conditional net) or ``noise`` (per-class tensors)."""
    objective: str = "impression"
    """``impression``: samples the original's features recognise as the forget class;
    ``error_max``: maximise the model's loss on the forget label (UNSIR)."""
    steps: int = 60
    """Optimisation steps of the fit (Adam, ``lr``), ``batch_size`` samples each."""
    batch_size: int = 32
    lr: float = 0.01
    latent_dim: int = 32
    """Latent size of the ``network`` generator; ``width`` its base channel count."""
    width: int = 32
    samples_per_class: int = 8
    """Per-class tensors of the ``noise`` generator."""
    bound_weight: float = 0.1
    """Keeps samples bounded (their mean squared magnitude in input space)."""
    diversity_weight: float = 0.1
    """Pushes samples of the same class apart."""
    bn_prior_weight: float = 0.05
    """Match the original's BatchNorm running statistics (the DeepInversion prior); 0 for models without."""

    rules = {"objective": ("error_max", "impression"), "steps": (0, None), "batch_size": (1, None),
             "lr": (0.0, 10.0, "open"), "latent_dim": (1, 4096), "width": (1, 4096), "samples_per_class": (1, 100_000),
             "bound_weight": (0.0, None), "diversity_weight": (0.0, None), "bn_prior_weight": (0.0, None)}


@dataclass(frozen=True)
class AugmentConfig(Settings):
    """kornia augmentations applied to anti-memories (and retained batches) in the loop."""

    crop_padding: int = 4
    flip: bool = True
    color_jitter: float = 0.0
    noise_std: float = 0.0

    rules = {"crop_padding": (0, 64), "color_jitter": (0.0, 1.0), "noise_std": (0.0, 1.0)}


@dataclass(frozen=True)
class PhaseConfig(Settings):
    """One training phase of the shared engine: its length, optimiser, schedule and batch size."""

    epochs: float = 1.0
    """Passes over the retained subset (fractions allowed)."""
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.9
    """SGD's momentum (Adam keeps its own betas)."""
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup: float = 0.0
    """Fraction of the phase's steps over which the learning rate rises linearly from 0 before the
    schedule (with ``cosine``: the one-cycle shape, up then down to 0)."""
    batch_size: int = 128
    grad_clip: float = 5.0

    rules = {"epochs": (0.0, 1000.0), "lr": (0.0, 10.0), "optimizer": ("sgd", "adam"), "momentum": (0.0, 1.0),
             "weight_decay": (0.0, 1.0), "schedule": ("cosine", "constant"), "warmup": (0.0, 1.0),
             "batch_size": (1, None), "grad_clip": (0.0, None)}


@dataclass(frozen=True)
class RetainedPhase(PhaseConfig):
    """A phase on retained images: label cross-entropy plus distillation from the masked teacher."""

    ce_weight: float = 1.0
    """Cross-entropy on the retained labels."""
    distill_weight: float = 0.0
    """KL to the original model with the forget logits removed (masked teacher)."""
    distill_temperature: float = 4.0

    rules = {"ce_weight": (0.0, None), "distill_weight": (0.0, None), "distill_temperature": (0.0, 100.0, "open")}


@dataclass(frozen=True)
class AntiMemoryPhase(RetainedPhase):
    """A phase of the project's methods: retained images, optionally mixed with anti-memories."""

    anti_memory_batch: int = 0
    """Anti-memory samples per step (0 = none; repair must use 0)."""
    anti_memory_weight: float = 1.0
    anti_memory_target: str = "masked_teacher"
    """``masked_teacher``: anti-memories pushed to the masked teacher's retained-class distribution;
    ``forget_label``: labelled with their forget class (UNSIR)."""
    anti_memory_scope: str = "head"
    """Which weights the anti-memory loss trains: ``head`` (features detached, so only the classifier
    learns from synthetic samples and the backbone only from real ones), or ``all``."""
    feature_weight: float = 0.0
    """Representation term on anti-memories, on the student's penultimate features of them (trains
    the backbone, whatever ``anti_memory_scope`` says); ``feature_objective`` says what it asks."""
    feature_objective: str = "prototype"
    """``prototype``: each anti-memory's features pulled to the original model's mean feature of the
    retained class the masked teacher assigns it (SCAR's push to the nearest other class);
    ``contract``: pulled to zero (OPC's one-point contraction); ``disperse``: the features of the
    same forget class pushed apart, their mean pairwise cosine similarity minimised (Spotter's
    intra-class dispersion)."""
    retain_feature_weight: float = 0.0
    """Keep the student's penultimate features of retained images at the original model's."""
    span_weight: float = 0.0
    """Squeeze the retained images' penultimate features into the span of the original head's
    retained-class rows (about the retained mean): the part outside it is penalised, relative to the
    original features' spread. The masked head reads only that span, so retained logits need none
    of the rest; whatever of the forget classes lives outside it goes. No forget data, no generator."""
    span_drop_forget: bool = False
    """Take the forget-class rows' directions out of that span as well (6 of 8 directions left on a
    10-class request for 2 classes)."""
    class_mean_weight: float = 0.0
    """Cross-entropy of a class-mean-feature classifier on retained images (the CMF head of Gao et al.,
    "An Illusion of Unlearning?"): scaled cosine similarity of the student's features to running means
    of its own features per retained class, so the features, not only the linear head, carry the
    retained classes and the head cannot hide what the features keep."""
    recalibrate_bn: bool = False
    """After the phase, re-estimate every BatchNorm layer's running statistics on the retained subset
    (without augmentation), replacing the averages the phase's moving updates left."""
    perturb_scope: tuple[str, ...] = ()
    """Parameter-name prefixes (e.g. ``layer3``) whose weights are shrunk and perturbed when the
    phase starts (shrink-and-perturb, Ash & Adams 2020): the phase then re-grows them from the
    masked teacher and the anti-memories instead of starting from weights that encode the classes."""
    shrink: float = 1.0
    """Factor the weights in ``perturb_scope`` are multiplied by."""
    perturb: float = 0.0
    """Gaussian noise added to them, in units of each tensor's standard deviation."""
    perturb_channels: float = 1.0
    """Fraction of the output channels of each convolution in ``perturb_scope`` that are shrunk and
    perturbed: those the forget classes drive most, ranked on the generator's anti-memories (mean
    absolute activation on anti-memories over that on retained images, the ranking of
    Class-Discriminative Pruning). 1: every weight, no ranking and no generator needed for it."""

    rules = {"anti_memory_batch": (0, None), "anti_memory_weight": (0.0, None),
             "anti_memory_target": ("forget_label", "masked_teacher"), "anti_memory_scope": ("all", "head"),
             "feature_weight": (0.0, None), "feature_objective": ("contract", "disperse", "prototype"),
             "retain_feature_weight": (0.0, None), "span_weight": (0.0, None), "class_mean_weight": (0.0, None),
             "shrink": (0.0, 1.0), "perturb": (0.0, 10.0), "perturb_channels": (0.0, 1.0, "open")}

    def ranks_channels(self) -> bool:
        """Whether the phase ranks output channels before shrink-and-perturb (it needs the generator)."""
        return bool(self.perturb_scope) and self.perturb_channels < 1

    def retained_feature_terms(self) -> list[str]:
        """The keys of the phase's terms that compare with the original's features of retained images."""
        return [key for key in ("feature_weight", "retain_feature_weight", "span_weight", "class_mean_weight")
                if getattr(self, key)]


@dataclass(frozen=True)
class SelfCheckConfig(Settings):
    """How ``forget_classes`` checks its own result before returning it, without forget-class images
    (:mod:`zeroshot_unlearn.selfcheck`).

    The original is inverted into impressions of the forget classes before the run (a model that
    does not recognise ``min_original_figure`` % of its own is refused under ``strict``); after it,
    the run counts as not forgotten when the new model calls more than ``max_figure`` % of the
    original's confident impressions (``figure: inversion``: or of its own inversions) a forget class.
    With an evaluation split, its Df must also stay at most ``max_test_df``.
    """

    enabled: bool = True
    figure: str = "impressions"
    """``impressions``: the share of the original's confident impressions the new model calls a forget class;
    ``inversion``: also the new model's own inversions (catches partial forgetting, fails more runs that did
    forget, a second inversion's cost; measured in benchmarks/selfcheck/)."""
    impressions_per_class: int = 16
    max_impressions: int = 256
    """Impressions in all: a request of many classes gets fewer per class (at least 2), so the check's
    cost stops growing with the class count."""
    steps: int = 30
    """Optimisation steps of each inversion (30: about 1.2 s per forget class on the CIFAR ResNet20, one
    CPU thread; the check inverts twice, the original and the new model)."""
    lr: float = 0.1
    """Adam's learning rate on the inversion's pixels."""
    bn_prior_weight: float = 0.05
    """Weight of the BatchNorm-statistics prior of the inversion (DeepInversion's); 0 turns it off. At
    224 px its sum over EfficientNet-Lite0's 49 BatchNorm layers outweighed the class term, and 60
    steps left the original's impressions at confidence ~0 (docs/imagenet.md)."""
    resolution: int = 0
    """Side of the pixel grid the inversion optimises, upsampled bilinearly to the input size; 0: the
    input size (grayscale: half of it). A coarse grid converges in fewer steps on large inputs."""
    min_confidence: float = 0.9
    """The original's confidence an impression needs to count among its confident impressions."""
    min_original_figure: float = 50.0
    """Below this % of its own impressions called their class with ``min_confidence``, the original
    cannot be inverted (random or untrained weights, or too few ``steps``) and the check can say nothing."""
    max_figure: float = 10.0
    """The figure (percent) above which the run did not forget."""
    max_test_df: float = 2.5
    """Df (percent) on an evaluation split above which the run did not forget, when it has one; between
    the project's goals (a run at Df <= 1 passes, one at Df >= 5 fails)."""

    rules = {"figure": ("impressions", "inversion"), "impressions_per_class": (1, 1024), "max_impressions": (2, 100_000), "steps": (1, 10_000),
             "lr": (0.0, 10.0, "open"), "bn_prior_weight": (0.0, None), "resolution": (0, 4096),
             "min_confidence": (0.0, 1.0), "min_original_figure": (0.0, 100.0), "max_figure": (0.0, 100.0),
             "max_test_df": (0.0, 100.0)}


__all__ = ["GeneratorConfig", "AugmentConfig", "PhaseConfig", "RetainedPhase", "AntiMemoryPhase",
           "SelfCheckConfig"]
