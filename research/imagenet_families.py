"""The cost of one request at 224 px on every family the head-only path serves (issue 46, item 4).

For each model: a 1,000-class ImageNet classifier of that family at 224 px with **random weights** (no real
weights of these families reach this machine; the forgetting quality at 224 px comes from the real Lite0,
docs/imagenet.md), one ``forget_classes(model, ["tench"], retain=...)`` with the train/ images of the other 19
classes of the ImageNet subset, the recipe ``recipe="auto"`` picks (it must be ``imagenet``), ``strict=False``
(random weights cannot be inverted, so the check is inconclusive but still runs its inversion and costs what it
costs). Each model runs in a child process, so the peak memory is that request's alone. Wall and CPU seconds
of the call, the time of every phase, the peak resident memory.

    python -m research.imagenet_families --out benchmarks/imagenet-families/families.json   # resumable
    python -m research.imagenet_families --table benchmarks/imagenet-families/families.json  # docs/imagenet.md's table

Beside it, ``--whole-network`` times the other path on ResNet-50 (recipe ``timm_resnet``): a few generator,
impair and repair steps each, and the call's cost from its step counts (``--whole-network-steps``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

FAMILIES = {
    # name: (how it is built, what it is); the smaller member of a family where its cost would only scale
    "resnet50": ("timm", "ResNet"),
    "resnext26ts": ("timm", "ResNeXt"),
    "regnetx_016": ("timm", "RegNet"),
    "efficientnet_b0": ("timm", "EfficientNet"),
    "efficientnetv2_rw_t": ("timm", "EfficientNetV2"),
    "mobilenetv3_large_100": ("timm", "MobileNetV3"),
    "convnext_tiny": ("timm", "ConvNeXt"),
    "vit_small_patch16_224": ("timm", "ViT/DeiT"),
    "swin_tiny_patch4_window7_224": ("timm", "Swin"),
    "torchvision:resnet50": ("torchvision", "ResNet (torchvision object)"),
}


def build(name: str):
    import timm

    from zeroshot_unlearn import describe_model

    if name.startswith("torchvision:"):
        import torchvision.models as tvm

        arch = name.split(":", 1)[1]
        weights = tvm.get_model_weights(arch).DEFAULT  # the enum member only: its transform, no download
        return describe_model(tvm.get_model(arch, weights=None, num_classes=1000).eval(), weights=weights)
    model = timm.create_model(name, pretrained=False, num_classes=1000).eval()
    model.pretrained_cfg = dict(model.pretrained_cfg, architecture=name, num_classes=1000)
    return model


def one(name: str, data_dir: str, seed: int) -> dict:
    import torch

    from zeroshot_unlearn import forget_classes
    from zeroshot_unlearn.data import load_data

    torch.manual_seed(seed)
    model = build(name)
    data = load_data(Path(data_dir) / "imagenet-subset", model)
    retain = data.train.of_classes([c for c in sorted(set(data.train.y.tolist())) if c != 0])
    start, cpu = time.perf_counter(), time.process_time()
    result = forget_classes(model, ["tench"], retain=retain, seed=seed, progress=False, strict=False)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    changed = [k for k, v in result.model.state_dict().items() if not torch.equal(v, model.state_dict()[k])]
    return {"model": name, "recipe": result.recipe.name, "train_scope": result.recipe.train_scope,
            "retained_images": len(retain), "input_size": list(model.pretrained_cfg["input_size"]),
            "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
            "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "phases_s": {k: round(v, 1) for k, v in result.timings.items()},
            "peak_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2),
            "changed_tensors": changed, "self_check": result.self_check.passed}


def whole_network(data_dir: str, seed: int, steps: int) -> dict:
    """ResNet-50 on the whole-network path (recipe timm_resnet): ``steps`` steps of each phase, timed, and the
    call's cost from the step counts that recipe runs with the same retained images."""
    import math

    import torch

    from zeroshot_unlearn import forget_classes
    from zeroshot_unlearn.data import load_data
    from zeroshot_unlearn.recipes import load_recipe

    torch.manual_seed(seed)
    model = build("resnet50")
    data = load_data(Path(data_dir) / "imagenet-subset", model)
    retain = data.train.of_classes([c for c in sorted(set(data.train.y.tolist())) if c != 0])
    recipe = load_recipe("timm_resnet")
    epoch = max(len(retain), recipe.min_epoch_images)
    full = {"generator": recipe.generator.steps,
            "impair": math.ceil(recipe.impair.epochs * epoch / recipe.impair.batch_size),
            "repair": math.ceil(recipe.repair.epochs * epoch / recipe.repair.batch_size)}
    # A run of `steps` steps per phase: the recipe's epochs scaled down to that many steps.
    overrides = {"generator.steps": steps, "min_epoch_images": 0, "max_epoch_images": 0,
                 "impair.epochs": steps * recipe.impair.batch_size / len(retain),
                 "repair.epochs": steps * recipe.repair.batch_size / len(retain), "self_check.enabled": False}
    start, cpu = time.perf_counter(), time.process_time()
    result = forget_classes(model, ["tench"], retain=retain, recipe="timm_resnet", overrides=overrides, seed=seed,
                            progress=False, strict=False)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    per_step = {k: result.timings[k] / steps for k in full}
    return {"model": "resnet50", "recipe": "timm_resnet", "train_scope": "all", "timed_steps": steps,
            "wall_s_timed": round(wall, 1), "cpu_s_timed": round(cpu, 1),
            "seconds_per_step": {k: round(v, 2) for k, v in per_step.items()}, "recipe_steps": full,
            "call_estimate_s": round(sum(per_step[k] * full[k] for k in full), 0),
            "peak_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2)}


def table(path: Path) -> str:
    """The markdown table of docs/imagenet.md from a results file."""
    rows = json.loads(path.read_text())["rows"]
    lines = ["| family: model | input | params M | call s (CPU s) | phases s | peak GiB |", "| --- |" + " --- |" * 5]
    for row in rows:
        if row.get("train_scope") == "all":
            per = ", ".join(f"{k} {v}" for k, v in row["seconds_per_step"].items())
            lines.append(f"| whole network (`timm_resnet`): resnet50 | 224 | 25.6 | about {row['call_estimate_s']:.0f} "
                         f"(estimated: {row['timed_steps']} steps a phase timed, s per step: {per}; steps "
                         f"{row['recipe_steps']}) | – | {row['peak_gib']} |")
            continue
        family = FAMILIES.get(row["model"], ("", row["model"]))[1]
        phases = ", ".join(f"{k} {v}" for k, v in row["phases_s"].items() if k != "total")
        lines.append(f"| {family}: `{row['model']}` | {row['input_size'][1]} | {row['parameters_m']} | {row['wall_s']} "
                     f"({row['cpu_s']}) | {phases} | {row['peak_gib']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", help="print the markdown table of this results file and stop")
    parser.add_argument("--out")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--models", default=",".join(FAMILIES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--whole-network", action="store_true")
    parser.add_argument("--whole-network-steps", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.table:
        print(table(Path(args.table)))
        return
    if not args.out:
        parser.error("--out is required")
    if args.child:
        row = whole_network(args.data_dir, args.seed, args.whole_network_steps) if args.child == "whole-network" \
            else one(args.child, args.data_dir, args.seed)
        print(json.dumps(row))
        return
    out = Path(args.out)
    rows = json.loads(out.read_text())["rows"] if out.is_file() else []
    done = {(r["model"], r["recipe"]) for r in rows}
    todo = [(m, "imagenet") for m in args.models.split(",")] + ([("whole-network", "timm_resnet")]
                                                                  if args.whole_network else [])
    for name, recipe in todo:
        key = ("resnet50", "timm_resnet") if name == "whole-network" else (name, recipe)
        if key in done:
            continue
        child = subprocess.run([sys.executable, "-m", "research.imagenet_families", "--child", name, "--out", str(out),
                                "--data-dir",
                                args.data_dir, "--seed", str(args.seed), "--whole-network-steps",
                                str(args.whole_network_steps)], capture_output=True, text=True,
                               env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if child.returncode != 0:
            print(f"{name}: failed\n{child.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]))
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps({"suite": "imagenet-families", "data": "imagenet-subset train/ minus tench",
                                   "weights": "random", "rows": rows}, indent=1) + "\n")
        tmp.replace(out)  # written whole after every model: a stopped run resumes from the next one


if __name__ == "__main__":
    main()
