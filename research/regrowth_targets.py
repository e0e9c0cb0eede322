"""Does a richer retained-data signal let a regrown last stage keep Dr while the probe loses the classes?

A measurement behind the representation issue (benchmarks/RESULTS.md, section 2), not part of the
library. Shrink-and-perturb of ``layer3`` followed by training on the retained subset is the one
route measured so far that takes probe-Df near the retrain's (65); what it loses is Dr, because
2,496 images and a quarter of an epoch do not regrow ``layer3``'s retained-class function. Each
configuration here perturbs ``layer3`` the same way (shrink 0.5, noise 0.5, the engine's
``shrink_perturb``), then trains the same number of steps (SGD lr 0.03, cosine, gradient clip 20,
crop + flip) with cross-entropy and masked distillation (T 4), and adds one richer signal:

- CutMix of retained pairs (distillation only, the masked teacher labels the mixed image), which
  shows the student inputs it has never seen, as function-matching distillation does;
- the original's whole penultimate feature vector on retained images (a dense target, 64 values
  per image instead of 8 retained logits);
- the raw retained logits (mean squared error; distillation without the softmax's saturation).

Zero forget images; probe-Df, relearn steps and MIA-forget AUC as PROTOCOL.md defines them.

    python -m research.regrowth_targets --data-dir ../shared/data --forget 3,7 \
        --out benchmarks/representation-research/regrowth-targets-cifar10-resnet20.json

About 4 minutes per configuration on one CPU thread (``--configs 0,2`` runs some).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from research.common import configured_request, relative_distance, save_result, table
from zeroshot_unlearn.audit.metrics import mia_forget, model_outputs, probe_df, relearn_steps
from zeroshot_unlearn.augment import Augment
from zeroshot_unlearn.engine import BatchStream, train_phase
from zeroshot_unlearn.evaluation import forget_retain_accuracy, masked_accuracy
from zeroshot_unlearn.losses import masked_distillation
from zeroshot_unlearn.recipes import PhaseConfig, load_recipe
from zeroshot_unlearn.surgery import HeadInput, shrink_perturb
from zeroshot_unlearn.validate import retained_classes


@dataclass(frozen=True)
class Config:
    name: str
    extra: str = "none"
    """``none``, ``cutmix``, ``features`` or ``logits``."""
    weight: float = 0.0
    steps: int = 78


CONFIGS = (
    Config("cross-entropy + masked distillation"),
    Config("+ CutMix inputs", "cutmix"),
    Config("+ penultimate features, weight 3", "features", 3.0),
    Config("+ retained logits (MSE), weight 0.1", "logits", 0.1),
)


def cutmix(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image with a square from another image of the batch pasted in (area uniform in [0, 1])."""
    out, side = x.clone(), x.shape[-1]
    partner = torch.randperm(len(x), generator=generator)
    for i in range(len(x)):
        size = int(side * float(torch.rand(1, generator=generator)) ** 0.5)
        if size == 0:
            continue
        top, left = (int(v) for v in torch.randint(0, side - size + 1, (2,), generator=generator))
        out[i, :, top:top + size, left:left + size] = x[partner[i], :, top:top + size, left:left + size]
    return out


def main() -> None:
    args, request, configs, df_original = configured_request(__doc__, CONFIGS)
    forget, original, data, retain = request.forget, request.model, request.data, request.retain
    forget_t = torch.tensor(forget)
    retained = retained_classes(original.linear.out_features, forget)
    recipe = load_recipe("cifar_resnet")
    cfg_model = original.pretrained_cfg
    augment = Augment(recipe.augment, cfg_model["mean"], cfg_model["std"], cfg_model["input_size"][1:])

    rows = []
    for config in configs:
        torch.manual_seed(args.seed)
        mixing = torch.Generator().manual_seed(args.seed)
        student = copy.deepcopy(original)
        shrink_perturb(student, ["layer3"], 0.5, 0.5, args.seed + 1)
        stream = BatchStream(retain.x, retain.y, 128, seed=args.seed)

        def step_loss(_step: int) -> torch.Tensor:
            x, y = next(stream)
            x = augment(x)
            if config.extra == "cutmix":
                x = cutmix(x, mixing)
            with torch.no_grad(), HeadInput(original) as teacher_features:
                teacher = original(x)
            with HeadInput(student) as student_features:
                logits = student(x)
            loss = masked_distillation(logits, teacher, forget_t, 4.0)
            if config.extra != "cutmix":  # a mixed image has no single true label
                loss = loss + F.cross_entropy(logits, y)
            if config.extra == "features":
                loss = loss + config.weight * relative_distance(student_features.value, teacher_features.value)
            elif config.extra == "logits":
                loss = loss + config.weight * F.mse_loss(logits[:, retained], teacher[:, retained])
            return loss

        start = time.process_time()
        stats = train_phase(student, PhaseConfig(lr=0.03, grad_clip=20.0), config.steps, step_loss,
                            name=config.name, progress=False)
        cpu = time.process_time() - start
        student.eval()
        train_out, test_out = model_outputs(student, data.train), model_outputs(student, data.test)
        relearn, capped = relearn_steps(student, data.train.of_classes(forget), data.test, forget, 0.5 * df_original,
                                        seed=args.seed)
        rows.append({"config": config.name, "extra": config.extra, "weight": config.weight, "steps": config.steps,
                     "loss_first_last": [round(stats.first_loss, 3), round(stats.last_loss, 3)],
                     "df": round(forget_retain_accuracy(student, data.test, forget)[0], 2),
                     "dr_masked": round(masked_accuracy(student, data.test, forget), 2),
                     "probe_df": round(probe_df(train_out, test_out.of_classes(forget)), 2),
                     "mia_forget_auc": round(mia_forget(train_out.of_classes(forget),
                                                        test_out.of_classes(forget), seed=args.seed).auc, 4),
                     "relearn_steps": relearn, "relearn_capped": capped, "train_cpu_seconds": round(cpu, 1)})
        print(rows[-1], flush=True)

    result = {"model": "cifar10_resnet20", "checkpoint": args.checkpoint, "forget": forget,
              "retained_images": len(retain), "seed": args.seed, "df_original": round(df_original, 2),
              "perturbed": {"scope": ["layer3"], "shrink": 0.5, "perturb": 0.5}, "forget_images_used": 0,
              "runs": rows}
    save_result(args.out, result, table(
        ["configuration", "steps", "Df", "Dr (masked)", "probe-Df", "MIA-forget AUC", "relearn steps"],
        [[r["config"], str(r["steps"]), f"{r['df']:.2f}", f"{r['dr_masked']:.2f}", f"{r['probe_df']:.2f}",
          f"{r['mia_forget_auc']:.3f}", str(r["relearn_steps"])] for r in rows]))


if __name__ == "__main__":
    main()
