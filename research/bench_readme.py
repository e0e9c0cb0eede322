"""The README of a results folder: every file in it with the command that regenerates it.

A ``bench`` result records its settings (suite, budget, methods, overrides, audit level, requests), so
its command is rebuilt from the file itself; the measurement scripts' results are named here with
their script. Run from the repository root:

    python -m research.bench_readme            # the README of every folder of FOLDERS

``tests/test_benchmarks.py`` checks that every results file of every folder is listed in its README.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from zeroshot_unlearn.harness.bench import row_requested


SCRIPTS = {
    "erasure-bound-": "python -m research.erasure_bound",
    "null-space-": "python -m research.null_space",
    "regrowth-targets-": "python -m research.regrowth_targets",
    "subspace-distillation-": "python -m research.subspace_distillation",
    "frontier-cifar10-resnet20-3-7.png": "python -m research.frontier_plot",
    "budget-sweep.md": "python -m research.budget_table benchmarks/budget/budget-*.json",
    "study-": "python -m research.selfcheck_study (research/selfcheck_study.sh for CIFAR-10)",
    "check-vs-df": "python -m research.selfcheck_table benchmarks/selfcheck/study-*.jsonl",
    "resnet18-1000-classes-224-cpu.json": "python -m research.head_scale /tmp/head-scale, then the command it "
                                          "prints (metrics.json of its output, copied here)",
    "figure-spike.json": "python -m research.data_free_figure --out benchmarks/data-free/figure-spike.json (--part 0/1/2 "
                         "runs one request; the parts were run in three processes and their rows joined)",
    "gpu-h200.json": "python -m research.gpu_check ../shared/data/cifar100 benchmarks/cifar100-resnet20/gpu-h200.json",
    "original-mia.json": "python -m research.imagenet_original_mia ../shared/data "
                         "benchmarks/imagenet-efficientnet_lite0/original-mia.json",
    "families.json": "python -m research.imagenet_families --out benchmarks/imagenet-families/families.json "
                     "--whole-network --models resnet50,resnext26ts,regnetx_016,efficientnet_b0,efficientnetv2_rw_t,"
                     "mobilenetv3_large_100,convnext_tiny,vit_small_patch16_224,swin_tiny_patch4_window7_224,"
                     "torchvision:resnet50",
    "selfcheck-cost.json": "python -m research.selfcheck_cost --out "
                           "benchmarks/imagenet-efficientnet_lite0/selfcheck-cost.json",
    "layernorm-prior.json": "python -m research.layernorm_prior --out benchmarks/imagenet-families/layernorm-prior.json",
    "trace-": "python -m research.bit_identity_trace (this file: its prototype, with the same kernel settings and "
              "stages, written as a table by hand)",
    "memory-": "bash research/imagenet_memory.sh (one forget call per budget, under /usr/bin/time -v; its metrics.json "
               "and the command's output copied here)",
}

FOLDER_SCRIPTS = {
    "audit-per-example": "bash research/audit_per_example.sh (the step of this file; the CIFAR-10 steps pass the "
                         "shipped {3,7} retrain reference with --reference, which a results file does not record)",
    "audit-seeds": "bash research/audit_seeds.sh (the step of this file; resumable)",
    "tench": "python -m research.imagenet_audit --out benchmarks/imagenet-audit/tench",
}
"""Folders whose result files one script writes: every file there is listed with it."""


FOLDERS = {
    "cifar10-resnet20/protocol": ("cifar10-resnet20: the protocol requests", "The default method on the 15 protocol "
                                  "requests of the public CIFAR-10 ResNet20, 2,500 retained images (page: docs/benchmarks.md)."),
    "cifar10-resnet20/audit": ("cifar10-resnet20: the audit columns", "Every method on {3,7} with every audit metric, "
                               "and the default method's audit on the singles and the multi-class requests."),
    "cifar10-resnet20/baselines": ("cifar10-resnet20: the comparison methods", "Every registered method on the "
                                   "protocol requests, split over several runs by method (`zeroshot-unlearn table` "
                                   "reads them together; page: docs/benchmarks.md)."),
    "digits": ("digits: the demo suite", "The shipped digits CNN: the protocol, the audit of {3,7}, GKT with the "
               "masked teacher (page: docs/benchmarks-digits.md)."),
    "digits/baselines": ("digits: the comparison methods", "Every registered method on the digits protocol and the "
                         "budget sweep, split over several runs by method."),
    "amnesiac": ("Amnesiac unlearning", "Amnesiac unlearning (reads the training log) beside the default method on "
                 "digits and a CIFAR-10 MobileNetV3 (page: docs/benchmarks.md)."),
    "depth": ("Forgetting depth", "`depth=representation`: the shipped settings, every mechanism row, the families, the "
              "generalisation requests, the frontier runs and plot (page: docs/depth.md)."),
    "representation-research": ("Representation research", "The measurement scripts behind the representation and "
                                "deep-forgetting issues (RESULTS.md §2 and §11)."),
    "budget": ("Retained budget", "The default method with 200 to 5,000 retained images (`bash research/budget_sweep.sh "
               "SUITE BUDGET...`; page: docs/benchmarks.md)."),
    "families": ("Architecture families", "The default method on this project's CIFAR-10 checkpoints of each recipe "
                 "family (page: docs/benchmarks.md)."),
    "cifar100-resnet20": ("cifar100-resnet20: the CIFAR-100 suite", "The shipped CIFAR-100 ResNet20: PROTOCOL.md's "
                          "requests at 2,500 and 5,000 retained images, the self-check rerun of sea and people, the "
                          "audit of rocket beside its retrain reference, the masked teacher's distillation turned off "
                          "(`research/cifar100_teacher.sh`), the GPU check (page: docs/cifar100.md; "
                          "`bash research/cifar100_suite.sh` runs them in order). `protocol-5000.json` was run before the "
                          "`cifar100_resnet` recipe set `max_epoch_images: 2500`: add `--set max_epoch_images=0` to its "
                          "command to run it as it was."),
    "cifar100-resnet10t": ("cifar100-resnet10t: the timm model on CIFAR-100", "The singles and `vehicles_2` "
                           "(page: docs/cifar100.md)."),
    "many-classes": ("Forgetting most of a model", "8 of the 10 CIFAR-10 classes with `impair_scaling: forget_ratio` "
                     "(90 of 100: ../cifar100-resnet20/; page: docs/cifar100.md)."),
    "head-scale": ("A 1,000-class head at 224 px", "The mechanics of a 1,000-class timm resnet18 at 224 px "
                   "(random weights) forgetting 3 classes, on the CPU (page: docs/cifar100.md)."),
    "imagenet-efficientnet_lite0": ("imagenet-efficientnet_lite0: a real pretrained ImageNet-1k model", "Google's "
                                    "EfficientNet-Lite0 (PyPI weights) on the 20-class ImageNet subset: the five requests "
                                    "with the train/ images of every other subset class, and of the other Imagenette "
                                    "classes only (the dog breeds then unshown); the same requests with the impair cut "
                                    "to 2% of its steps; the data-free mode on the five requests (`data-free.json`); 8,000 against "
                                    "800 retained images (`research/imagenet_lite0.sh`, "
                                    "`research/imagenet_memory.sh`; page: docs/imagenet.md)."),
    "bit-identity": ("The bit-identity guard", "Where the portable set's hashes parted on one machine under each kernel "
                     "setting, stage by stage (issue 45; page: docs/benchmarks.md, \"The bit-identity guard\")."),
    "imagenet-families": ("Every family at 224 px", "One single-class request (tench, the subset's other 19 classes' "
                          "train/ images) on a 1,000-class model of each family at its own input size, random weights, "
                          "`strict=False`: the cost of every phase and the peak memory, beside the whole-network path's "
                          "cost on ResNet-50 from its step counts; and the data-free mode's LayerNorm prior on a trained "
                          "LayerNorm head (issue 46; page: docs/imagenet.md)."),
    "imagenet-audit/tench": ("The audit at 224 px: Lite0 without tench", "The real EfficientNet-Lite0 forgotten by "
                             "every method that needs no forget image and runs at 224 px here, audited in one run at "
                             "ImageNet size with the never-learnt flowers as the band and the head that never had "
                             "tench (issue 47; page: docs/imagenet.md)."),
    "audit-per-example": ("The audit with per-example MIA, intervals and verdicts", "Digits {3,7} (output depth), "
                          "the public CIFAR-10 ResNet20 {3,7} and the CIFAR-100 ResNet20's rocket at both depths, "
                          "each beside the original and its shipped retrain reference, every audit column with its "
                          "95% interval (`bash research/audit_per_example.sh`; tables: `python -m research.audit_table`; "
                          "page: docs/audit.md)."),
    "audit-seeds": ("The audit over three unlearning seeds", "`bench --audit full --seeds 3` on digits {3,7}, the "
                    "public CIFAR-10 ResNet20 {3,7} and the CIFAR-100 ResNet20's rocket: relearn checked step by step "
                    "(median and range of three runs), probe-Df at every backbone stage, the mean and spread over the "
                    "seeds (`bash research/audit_seeds.sh`; tables: `python -m research.audit_seeds_table`; page: "
                    "docs/audit.md)."),
    "data-free": ("The data-free mode off its tuning point", "`anti_memory_data_free` (no image at all) on ResNet32 "
                  "and ResNet44 over four CIFAR-10 protocol requests, ResNet20 {3,7}, and the CIFAR-100 ResNet20 over "
                  "the singles and `vehicles_2` with the shipped generator: as it was (`research/data_free_off_tuning.sh`), "
                  "the candidates (impair 2.5 and 3.5 epochs, anti-memory weight 12) and the `cifar_resnet` family's "
                  "setting, anti-memory weight 16, on every request (`research/data_free_setting.sh`); digits at "
                  "two impair lengths (page: docs/cifar100.md#the-data-free-mode-off-its-tuning-point). Every CIFAR "
                  "file without `impair.anti_memory_weight` in its command ran before the recipe set 16: add `--set "
                  "impair.anti_memory_weight=6` to run it as it was. `cifar100-resnet20-fit600.json`: the generator "
                  "fitted in the request with a fifth of its steps (600), stopped after its first request."),
}
"""Every results folder this script writes the README of: its title and what it holds."""


def bench_command(path: Path, result: dict) -> str:
    """The ``zeroshot-unlearn bench`` call that writes ``path`` with the settings recorded in ``result``."""
    suite = result["suite"]
    argv = ["zeroshot-unlearn", "bench", "--suite", suite]
    if suite != "digits":
        argv += ["--data-dir", "../shared/data"]
    requests = list(dict.fromkeys(tuple(row_requested(row)) for row in result.get("rows", [])))
    argv += ["--requests", ";".join(",".join(map(str, r)) for r in requests)]
    argv += ["--retain-budget", str(result["retain_budget"])]
    methods = [m for m in result.get("methods", []) if m]
    if methods and methods != ["anti_memory"]:
        argv += ["--methods", *methods]
    if result.get("audit"):
        argv += ["--audit", result["audit"]]
    for key, value in (result.get("overrides") or {}).items():
        if key == "depth":
            argv += ["--depth", str(value)]
        else:
            argv += ["--set", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    if result.get("generator"):
        argv += ["--generator", result["generator"]]
    argv += ["--seed", str(result.get("seed", 0)), "--out", str(path)]
    return " ".join(shlex.quote(a) for a in argv)


def command_for(path: Path) -> str:
    for prefix, command in SCRIPTS.items():
        if path.name.startswith(prefix):
            return command
    if path.suffix == ".json":
        result = json.loads(path.read_text(encoding="utf-8"))
        if "suite" in result and "rows" in result:
            return bench_command(path, result)
    if path.suffix == ".md" and path.with_suffix(".json").is_file():
        return f"written with `{path.with_suffix('.json').name}` by the same command"
    return "(not recorded)"


def readme(folder: Path, title: str, about: str) -> str:
    lines = [f"# {title}", "", about, "", "Every file here, with the command that regenerates it (from the repository "
             "root, `../shared` beside it). Written by `python -m research.bench_readme`.", "",
             "| file | command |", "| --- | --- |"]
    script = FOLDER_SCRIPTS.get(folder.name)
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.name != "README.md"):
        command = script or command_for(path.relative_to(Path.cwd()) if path.is_absolute() else path)
        cell = command if command.startswith(("written", "(")) else f"`{command}`"
        lines.append(f"| `{path.name}` | {cell} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", help="folders under benchmarks/ (default: every one of FOLDERS)")
    args = parser.parse_args()
    for name in args.folders or FOLDERS:
        folder = Path("benchmarks") / name
        if not folder.is_dir():
            continue
        title, about = FOLDERS[name]
        (folder / "README.md").write_text(readme(folder, title, about), encoding="utf-8")
        print(f"wrote {folder / 'README.md'}")


if __name__ == "__main__":
    main()
