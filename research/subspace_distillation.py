"""Can the backbone be taught to keep only what the retained classes' head reads?

A measurement behind the representation issue (benchmarks/RESULTS.md, section 2), not part of the
library. ``erasure_bound.py`` shows that keeping only the span of the retained classes' classifier
rows (8 of 64 dimensions, no forget data) takes the probe on the original model's features from 88
to 71 at the Dr ceiling, and to 64-67 when one forget row's component inside that span goes too.
That is a projection applied to features; this script asks whether training the backbone towards
it makes the *network* produce such features, in particular on forget-class images it never sees.

Each configuration trains a copy of the original on the retained subset (crop + flip, SGD, cosine,
the shared engine's loop) with: cross-entropy, distillation from the masked teacher, and a feature
term pulling the student's penultimate features to ``c + P (f_original(x) - c)`` (P the projector
onto the subspace, c the retained mean feature). Optionally the same feature term on the
generator's forget-class impressions (BatchNorm in eval mode for them), which excite exactly the
features a retained image does not. Then probe-Df, relearn steps, Df and Dr of PROTOCOL.md.

    python -m research.subspace_distillation --data-dir ../shared/data --forget 3,7 \
        --out benchmarks/representation-research/subspace-distillation-cifar10-resnet20.json

About 4 minutes per configuration on one CPU thread (``--configs 0,2`` runs some, by index in ``CONFIGS``).
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from research.common import (
    complement_within,
    configured_request,
    relative_distance,
    save_result,
    table,
)
from zeroshot_unlearn.audit.metrics import model_outputs, probe_df, relearn_steps
from zeroshot_unlearn.augment import Augment
from zeroshot_unlearn.engine import BatchStream, train_phase
from zeroshot_unlearn.evaluation import forget_retain_accuracy, masked_accuracy
from zeroshot_unlearn.generators import create_generator, fit_generator
from zeroshot_unlearn.losses import masked_distillation
from zeroshot_unlearn.recipes import PhaseConfig, load_recipe
from zeroshot_unlearn.surgery import HeadInput, frozen_batchnorm
from zeroshot_unlearn.validate import retained_classes


@dataclass(frozen=True)
class Config:
    name: str
    epochs: float
    feature_weight: float
    subspace: str = "retained rows"
    """``retained rows``, or ``retained rows minus forget rows`` (their components inside the span removed)."""
    impressions: int = 0
    """Forget-class impressions per step that also get the feature term (0: retained images only)."""
    impression_weight: float = 1.0
    trainable: str = ""
    """Parameter-name prefix the training may change (empty: every parameter)."""


CONFIGS = (
    Config("retained images, 2 epochs", 2.0, 10.0),
    Config("retained images, 6 epochs, stronger feature term", 6.0, 30.0),
    Config("retained images, subspace minus forget rows", 2.0, 30.0, subspace="retained rows minus forget rows"),
    Config("+ impressions, weight 1", 2.0, 10.0, impressions=32, impression_weight=1.0),
    Config("+ impressions, weight 3", 2.0, 10.0, impressions=32, impression_weight=3.0),
    Config("+ impressions, weight 3, layer3 only", 2.0, 10.0, impressions=32, impression_weight=3.0,
           trainable="layer3"),
    Config("+ impressions, weight 10, layer3 only", 2.0, 10.0, impressions=32, impression_weight=10.0,
           trainable="layer3"),
)


def main() -> None:
    args, request, configs, df_original = configured_request(__doc__, CONFIGS)
    forget, original, data, retain = request.forget, request.model, request.data, request.retain
    forget_t = torch.tensor(forget)
    num_classes = original.linear.out_features
    forget_test = data.test.of_classes(forget)
    weights = original.linear.weight.detach()
    retained_rows = weights[retained_classes(num_classes, forget)].T
    with torch.no_grad(), HeadInput(original) as captured:
        original(retain.x)
    centre = captured.value.mean(0)
    bases = {"retained rows": torch.linalg.qr(retained_rows)[0],
             "retained rows minus forget rows": complement_within(
                 retained_rows, [weights[c] - weights.mean(0) for c in forget])}

    recipe = load_recipe("cifar_resnet")
    cfg_model = original.pretrained_cfg
    augment = Augment(recipe.augment, cfg_model["mean"], cfg_model["std"], cfg_model["input_size"][1:])
    generator = None
    if any(c.impressions for c in configs):
        torch.manual_seed(args.seed)
        generator = create_generator(recipe.generator, num_classes=num_classes, input_size=cfg_model["input_size"],
                                     mean=cfg_model["mean"], std=cfg_model["std"], forget=forget)
        fit_generator(generator, original, forget, recipe.generator, augment, progress=False)

    rows = []
    for config in configs:
        torch.manual_seed(args.seed)
        basis = bases[config.subspace]
        projector = basis @ basis.T
        student = copy.deepcopy(original)
        for name, parameter in student.named_parameters():
            parameter.requires_grad_(name.startswith(config.trainable))
        stream = BatchStream(retain.x, retain.y, 128, seed=args.seed)
        steps = stream.steps_for(config.epochs)
        phase = PhaseConfig(epochs=config.epochs, lr=0.03, grad_clip=20.0)

        def features_and_target(x: torch.Tensor, synthetic: bool):
            with torch.no_grad(), HeadInput(original) as teacher_features:
                teacher_logits = original(x)
            target = centre + (teacher_features.value - centre) @ projector
            bn = frozen_batchnorm(student) if synthetic else contextlib.nullcontext()
            with bn, HeadInput(student) as student_features:
                logits = student(x)
            return logits, teacher_logits, relative_distance(student_features.value, target)

        def step_loss(_step: int) -> torch.Tensor:
            x, y = next(stream)
            logits, teacher_logits, distance = features_and_target(augment(x), synthetic=False)
            loss = (F.cross_entropy(logits, y) + masked_distillation(logits, teacher_logits, forget_t, 4.0)
                    + config.feature_weight * distance)
            if config.impressions:
                labels = forget_t[torch.randint(len(forget), (config.impressions,))]
                with torch.no_grad():
                    samples = augment(generator.sample(labels))
                _, _, impression_distance = features_and_target(samples, synthetic=True)
                loss = loss + config.feature_weight * config.impression_weight * impression_distance
            return loss

        start = time.process_time()
        stats = train_phase(student, phase, steps, step_loss, name=config.name)
        cpu = time.process_time() - start
        student.eval()
        df = forget_retain_accuracy(student, data.test, forget)[0]
        dr = masked_accuracy(student, data.test, forget)
        train_out = model_outputs(student, data.train)
        probe = probe_df(train_out, model_outputs(student, forget_test))
        relearn, capped = relearn_steps(student, data.train.of_classes(forget), data.test, forget, 0.5 * df_original,
                                        seed=args.seed)
        rows.append({"config": config.name, "subspace": config.subspace, "dims": basis.shape[1],
                     "epochs": config.epochs, "feature_weight": config.feature_weight,
                     "impressions_per_step": config.impressions, "impression_weight": config.impression_weight,
                     "trainable": config.trainable or "all",
                     "steps": steps, "loss_first_last": [round(stats.first_loss, 3), round(stats.last_loss, 3)],
                     "df": round(df, 2), "dr_masked": round(dr, 2), "probe_df": round(probe, 2),
                     "relearn_steps": relearn, "relearn_capped": capped, "train_cpu_seconds": round(cpu, 1)})
        print(rows[-1], flush=True)

    result = {"model": "cifar10_resnet20", "checkpoint": args.checkpoint, "forget": forget,
              "retained_images": len(retain), "seed": args.seed, "df_original": round(df_original, 2),
              "forget_images_used": 0, "runs": rows}
    save_result(args.out, result, table(
        ["configuration", "subspace (dims)", "epochs", "Df", "Dr (masked)", "probe-Df", "relearn steps"],
        [[r["config"], f"{r['subspace']} ({r['dims']})", f"{r['epochs']:g}", f"{r['df']:.2f}", f"{r['dr_masked']:.2f}",
          f"{r['probe_df']:.2f}", str(r["relearn_steps"])] for r in rows]))


if __name__ == "__main__":
    main()
