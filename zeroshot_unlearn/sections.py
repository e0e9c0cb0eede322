"""The sections every recipe shares: the generator, the augmentation, the training phases and the self-check.

A leaf of the package: these settings classes import nothing but :mod:`zeroshot_unlearn.settings`, so
the code that reads them (the engine, the generators, the methods, the self-check) and the recipe loader
(:mod:`zeroshot_unlearn.recipes`) depend on this module and on nothing above it. The settings of every built-in
method live here too, registered as recipe sections at import, so a recipe loads without importing a method
(or torch); a method registered later (``register_method``) adds its own section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .settings import SECTIONS, Settings


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
    """Impressions in all: a request of many classes gets fewer per class (at least 2 where this allows 2 per
    class, else 1), so the check's cost stops growing with the class count."""
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
    patience: int = 0
    """Each impression stops searching once it has reached ``min_confidence`` on this many consecutive steps,
    and the inversion ends when none searches or at ``steps`` (0: every impression runs every step). At 224 px
    the inversion is most of the check's cost, and Lite0's impressions of tench all cross 0.5 within 6 of the
    30 steps (docs/imagenet.md)."""
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
             "lr": (0.0, 10.0, "open"), "bn_prior_weight": (0.0, None), "resolution": (0, 4096), "patience": (0, 10_000),
             "min_confidence": (0.0, 1.0), "min_original_figure": (0.0, 100.0), "max_figure": (0.0, 100.0),
             "max_test_df": (0.0, 100.0)}


__all__ = ["GeneratorConfig", "AugmentConfig", "PhaseConfig", "RetainedPhase", "AntiMemoryPhase",
           "SelfCheckConfig"]


# --------------------------------------------------------------------------- method sections
# The settings of every registered method that has its own, here (no torch) so that loading a recipe
# validates every section it holds without importing a method; each method's module names its class.

@dataclass(frozen=True)
class AmnesiacSettings(RetainedPhase):
    """The retuning after the subtraction: cross-entropy on the retained subset (``epochs: 0``: none)."""

    epochs: float = 1.0


@dataclass(frozen=True)
class DataFreeSettings(Settings):
    """The data-free mode (``retain=None``): generator memories stand in for the retained data."""

    memories_per_epoch: int = 2560
    """Memories one phase epoch draws (``impair.epochs`` x this / batch size = steps)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Recipe keys (dotted) this family sets in data-free mode, on top of the mode's own settings
    (no label cross-entropy, distillation on, 1.5 impair epochs); the caller's overrides still win."""

    memories_per_class: int = 4
    """``train_scope: head``: memories fitted per retained class at the head's input (a bank the phases
    draw from; 4,000 feature vectors for a 1,000-class model, fitted in seconds)."""
    layernorm_prior: bool = False
    """``train_scope: head`` on a head that reads the *pooled* output of a LayerNorm (a Swin's tokens): make the
    memories under that norm's affine alone. Off: such a request is refused (the prior without the map onto the
    norm's outputs lost 6 points of Dr on the trained LayerNorm head it was measured on, docs/imagenet.md); a head
    that reads the norm's output itself (a ViT's class token, ConvNeXt) gets the map and runs either way."""

    rules = {"memories_per_epoch": (1, None), "memories_per_class": (1, None)}


@dataclass(frozen=True)
class GKTSettings(Settings):
    """Gated knowledge transfer (Chundawat et al., IEEE TIFS 2023): no real data at all."""

    iterations: int = 200
    """Pseudo batches (outer iterations), ``student_steps`` student updates each. The paper runs
    thousands (hours on a GPU); 200 is what this project's CPU budget affords."""
    generator_steps: int = 1
    student_steps: int = 10
    batch_size: int = 64
    generator_lr: float = 1e-3
    student_lr: float = 2e-3
    latent_dim: int = 128
    width: int = 32
    threshold: float = 0.01
    """Band-pass gate: pseudo samples whose teacher probability of the forget classes exceeds it are dropped."""
    distill_temperature: float = 1.0
    student_init: str = "random"
    """``random`` (the paper: a student trained from scratch never learns the forget classes) or
    ``original`` (a copy of the model; then nothing but the gate acts on the forget classes)."""
    mask_forget_logits: bool = False
    """Distil from the masked teacher (forget-class logits removed) instead of the full one. Off, as
    published: a pseudo sample that passes the gate still carries up to ``threshold`` of
    forget-class probability, and on ``digits`` {6} that was enough for the class to come back
    after fine-tuning on retained data (rebound Df 94.8; masked 0.0; benchmarks/RESULTS.md §5)."""

    rules = {"iterations": (1, None), "generator_steps": (1, None), "student_steps": (1, None), "batch_size": (1, None),
             "latent_dim": (1, None), "width": (1, None), "generator_lr": (0.0, 10.0, "open"),
             "student_lr": (0.0, 10.0, "open"), "distill_temperature": (0.0, 10.0, "open"),
             "threshold": (0.0, 1.0, "open"), "student_init": ("original", "random")}


@dataclass(frozen=True)
class MaskedKDSettings(RetainedPhase):
    """``masked_kd``: MEASUREMENTS.md's gentle masked distillation (T 8, SGD lr 0.01, 4 epochs)."""

    epochs: float = 4.0
    ce_weight: float = 0.0
    distill_weight: float = 1.0
    distill_temperature: float = 8.0


@dataclass(frozen=True)
class FineTuneSettings(RetainedPhase):
    """``finetune``: cross-entropy on retained images, the same budget as ``masked_kd``."""

    epochs: float = 4.0
    lr: float = 0.02


@dataclass(frozen=True)
class RetrainSettings(RetainedPhase):
    """``retrain``: from scratch on the retained data given."""

    epochs: float = 30.0
    lr: float = 0.05


@dataclass(frozen=True)
class SSDSettings(Settings):
    """Selective Synaptic Dampening (Foster et al., AAAI 2024); no training loop."""

    selection_weight: float = 10.0
    """alpha: a parameter is selected when its forget importance exceeds alpha x its overall importance."""
    dampening: float = 1.0
    """lambda: selected parameters are multiplied by min(lambda x overall / forget importance, 1)."""
    batch_size: int = 64
    """Batch size of the squared-gradient (diagonal Fisher) importance estimate."""

    rules = {"selection_weight": (0.0, None, "open"), "dampening": (0.0, None, "open"), "batch_size": (1, None)}


@dataclass(frozen=True)
class BadTeacherSettings(PhaseConfig):
    """``bad_teacher``: the settings of Chundawat et al., AAAI 2023 (Adam lr 1e-4, one epoch, batch 256, T 1)."""

    epochs: float = 1.0
    lr: float = 1e-4
    optimizer: str = "adam"
    weight_decay: float = 0.0
    schedule: str = "constant"
    batch_size: int = 256
    distill_temperature: float = 1.0

    rules = {"distill_temperature": (0.0, 100.0, "open")}


@dataclass(frozen=True)
class ScrubSettings(PhaseConfig):
    """``scrub``: the official code's small-scale CIFAR settings. ``ce_weight`` is the paper's gamma,
    ``distill_weight`` its alpha."""

    epochs: float = 3.0
    lr: float = 5e-4
    schedule: str = "constant"
    batch_size: int = 64
    forget_batch: int = 32
    ce_weight: float = 0.99
    distill_weight: float = 0.001
    distill_temperature: float = 4.0
    max_epochs: int = 2
    """Epochs (of the first ``epochs``) that begin with a max pass over the forget images ("msteps")."""

    rules = {"forget_batch": (1, None), "ce_weight": (0.0, None), "distill_weight": (0.0, None),
             "distill_temperature": (0.0, 100.0, "open"), "max_epochs": (0, None)}


@dataclass(frozen=True)
class ForgetDataSettings(PhaseConfig):
    """``gradient_ascent`` and ``random_label``: 4 epochs of SGD, lr 0.01, a forget batch per step."""

    epochs: float = 4.0
    forget_batch: int = 32
    """Forget-class images per step."""
    forget_weight: float = 1.0
    """Weight of the forget-image term."""

    rules = {"forget_batch": (1, None), "forget_weight": (0.0, None)}


SECTIONS.update({
    "amnesiac": AmnesiacSettings, "data_free": DataFreeSettings, "gkt": GKTSettings, "masked_kd": MaskedKDSettings,
    "finetune": FineTuneSettings, "retrain": RetrainSettings, "ssd": SSDSettings, "bad_teacher": BadTeacherSettings,
    "scrub": ScrubSettings, "gradient_ascent": ForgetDataSettings, "random_label": ForgetDataSettings,
})
