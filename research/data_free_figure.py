"""Issue 30 item 7 (spike): is there a figure, computed without any image, that tells the data-free
mode's misses from its passes? The self-check's default figure read 0.0 on runs left at Df 1.6-6.7.

For each (suite, request, anti-memory weight) the data-free mode runs as `bench` runs it (seed 0),
then beside the test Df this records candidate figures, each in percent:

- ``impressions``: the self-check's own figure (what the run reported).
- ``fresh_generator``: a generator fitted on the original for the forget classes with another seed
  than the run's (the run trained against its own generator's samples); the share of its samples the
  original calls their class (probability >= 0.5) that the new model calls a forget class.
- ``noisy_impressions``: the original's confident impressions (16 a class, 30 inversion steps) with
  Gaussian noise (std 0.1 in pixels) and a 3x3 blur; the share the new model still calls a forget class.
- ``forget_probability``: the new model's mean probability of the forget classes on the original's
  confident impressions, over the original's own.

    OMP_NUM_THREADS=1 python -m research.data_free_figure --out benchmarks/data-free/figure-spike.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from zeroshot_unlearn import forget_classes
from zeroshot_unlearn.inversion import invert_classes
from zeroshot_unlearn.augment import Augment
from zeroshot_unlearn.evaluation import forget_retain_accuracy
from zeroshot_unlearn.generators import create_generator, fit_generator
from zeroshot_unlearn.harness.bench import SUITES
from zeroshot_unlearn.recipes import resolve_recipe

RUNS = [("cifar10-resnet32", [3, 7]), ("cifar10-resnet32", [1, 9]), ("cifar10-resnet44", [3, 7])]
WEIGHTS = (6.0, 16.0)


@torch.no_grad()
def _probs(model, x):
    return F.softmax(model.eval()(x), 1)


def figures(original, student, forget, recipe, cfg) -> dict[str, float]:
    mean, std, size = cfg["mean"], cfg["std"], tuple(cfg["input_size"])
    forget_t = torch.tensor(forget)
    augment = Augment(recipe.augment, mean, std, size[1:])  # also the pixels -> model input normalisation
    pixels = invert_classes(original, forget, size, mean, std, per_class=16, steps=30, seed=1234)
    labels = forget_t.repeat_interleave(16)
    x = augment.normalise(pixels)
    confident = _probs(original, x).gather(1, labels[:, None]).squeeze(1) >= 0.5
    x = x[confident]
    called = lambda m, inputs: torch.isin(_probs(m, inputs).argmax(1), forget_t).float().mean().item() * 100
    noisy = (pixels[confident] + 0.1 * torch.randn_like(pixels[confident])).clamp(0, 1)
    noisy = F.avg_pool2d(noisy, 3, stride=1, padding=1)
    x_noisy = augment.normalise(noisy)
    keep = torch.isin(_probs(original, x_noisy).argmax(1), forget_t)
    p_student = _probs(student, x)[:, forget_t].sum(1).mean().item()
    p_original = _probs(original, x)[:, forget_t].sum(1).mean().item()
    torch.manual_seed(4321)
    generator = create_generator(recipe.generator, num_classes=cfg["num_classes"], input_size=size, mean=mean,
                                 std=std, forget=forget)
    fit_generator(generator, original, forget, recipe.generator, augment, progress=False)
    with torch.no_grad():
        gen_labels = forget_t.repeat_interleave(64)
        samples = generator.sample(gen_labels)
    recognised = _probs(original, samples).gather(1, gen_labels[:, None]).squeeze(1) >= 0.5
    return {"noisy_impressions": round(called(student, x_noisy[keep]), 2) if keep.any() else None,
            "forget_probability": round(100 * p_student / max(p_original, 1e-8), 2),
            "fresh_generator": round(called(student, samples[recognised]), 2) if recognised.any() else None,
            "impressions_kept": int(confident.sum()), "fresh_samples_kept": int(recognised.sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--out", required=True)
    parser.add_argument("--part", type=int, choices=(0, 1, 2), default=None, help="one of the three requests only")
    args = parser.parse_args()
    out = Path(args.out)
    rows = json.loads(out.read_text())["rows"] if out.is_file() else []
    for index, (suite_name, forget) in enumerate(RUNS):
        if args.part is not None and index != args.part:
            continue
        model, data = SUITES[suite_name].load(args.data_dir)
        cfg = {**model.pretrained_cfg, "num_classes": 10}
        recipe = resolve_recipe("auto", cfg["architecture"], input_size=tuple(cfg["input_size"]))
        for weight in WEIGHTS:
            if any(r["suite"] == suite_name and r["classes"] == forget and r["weight"] == weight for r in rows):
                continue
            result = forget_classes(model, forget, retain=None, seed=0, progress=False, strict=False,
                                    overrides={"impair.anti_memory_weight": weight})
            df, dr = forget_retain_accuracy(result.model, data.test, forget)
            row = {"suite": suite_name, "classes": forget, "weight": weight, "df": round(df, 2), "dr": round(dr, 2),
                   "impressions": result.self_check.figure,
                   **figures(model, result.model, forget, recipe, cfg)}
            print(row, flush=True)
            rows.append(row)
            out.write_text(json.dumps({"meaning": __doc__, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
