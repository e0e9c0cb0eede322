"""Does the self-check's figure track the test-split Df? Candidate statistics measured on many runs.

Every run forgets with the self-check off; then the test Df/Dr are measured and, beside them, every
candidate statistic a check could compute without forget-class images (each timed):

- ``orig_confident``: the check as shipped until now: the original's impressions of the forget classes
  (inverted from noise) that it calls its class with confidence >= 0.9; % the new model calls a forget class.
- ``orig_weak``: the same with a short inversion (half the steps) and a confidence bar of 0.5.
- ``orig_mass``: the new model's mean forget-class probability on the confident impressions (x100).
- ``self_inversion``: the *new* model inverted towards the forget classes from noise, with the same
  steps: % of those images it calls a forget class. A class the model still holds is found again.
- ``retained_mass``: the new model's forget-class probability on the retained images, over the original's.

Rows are appended to ``--out`` (JSON lines) as they finish; a rerun skips the rows already there.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from zeroshot_unlearn import forget_classes, load_model
from zeroshot_unlearn.inversion import invert_classes
from zeroshot_unlearn.data import load_data, retained_subset
from zeroshot_unlearn.evaluation import forget_retain_accuracy
from zeroshot_unlearn.methods import get_method
from zeroshot_unlearn.recipes import resolve_recipe

PROTOCOL_REQUESTS = [[c] for c in range(10)] + [[3, 7], [0, 2], [1, 9], [4, 5], [0, 1, 2, 3, 4]]
METHODS = ["anti_memory", "anti_memory_data_free", "anti_memory_features", "anti_memory_no_generator", "bad_teacher",
           "finetune", "gkt", "gradient_ascent", "logit_mask", "masked_kd", "random_label", "retrain", "scrub", "ssd",
           "unsir"]
# Runs that stop part-way: the shipped method with its impair phase cut to a fraction of its steps.
PARTIAL = {f"anti_memory@impair{f:g}": ("anti_memory", {"impair.epochs_fraction": f}) for f in (0.02, 0.05, 0.1, 0.25)}


def _normalised(pixels: torch.Tensor, mean, std) -> torch.Tensor:
    return (pixels - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)


@torch.no_grad()
def _forget_stats(model, x: torch.Tensor, forget: list[int]) -> tuple[float, float]:
    """(% of x the model calls a forget class, mean forget-class probability x100)."""
    if len(x) == 0:
        return float("nan"), float("nan")
    probs = model(x).softmax(1)
    called = torch.isin(probs.argmax(1), torch.tensor(forget)).float().mean() * 100
    return float(called), float(probs[:, forget].sum(1).mean() * 100)


def candidate_statistics(original, unlearned, forget, retain, steps: int, per_class: int, seed: int,
                         impressions: dict) -> dict:
    cfg = original.pretrained_cfg
    input_size, mean, std = tuple(cfg["input_size"]), cfg["mean"], cfg["std"]
    labels = torch.tensor([c for c in forget for _ in range(per_class)])
    out, seconds = {}, {}

    def timed(name, fn):
        start = time.process_time()
        value = fn()
        seconds[name] = round(time.process_time() - start, 3)
        return value

    key = tuple(forget)
    if key not in impressions:  # the original's impressions depend on the request only
        strong = _normalised(invert_classes(original, forget, input_size, mean, std, per_class=per_class,
                                            steps=steps, seed=seed), mean, std)
        weak = _normalised(invert_classes(original, forget, input_size, mean, std, per_class=per_class,
                                          steps=max(1, steps // 2), seed=seed), mean, std)
        with torch.no_grad():
            conf_strong = original(strong).softmax(1).gather(1, labels[:, None]).squeeze(1)
            conf_weak = original(weak).softmax(1).gather(1, labels[:, None]).squeeze(1)
        impressions[key] = (strong[conf_strong >= 0.9], weak[conf_weak >= 0.5])
    strong, weak = impressions[key]
    out["orig_confident_n"] = len(strong)
    out["orig_confident"], out["orig_mass"] = timed("orig", lambda: _forget_stats(unlearned, strong, forget))
    out["orig_weak_n"] = len(weak)
    out["orig_weak"], out["orig_weak_mass"] = _forget_stats(unlearned, weak, forget)
    for name, n_steps in (("self_inversion", steps),):
        def invert_self(n_steps=n_steps):
            x = _normalised(invert_classes(unlearned, forget, input_size, mean, std, per_class=per_class,
                                           steps=n_steps, seed=seed + 1), mean, std)
            return _forget_stats(unlearned, x, forget)
        out[name], out[name + "_mass"] = timed(name, invert_self)
    if retain is not None:
        _, mass_new = _forget_stats(unlearned, retain.x[:512], forget)
        _, mass_old = _forget_stats(original, retain.x[:512], forget)
        out["retained_mass"] = 100 * mass_new / max(mass_old, 1e-12)
    out["seconds"] = seconds
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="digits", choices=["digits", "cifar10-resnet20"])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--methods", default=",".join(METHODS + list(PARTIAL)))
    parser.add_argument("--requests", default="protocol", help="'protocol' or '3,7;0'")
    parser.add_argument("--budgets", default=None, help="retained budgets (default: the suite's)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.suite == "digits":
        model = load_model("digits_cnn", pretrained=True)
        data = load_data("digits", model)
        budgets = [400]
    else:
        model = load_model("cifar10_resnet20", Path(args.data_dir) / "checkpoints" / "resnet20-12fca82f.th")
        data = load_data(args.data_dir, model)
        budgets = [2500]
    if args.budgets:
        budgets = [int(b) for b in args.budgets.split(",")]
    model.eval()
    check_cfg = resolve_recipe("auto", model.pretrained_cfg["architecture"],
                               input_size=tuple(model.pretrained_cfg["input_size"])).self_check
    requests = PROTOCOL_REQUESTS if args.requests == "protocol" else \
        [[int(c) for c in r.split(",")] for r in args.requests.split(";")]
    out = Path(args.out)
    done = {(r["method"], tuple(r["classes"]), r["retained_images_budget"]) for r in
            (json.loads(line) for line in out.read_text().splitlines())} if out.is_file() else set()
    impressions: dict = {}
    for budget in budgets:
        for forget in requests:
            retain = retained_subset(data.train, forget, budget, seed=0)
            for label in args.methods.split(","):
                if (label, tuple(forget), budget) in done:
                    continue
                if label == "retrain_reference":  # the shipped never-saw-it model of {3,7}: no forgetting run
                    if args.suite == "digits" or forget != [3, 7]:
                        continue
                    reference = load_model("cifar10_resnet20", Path(args.data_dir) / "checkpoints" /
                                           "resnet20-retrain-without-3-7.th")
                    _write_row(out, args, label, forget, budget, reference, model, data, retain, check_cfg,
                               impressions, 0.0, 0.0)
                    continue
                method, overrides = PARTIAL.get(label, (label, {}))
                overrides = dict(overrides)
                fraction = overrides.pop("impair.epochs_fraction", None)
                if fraction is not None:
                    recipe = resolve_recipe("auto", model.pretrained_cfg["architecture"],
                               input_size=tuple(model.pretrained_cfg["input_size"]))
                    overrides["impair.epochs"] = recipe.impair.epochs * fraction
                overrides["self_check.enabled"] = False
                needs = get_method(method).needs
                forget_data = None
                if "forget" in needs:
                    per_class = len(retain) // (10 - len(forget))
                    others = sorted(set(range(10)) - set(forget))  # retained_subset of the others = forget images
                    forget_data = retained_subset(data.train, others, per_class * len(forget), seed=0)
                start, start_cpu = time.perf_counter(), time.process_time()
                result = forget_classes(model, forget, retain=retain if "retain" in needs else None, method=method,
                                        overrides=overrides, seed=0, progress=False, strict=False,
                                        forget_data=forget_data)
                _write_row(out, args, label, forget, budget, result.model, model, data, retain, check_cfg,
                           impressions, time.process_time() - start_cpu, time.perf_counter() - start)


def _write_row(out, args, label, forget, budget, unlearned, model, data, retain, check_cfg, impressions,
               cpu_seconds, wall_seconds) -> None:
    from zeroshot_unlearn.io import save_state_dict

    df, dr = forget_retain_accuracy(unlearned, data.test, forget)
    # Every unlearned model is kept, so statistics added later are measured on the same models.
    models = out.with_suffix(".models")
    save_state_dict(models / f"{label}-{'_'.join(map(str, forget))}-{budget}.safetensors", unlearned.state_dict())
    stats = candidate_statistics(model, unlearned.eval(), forget, retain, check_cfg.steps,
                                 check_cfg.impressions_per_class, seed=1, impressions=impressions)
    row = {"suite": args.suite, "method": label, "classes": forget, "retained_images_budget": budget,
           "df": round(df, 2), "dr": round(dr, 2), "forget_cpu_seconds": round(cpu_seconds, 2),
           "forget_wall_seconds": round(wall_seconds, 2), **stats}
    with out.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
    print(label, forget, budget, f"Df {df:.1f}", {k: (round(v, 1) if isinstance(v, float) else v)
                                                 for k, v in stats.items() if k != "seconds"}, flush=True)


if __name__ == "__main__":
    main()
